// The key lifecycle under dual control as the service's use cases run it, on an injected clock,
// with request records in memory and key pairs in an in-memory key store (Ed25519 by OpenSSL):
// open -> approvals -> execution at exactly the quorum, every refusal on the way (the
// requester, a second approval by one officer, a closed request, a digest that does not match,
// a principal without the right), rejection, expiry at exactly the request's lifetime, an
// execution the HSM failed, retirement and destruction at exactly the instant the retired
// version's tokens expire, quorum 0, and what each leaves in the audit log. Claims settle at
// once (their settle is not waited in real time); no test waits on the wall clock.
#include <gtest/gtest.h>

#include <algorithm>
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

namespace licentra::service {
namespace {

using namespace std::chrono_literals;

core::ClientIdentity officer(char which) {
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
core::ClientIdentity named(const std::string& cn) {
    core::ClientIdentity id;
    id.subject_cn = cn;
    id.issuer_dn = "CN=Licentra Dev CA";
    return id;
}

// A generous write bound, so that a slow build (sanitizers) never withdraws a claim; the
// settle is not waited in real time (claims in memory settle at once).
constexpr keys::ClaimTiming kClaims{10s, 11s};

class ServiceLifecycle : public ::testing::Test {
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
        Dependencies d;
        stand_.wire(d);
        d.keys = keys_.get();
        d.policy = holder_.get();
        d.audit = audit_.log.get();
        d.replica = "replica-a";
        d.claims = kClaims;
        d.claim_wait = [](std::chrono::milliseconds) {};
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
    // Opens a rotation of product-a as off-a; returns its view.
    nlohmann::json open_rotation() {
        auto r = service_->open_request(Caller{officer('a'), "open"}, policy::Operation::rotate,
                                        "product-a", std::nullopt, false);
        EXPECT_TRUE(r.ok()) << r.error().to_string();
        return r ? *r : nlohmann::json::object();
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
    std::vector<std::string> versions() {
        std::vector<std::string> out;
        for (const auto& v : keys_->versions("product-a")) {
            out.push_back("v" + std::to_string(v.record.version) + ":" +
                          std::string(keys::state_name(v.record.state)));
        }
        return out;
    }

    std::mutex clock_mu_;
    // Whole milliseconds, as records hold them.
    core::TimePoint clock_ = core::from_unix_millis(core::unix_millis(core::Clock::now()));
    std::shared_ptr<keys::test::FakeKeyStore> store_ = std::make_shared<keys::test::FakeKeyStore>();
    std::unique_ptr<keys::KeyManager> keys_;
    std::unique_ptr<policy::EngineHolder> holder_;
    fake::Stand stand_;
    fake::TestLog audit_;
    std::unique_ptr<Service> service_;
};

TEST_F(ServiceLifecycle, ARotationExecutesAtExactlyItsQuorumAsTheActOfTheLastApprover) {
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const std::uint64_t start = audit_.log->size();
    const auto opened = open_rotation();
    const std::string id = opened["id"];
    EXPECT_EQ(opened["state"], "pending");
    EXPECT_EQ(opened["quorum"], 2);
    advance(1s);
    auto first = service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt);
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    EXPECT_EQ((*first)["state"], "pending");  // one of two
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(1s);
    auto second = service_->approve_request(Caller{officer('c'), "c"}, id,
                                            opened["digest"].get<std::string>());
    ASSERT_TRUE(second.ok()) << second.error().to_string();
    EXPECT_EQ((*second)["state"], "executed");
    EXPECT_EQ((*second)["result"]["version"], 2);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v2:pre-active"}));
    EXPECT_EQ(audited(start),
              (std::vector<std::string>{
                  "key.rotate.request allowed off-a", "key.rotate.approve allowed off-b",
                  "key.rotate.approve allowed off-c", "key.rotate allowed off-c v2",
                  "key.rotate.execute allowed off-c"}));
}

TEST_F(ServiceLifecycle, EveryRefusalOnTheWayIsExactAndChangesNothing) {
    const auto opened = open_rotation();
    const std::string id = opened["id"];
    // The requester never counts; a signer and an auditor hold no approval right.
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('a'), "a"}, id, std::nullopt)),
              "policy.requester_cannot_approve");
    EXPECT_EQ(code_of(service_->approve_request(Caller{named("ls"), "ls"}, id, std::nullopt)),
              "policy.action_not_granted");
    EXPECT_EQ(code_of(service_->approve_request(Caller{named("aud"), "aud"}, id, std::nullopt)),
              "policy.action_not_granted");
    // A digest that is not the request's.
    EXPECT_EQ(
        code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::string(64, '0'))),
        "policy.request_digest_mismatch");
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "policy.duplicate_approval");
    // Still pending with one approval, and only v1.
    auto view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "pending");
    EXPECT_EQ((*view)["approvals"].size(), 1u);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
}

TEST_F(ServiceLifecycle, ARejectedRequestIsClosedForEveryone) {
    const std::uint64_t start = audit_.log->size();
    const std::string id = open_rotation()["id"];
    auto rejected = service_->reject_request(Caller{officer('b'), "b"}, id);
    ASSERT_TRUE(rejected.ok()) << rejected.error().to_string();
    EXPECT_EQ((*rejected)["state"], "rejected");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_closed");
    EXPECT_EQ(code_of(service_->reject_request(Caller{officer('c'), "c"}, id)),
              "policy.request_closed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const auto entries = audited(start);
    ASSERT_GE(entries.size(), 2u);
    EXPECT_EQ(entries[1], "key.rotate.reject allowed off-b");
}

TEST_F(ServiceLifecycle, ARequestExpiresAtExactlyItsLifetimeAsSystem) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    const std::uint64_t before = audit_.log->size();
    advance(1h - 1ms);  // the last instant of its lifetime: still open
    service_->tick(now());
    auto view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "pending");
    advance(1ms);  // its lifetime passed: an approval now is refused, before any tick
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_expired");
    service_->tick(now());  // and the tick closes it, as system
    view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "expired");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_closed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const auto entries = audited(before);
    EXPECT_NE(std::find(entries.begin(), entries.end(), "key.rotate.expire allowed system"),
              entries.end())
        << ::testing::PrintToString(entries);
}

// The HSM fails the key generation of the execution: the approval is recorded and answered
// with the deferral, the failed attempt is audited, and the request stays pending. The periodic
// tick then executes it as the act of the approver whose approval completed the quorum: the
// first tick past 4 x settle has the token read again (a replica whose view missed another's
// close would otherwise act on it), the next one executes.
TEST_F(ServiceLifecycle, AnExecutionTheHsmFailedIsDeferredAndTheTickCompletesIt) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    store_->fail(
        "generate_key", 1,
        core::make_error(core::ErrorKind::hsm_unavailable, "hsm.device_error", "injected"));
    const std::uint64_t before = audit_.log->size();
    auto approved = service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    ASSERT_TRUE(approved.ok()) << approved.error().to_string();
    EXPECT_EQ((*approved)["state"], "pending");
    EXPECT_EQ((*approved)["execution_deferred"], "hsm.device_error");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(4 * kClaims.settle + 1ms);  // past 4 x settle: the approvers' replicas had their time
    service_->tick(now());
    EXPECT_EQ(stand_.requests.reloads().size(), 1u);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(10ms);  // the next tick, within the re-read interval (6 x settle + 5 s)
    service_->tick(now());
    auto view = service_->get_request(Caller{officer('b'), "b"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "executed");
    // The failed attempt's number stays taken (its claim may have been seen by others).
    EXPECT_EQ((*view)["result"]["version"], 3);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v3:pre-active"}));
    EXPECT_EQ(audited(before),
              (std::vector<std::string>{
                  "key.rotate.approve allowed off-c", "key.rotate.execute failed off-c",
                  "key.rotate allowed off-c v3", "key.rotate.execute allowed off-c"}));
}

// Retire and destroy under the same dual control (default quorum 2): v1 retires at once; its
// destruction is refused while tokens it signed can still be valid (max_validity 30d +
// verify_grace 30d after the retirement) — the request closes as failed with the key
// manager's reason — and executes exactly at that instant, leaving no private key.
TEST_F(ServiceLifecycle, AVersionIsRetiredThenDestroyedOnlyOnceItsTokensHaveExpired) {
    auto dual = [&](policy::Operation op, unsigned version) -> core::Result<nlohmann::json> {
        auto opened =
            service_->open_request(Caller{officer('a'), "a"}, op, "product-a", version, false);
        if (!opened) return opened;
        const std::string id = (*opened)["id"];
        auto first = service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt);
        if (!first) return first;
        return service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    };
    auto retired = dual(policy::Operation::retire, 1);
    ASSERT_TRUE(retired.ok()) << retired.error().to_string();
    EXPECT_EQ((*retired)["state"], "executed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:retired"}));
    advance(60 * 24h - 1ms);  // the last instant a token v1 signed can still be valid
    auto early = dual(policy::Operation::destroy, 1);
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().code, "keys.destroy_still_verifying");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:retired"}));
    EXPECT_TRUE(store_->has_private("licentra/product-a/v1"));
    advance(1ms);
    auto destroyed = dual(policy::Operation::destroy, 1);
    ASSERT_TRUE(destroyed.ok()) << destroyed.error().to_string();
    EXPECT_EQ((*destroyed)["state"], "executed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:destroyed"}));
    EXPECT_FALSE(store_->has_private("licentra/product-a/v1"));
}

// With quorum 0 the requester alone decides: the request executes as it is opened.
TEST_F(ServiceLifecycle, AQuorumOfZeroExecutesAsTheRequestOpens) {
    auto engine = policy::test::load_ok(policy::test::mutate("rotate: {quorum: 2, lifetime: 1h}",
                                                             "rotate: {quorum: 0, lifetime: 1h}"));
    ASSERT_NE(engine, nullptr);
    holder_->replace(engine);
    auto opened = service_->open_request(Caller{officer('a'), "a"}, policy::Operation::rotate,
                                         "product-a", std::nullopt, false);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    EXPECT_EQ((*opened)["state"], "executed");
    EXPECT_EQ((*opened)["executed"], true);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v2:pre-active"}));
}

}  // namespace
}  // namespace licentra::service
