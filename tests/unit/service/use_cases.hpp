// The fixture of the service's use-case tests: the base test policy, a key manager on an
// in-memory key store (product-a bootstrapped, Ed25519 by OpenSSL), request records in memory,
// a real audit log behind a journal that can fail the n-th append, pseudonyms by digest, an
// executor that runs each job at once, and an injected clock that only advance() moves. Claims
// settle at once (their settle is not waited in real time); nothing waits on the wall clock.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "unit/keys/fake_key_store.hpp"
#include "unit/policy/policy_test_util.hpp"
#include "unit/service/fakes.hpp"

namespace licentra::service::fake {

using namespace std::chrono_literals;

// Officers a, b and c of the base policy, by each kind of identity it can name.
inline core::ClientIdentity officer(char which) {
    core::ClientIdentity id;
    switch (which) {
        case 'a':
            id.spki_sha256.fill(0xaa);
            break;
        case 'b':
            id.san_uris = {"spiffe://example.org/off-b"};
            break;
        default:
            id.san_dns = {"off-c.example.org"};
            break;
    }
    return id;
}
inline core::ClientIdentity named(const std::string& cn) {
    core::ClientIdentity id;
    id.subject_cn = cn;
    id.issuer_dn = "CN=Licentra Dev CA";
    return id;
}

// A generous write bound, so that a slow build (sanitizers) never withdraws a claim; the
// settle is not waited in real time (claims in memory settle at once).
inline constexpr keys::ClaimTiming kClaims{10s, 11s};

class UseCases : public ::testing::Test {
  protected:
    void SetUp() override {
        auto engine = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine, nullptr);
        holder_ = std::make_unique<policy::EngineHolder>(engine);
        keys::ClusterOptions o;
        o.replica = "replica-a";
        o.min_pre_active = 0ms;
        o.claims = kClaims;
        o.wait = [](std::chrono::milliseconds) {};  // the claims settle at once in memory
        o.clock = [this] { return now(); };
        auto km = keys::KeyManager::create(
            store_,
            [](const crypto::PublicKey& k) {
                return core::hex_encode(crypto::sha256(k.spki_der())).substr(0, 16);
            },
            o);
        ASSERT_TRUE(km.ok()) << km.error().to_string();
        keys_ = std::move(*km);
        ASSERT_NE(audit_.log, nullptr) << audit_.error;
        journal_ = std::make_unique<FailingJournal>(*audit_.log);
        Dependencies d;
        stand_.wire(d);
        d.keys = keys_.get();
        d.policy = holder_.get();
        d.audit = journal_.get();
        d.pseudonymizer = &pseudonyms_;
        d.replica = "replica-a";
        d.claims = close_claims_;
        d.claim_wait = [](std::chrono::milliseconds) {};
        d.log = [this](std::string_view line) {
            std::lock_guard lock(clock_mu_);
            logged_.emplace_back(line);
        };
        d.outcome_wait = 100ms;
        d.clock = [this] {
            std::lock_guard lock(clock_mu_);
            return clock_;
        };
        auto s = Service::create(d);
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        service_ = std::move(*s);
        ASSERT_TRUE(service_->bootstrap_keys().ok());
        ASSERT_TRUE(keys_->refresh(now()).ok());
    }

    core::TimePoint now() {
        std::lock_guard lock(clock_mu_);
        return clock_;
    }
    void advance(std::chrono::milliseconds by) {
        std::lock_guard lock(clock_mu_);
        clock_ += by;
    }
    // The error code of a use case's answer, or "ok".
    template <class T>
    static std::string code_of(const core::Result<T>& o) {
        return o ? "ok" : o.error().code;
    }
    // "action result principal" of every audit entry from `from` on.
    std::vector<std::string> audited(std::uint64_t from) {
        std::vector<std::string> out;
        auto lines = audit_.log->read_entries(from, audit_.log->size());
        EXPECT_TRUE(lines.ok());
        if (!lines) return out;
        for (const auto& l : *lines) {
            const nlohmann::json e = nlohmann::json::parse(l);
            std::string line = e["action"].get<std::string>() + " " +
                               e["result"].get<std::string>() + " " +
                               e["principal"].get<std::string>();
            if (e.contains("version")) line += " v" + std::to_string(e["version"].get<unsigned>());
            out.push_back(std::move(line));
        }
        return out;
    }
    // The lines the service wrote to the operational log.
    std::vector<std::string> logged() {
        std::lock_guard lock(clock_mu_);
        return logged_;
    }
    std::vector<std::string> versions() {
        std::vector<std::string> out;
        for (const auto& v : keys_->versions("product-a")) {
            out.push_back("v" + std::to_string(v.record.version) + ":" +
                          std::string(keys::state_name(v.record.state)));
        }
        return out;
    }

    // The service's claims to close a request (a derived fixture may set others before SetUp;
    // the key manager's version claims keep kClaims).
    keys::ClaimTiming close_claims_ = kClaims;
    std::mutex clock_mu_;  // also guards logged_
    std::vector<std::string> logged_;
    // Whole milliseconds, as records hold them.
    core::TimePoint clock_ = core::from_unix_millis(core::unix_millis(core::Clock::now()));
    std::shared_ptr<keys::test::FakeKeyStore> store_ = std::make_shared<keys::test::FakeKeyStore>();
    std::unique_ptr<keys::KeyManager> keys_;
    std::unique_ptr<policy::EngineHolder> holder_;
    Stand stand_;
    DigestPseudonyms pseudonyms_;
    TestLog audit_;
    std::unique_ptr<FailingJournal> journal_;  // in front of audit_.log
    std::unique_ptr<Service> service_;
};

}  // namespace licentra::service::fake
