// Benchmark: how long licentra-signd takes from exec to /readyz 200 on a token that holds many
// versions of one key and their rotation requests.
//
// Builds a fresh SoftHSM token (tests/support Deployment: token, PKI, example policy) and
// writes, through the same code the daemon runs:
//   - product-a v1 (KeyManager::bootstrap), then versions 2..N, each by a rotation request:
//     the request opened under the policy (ApprovalRequest::open / to_json), one approval, the
//     two close claim rounds (keys::claim), the rotation (KeyManager::rotate: version claim, key
//     pair generated in the token, created record) and its outcome (OutcomeRecord::to_json);
//   - one more request, rejected (claims and a reject outcome), so there are N requests;
//   - version N/2 retired (KeyManager::retire) and versions 2..4 destroyed (KeyManager::destroy):
//     every other version is superseded and still published.
// Then it measures in this process where a cold start's time goes (module and token, the key
// refresh, the request listing and fold), and finally starts the real licentra-signd on the
// token: once to warm up (it creates its audit and pseudonym keys and product-b v1), then
// `runs` restarts, each timed from fork+exec until /readyz answers 200 (polled every 50 ms by
// the harness), and prints every run and the median.
//
// Usage: start_many_versions [versions (default 100)] [runs (default 5)]
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "app/wiring/requests_hsm.hpp"
#include "bench_cli.hpp"
#include "core/bytes.hpp"
#include "core/time.hpp"
#include "crypto/random.hpp"
#include "hsm/hsm.hpp"
#include "keys/claim.hpp"
#include "keys/key_manager.hpp"
#include "policy/approval.hpp"
#include "policy/engine.hpp"
#include "policy/loader.hpp"
#include "service/request_records.hpp"
#include "support/daemon.hpp"
#include "token/jwk.hpp"

using namespace licentra;
using Steady = std::chrono::steady_clock;

namespace {

constexpr const char* kKey = "product-a";
constexpr const char* kRequester = "officer-a";
constexpr const char* kApprover = "officer-b";
constexpr const char* kReplica = "bench/licentra/setup";

template <class T>
T must(core::Result<T> r, const char* what) {
    if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().to_string());
    return std::move(r).value();
}
void must(const core::Status& st, const char* what) {
    if (!st) throw std::runtime_error(std::string(what) + ": " + st.error().to_string());
}

double ms_since(Steady::time_point t0) {
    return std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

keys::KidFunction kid_function() {
    return [](const crypto::PublicKey& k) {
        auto kid = token::jwk_thumbprint(k);
        return kid ? *kid : std::string();
    };
}

struct Opened {
    std::shared_ptr<hsm::Module> module;
    std::shared_ptr<hsm::Token> token;
};

Opened open_token(test::SoftHsmToken& fixture) {
    Opened o;
    o.module = must(hsm::Module::load(test::SoftHsmToken::module_path()), "loading the module");
    hsm::TokenOptions options;
    options.uri = fixture.uri();
    o.token = must(hsm::Token::open(o.module, options), "opening the token");
    return o;
}

// The request records of one close, as Service::close writes them: two claim rounds, then the
// outcome. The claims' settle wait is skipped: this process is the only writer.
class Closer {
  public:
    explicit Closer(service::RequestStore& store) : store_(store) {
        storage_.list =
            [this](const std::string& prefix) -> core::Result<std::vector<std::string>> {
            auto listed = store_.list(prefix);
            if (!listed) return listed.error();
            std::vector<std::string> names;
            for (auto& [name, text] : *listed) names.push_back(name);
            return names;
        };
        storage_.create = [this](const std::string& name, core::ByteView value) {
            return store_.create(name, std::string(core::as_chars(value)));
        };
        storage_.remove = [this](const std::string& name) { return store_.remove(name); };
        storage_.wait = [](std::chrono::milliseconds) {};
        timing_.write_bound = std::chrono::seconds(30);
        timing_.settle = std::chrono::seconds(31);
    }

    void claim(const std::string& id, service::Decision d, core::TimePoint now) {
        const nlohmann::json claim_value = {{"decision", std::string(service::decision_name(d))},
                                            {"by", kReplica},
                                            {"at_ms", core::unix_millis(now)}};
        const std::string text = claim_value.dump();
        for (const char* round : {"/close/", "/decide/"}) {
            auto won = must(
                keys::claim(storage_, id + round, kApprover, core::as_bytes(text), timing_, {}),
                "claiming a close");
            if (won != keys::ClaimOutcome::won) throw std::runtime_error("close claim lost");
        }
    }

    void outcome(const std::string& id, const service::OutcomeRecord& o) {
        auto nonce = must(crypto::random_bytes(16), "nonce");
        must(store_.create(id + "/outcome/" + core::hex_encode(nonce), o.to_json()),
             "writing an outcome");
    }

  private:
    service::RequestStore& store_;
    keys::ClaimStorage storage_;
    keys::ClaimTiming timing_;
};

policy::ApprovalRequest open_request(const policy::Engine& engine, service::RequestStore& store,
                                     core::TimePoint now) {
    auto grant = must(engine.authorize<core::action::KeyRotateRequest>(kRequester, kKey),
                      "authorizing the request");
    auto r = must(
        policy::ApprovalRequest::open(engine, grant, std::nullopt, nlohmann::json::object(), now),
        "opening a request");
    must(store.create(r.id(), r.to_json()), "writing a request");
    return r;
}

// Writes versions 1..n of product-a and n requests (n-1 executed rotations, one rejected).
void populate(const std::shared_ptr<hsm::Token>& token, const policy::Engine& engine, unsigned n) {
    keys::ClusterOptions cluster;
    cluster.replica = kReplica;
    cluster.min_pre_active = std::chrono::milliseconds(0);
    // Bound for a claim step of the code under test on a token this full.
    cluster.claims.write_bound = std::chrono::milliseconds(1500);
    cluster.claims.settle = std::chrono::milliseconds(1501);
    auto owned = must(keys::KeyManager::create(keys::hsm_key_store(token), kid_function(), cluster),
                      "key manager");
    keys::KeyManager& km = *owned;
    must(km.refresh(), "first refresh");
    const auto boot = must(engine.system_grant(kKey, policy::Engine::SystemPurpose::bootstrap),
                           "bootstrap grant");
    must(km.bootstrap(boot, crypto::Algorithm::EdDSA), "bootstrap");

    app::wiring::HsmRequestStore store(token);
    Closer closer(store);
    keys::Timing timing;
    timing.max_validity = std::chrono::hours(24 * 366);
    timing.verify_grace = std::chrono::hours(24);
    const auto setup_started = Steady::now();
    for (unsigned v = 2; v <= n; ++v) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // activations are ordered
        const auto now = core::Clock::now();
        auto r = open_request(engine, store, now);
        const std::string id = r.id();
        must(r.approve(engine, kApprover, now), "approving");
        const nlohmann::json approval = {{"at_ms", core::unix_millis(now)}};
        must(store.create(id + "/approval/" + kApprover, approval.dump()), "writing an approval");
        closer.claim(id, service::Decision::execute, now);
        auto grant = must(engine.execution_grant(r, now), "execution grant");
        auto created =
            must(km.rotate(grant, crypto::Algorithm::EdDSA, timing, now, {}, id), "rotating");
        service::OutcomeRecord o;
        o.decision = service::Decision::execute;
        o.result = policy::RequestState::executed;
        o.principal = r.quorum_completed_by().value_or(kApprover);
        o.by = kReplica;
        o.at_ms = core::unix_millis(now);
        o.version = created.record.version;
        o.state = std::string(keys::state_name(created.record.state));
        o.kid = created.kid;
        closer.outcome(id, o);
        if (v == n / 2) {
            // An explicit retirement of the then active version (the next one replaces it).
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
            must(km.retire(boot, v, timing, core::Clock::now(), {}), "retiring");
        }
        if (v % 10 == 0) {
            std::printf("  setup: %u versions, %.1f s\n", v, ms_since(setup_started) / 1000);
            std::fflush(stdout);
        }
    }
    for (unsigned v = 2; v <= 4 && v < n; ++v) {
        must(km.destroy(boot, v, true, core::Clock::now(), {}), "destroying");
    }
    const auto now = core::Clock::now();
    auto rejected = open_request(engine, store, now);
    closer.claim(rejected.id(), service::Decision::reject, now);
    service::OutcomeRecord o;
    o.decision = service::Decision::reject;
    o.result = policy::RequestState::rejected;
    o.principal = kApprover;
    o.by = kReplica;
    o.at_ms = core::unix_millis(now);
    closer.outcome(rejected.id(), o);
}

// Where a cold start's time goes: module + token, the key refresh (cold, then warm), and the
// request listing with every request folded.
void measure_in_process(test::SoftHsmToken& fixture) {
    auto t0 = Steady::now();
    auto opened = open_token(fixture);
    const double open_ms = ms_since(t0);

    t0 = Steady::now();
    auto data = must(opened.token->list_data("licentra/"), "list_data");
    const double list_data_ms = ms_since(t0);
    t0 = Steady::now();
    auto pairs = must(opened.token->list_keys("licentra/"), "list_keys");
    const double list_keys_ms = ms_since(t0);

    auto owned = must(keys::KeyManager::create(keys::hsm_key_store(opened.token), kid_function()),
                      "key manager");
    keys::KeyManager& km = *owned;
    t0 = Steady::now();
    must(km.refresh(), "cold refresh");
    const double cold_ms = ms_since(t0);
    t0 = Steady::now();
    must(km.refresh(), "warm refresh");
    const double warm_ms = ms_since(t0);

    app::wiring::HsmRequestStore store(opened.token);
    t0 = Steady::now();
    auto all = must(store.list(""), "listing requests");
    std::size_t folded = 0;
    for (const auto& [id, records] : service::group_by_request(all)) {
        auto f = service::fold_request(id, records, core::Clock::now());
        if (f && *f) ++folded;
    }
    const double requests_ms = ms_since(t0);

    std::size_t published = km.published(core::Clock::now()).size();
    std::printf(
        "in-process (%zu data objects, %zu key pairs, %zu published versions, %zu "
        "requests):\n",
        data.size(), pairs.size(), published, folded);
    std::printf("  module load + token open + login   %8.1f ms\n", open_ms);
    std::printf("  Token::list_data(\"licentra/\")      %8.1f ms\n", list_data_ms);
    std::printf("  Token::list_keys(\"licentra/\")      %8.1f ms\n", list_keys_ms);
    std::printf("  KeyManager first refresh (cold)    %8.1f ms\n", cold_ms);
    std::printf("  KeyManager refresh (warm)          %8.1f ms\n", warm_ms);
    std::printf("  requests: list + fold every one    %8.1f ms\n", requests_ms);
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned versions = 100;
    unsigned runs = 5;
    CLI::App app("licentra-signd start to /readyz with many versions of one key",
                 "start_many_versions");
    app.add_option("VERSIONS", versions, "Versions of the key (at least 5)")
        ->check(CLI::Range(5U, 100000U))
        ->capture_default_str();
    app.add_option("RUNS", runs, "Timed restarts")
        ->check(CLI::Range(1U, 1000U))
        ->capture_default_str();
    bench::parse_or_exit(app, argc, argv);
    try {
        test::Deployment deployment;
        const auto load = policy::load_policy_file(deployment.policy_file());
        if (!load.ok()) throw std::runtime_error(load.error().to_string());
        {
            auto opened = open_token(deployment.token());
            const auto t0 = Steady::now();
            populate(opened.token, *load.engine, versions);
            std::printf("setup: %u versions of %s and %u requests written in %.1f s\n", versions,
                        kKey, versions, ms_since(t0) / 1000);
        }  // the module is finalized before the next load
        measure_in_process(deployment.token());

        test::DaemonOptions options;
        options.name = "start";
        auto t0 = Steady::now();
        test::Daemon daemon(deployment, options);
        std::printf("daemon first start (creates its audit keys, product-b v1): %.0f ms\n",
                    ms_since(t0));
        std::vector<double> times;
        for (unsigned i = 0; i < runs; ++i) {
            daemon.signal(SIGTERM);
            if (daemon.wait(std::chrono::seconds(30)) == -2) {
                throw std::runtime_error("the daemon did not stop");
            }
            t0 = Steady::now();
            daemon.restart();
            times.push_back(ms_since(t0));
            std::printf("daemon start %u: exec to /readyz 200 in %.0f ms\n", i + 1, times.back());
            std::fflush(stdout);
        }
        std::printf("median start to ready over %u runs: %.0f ms (%u versions, %u requests)\n",
                    runs, median(times), versions, versions);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "start_many_versions: %s\n", e.what());
        return 1;
    }
    return 0;
}
