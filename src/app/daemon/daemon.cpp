#include "app/daemon/daemon.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "app/daemon/metrics.hpp"
#include "app/daemon/routes.hpp"
#include "app/wiring/audit_hsm.hpp"
#include "app/wiring/requests_hsm.hpp"
#include "audit/checkpoint_waiter.hpp"
#include "audit/log.hpp"
#include "config/config.hpp"
#include "core/thread_name.hpp"
#include "hsm/hsm.hpp"
#include "keys/key_manager.hpp"
#include "net/server.hpp"
#include "net/signals.hpp"
#include "net/work_pool.hpp"
#include "policy/holder.hpp"
#include "policy/loader.hpp"
#include "service/service.hpp"
#include "token/jwk.hpp"

namespace licentra::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitInvalid = 2;
constexpr auto kDrain = std::chrono::seconds(10);

// The operational log (JSON lines or text on stderr, docs/operations.md#logs).
void log_line(std::string_view line) { net::log_line(line); }

class WorkPoolExecutor final : public service::Executor {
  public:
    // bound: hsm.call_timeout; on_overrun_log: called once per overrun job (operational log).
    WorkPoolExecutor(net::WorkPool& pool, std::chrono::milliseconds bound,
                     std::function<void()> on_overrun_log)
        : pool_(pool), bound_(bound), on_overrun_log_(std::move(on_overrun_log)) {}
    bool post(std::function<void()> job) override { return pool_.post(std::move(job)); }
    bool post_bounded(std::function<void()> job, std::function<void()> on_overrun) override {
        return pool_.post(std::move(job), net::WorkPool::Clock::now() + bound_,
                          [log = on_overrun_log_, on_overrun = std::move(on_overrun)] {
                              if (log) log();
                              on_overrun();
                          });
    }

  private:
    net::WorkPool& pool_;
    std::chrono::milliseconds bound_;
    std::function<void()> on_overrun_log_;
};

// Readiness probe of the HSM: a signature with every active key, every kProbeInterval, on its
// own thread. A probe past hsm.call_timeout makes /readyz answer 503 while it lasts.
constexpr auto kProbeInterval = std::chrono::milliseconds(500);
// Not a JWS signing input (no '.'), so a probe signature can never verify as a token.
constexpr std::string_view kProbeMessage = "licentra-signd readiness probe";

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// systemd service notifications (sd_notify(3)); no-ops when $NOTIFY_SOCKET is not set.
void notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

// READY=1 (again, after a reload) with the status line systemctl shows.
void notify_serving(const std::string& status) { notify("READY=1\nSTATUS=serving: " + status); }

// WATCHDOG=1 every half WatchdogSec= while the daemon makes progress: an io thread ran the no-op
// posted at the previous tick, and the readiness prober finished a probe within the last
// interval (a probe that fails still finishes; one hung in the HSM does not). Without a
// watchdog configured (sd_watchdog_enabled(3)) it starts no thread.
class Watchdog {
  public:
    Watchdog(boost::asio::io_context& io, const std::atomic<std::int64_t>& probe_finished_ms)
        : io_(io), probe_finished_ms_(probe_finished_ms) {}
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog() { stop(); }

    void start() {
        std::uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
        const auto interval = std::chrono::microseconds(usec);
        thread_ = std::thread([this, interval] {
            core::name_this_thread("watchdog");
            std::unique_lock lock(mutex_);
            std::uint64_t posted = 0;
            do {
                const bool io_answered = io_ran_.load() == posted;
                const bool probing = steady_ms() - probe_finished_ms_.load() <
                                     std::chrono::ceil<std::chrono::milliseconds>(interval).count();
                if (io_answered && probing) notify("WATCHDOG=1");
                if (io_answered) {
                    boost::asio::post(io_, [this, next = ++posted] { io_ran_ = next; });
                }
            } while (!cv_.wait_for(lock, interval / 2, [this] { return stopping_; }));
        });
    }

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

  private:
    boost::asio::io_context& io_;
    const std::atomic<std::int64_t>& probe_finished_ms_;
    std::atomic<std::uint64_t> io_ran_{0};
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
};

// The newest licentra/audit/v<N>, or v1 generated now with `algorithm` (Ed25519 or ECDSA P-256,
// the C2SP signed-note types 0x01 and 0x02). An existing key keeps its algorithm.
core::Result<hsm::KeyRef> audit_key(hsm::Token& token, crypto::Algorithm algorithm,
                                    bool* generated) {
    *generated = false;
    auto listed = token.list_keys("licentra/audit/");
    if (!listed) return listed.error();
    unsigned newest = 0;
    for (const auto& k : *listed) {
        if (k.name == "audit" && k.has_private && k.version > newest) newest = k.version;
    }
    if (newest > 0) return token.load_key("audit", newest);
    *generated = true;
    return token.generate_key("audit", 1, algorithm);
}

}  // namespace

int run_daemon(const std::filesystem::path& config_path, bool check_only) {
    // ---- configuration and policy: every problem reported, nothing started ----
    std::vector<config::Diagnostic> diagnostics;
    auto cfg = config::load_and_validate(config_path, &diagnostics);
    if (!cfg) {
        for (const auto& d : diagnostics) std::cerr << d.to_string() << '\n';
        if (diagnostics.empty()) std::cerr << cfg.error().to_string() << '\n';
        return kExitInvalid;
    }
    auto policy_load = policy::load_policy_file(cfg->policy.path);
    if (!policy_load.ok()) {
        std::cerr << policy_load.error().message << '\n';
        return kExitInvalid;
    }
    policy::EngineHolder policy_holder(policy_load.engine);
    net::configure_log(cfg->log.level, cfg->log.format);

    // Lifecycle signals go to the main thread only: block them before any thread starts.
    if (!net::block_signals()) {
        log_line("cannot block signals");
        return kExitRuntime;
    }

    // ---- HSM ----
    auto module = hsm::Module::load(cfg->hsm.module);
    if (!module) {
        log_line("HSM module: " + module.error().to_string());
        return kExitRuntime;
    }
    hsm::TokenOptions token_options;
    token_options.uri = cfg->hsm.token_uri;
    token_options.pool_size = cfg->hsm.session_pool;
    token_options.pin_file = cfg->hsm.pin_file;  // resolved against the config file
    token_options.log = [](std::string_view line) { log_line(line); };
    auto opened = hsm::Token::open(*module, token_options);
    if (!opened) {
        log_line("HSM token: " + opened.error().to_string());
        return kExitRuntime;
    }
    std::shared_ptr<hsm::Token> token = std::move(*opened);
    if (check_only) {
        std::cout << "configuration " << config_path.string() << ": ok\n"
                  << "policy " << cfg->policy.path.string() << ": ok (sha256 "
                  << policy_load.engine->sha256_hex() << ")\n"
                  << "HSM token " << token->label() << ": logged in\n";
        return kExitOk;
    }

    // ---- audit log ----
    bool audit_key_generated = false;
    auto audit_ref = audit_key(*token,
                               cfg->audit.key_algorithm == config::AuditKeyAlgorithm::es256
                                   ? crypto::Algorithm::ES256
                                   : crypto::Algorithm::EdDSA,
                               &audit_key_generated);
    if (!audit_ref) {
        log_line("audit key: " + audit_ref.error().to_string());
        return kExitRuntime;
    }
    hsm::HsmSigner audit_signer(token, *audit_ref);
    wiring::HsmCheckpointAnchor anchor(token, cfg->audit.origin);
    // Receipts wait for the checkpoint that covers their entry: the waiter learns of every
    // checkpoint the log stores through the anchor (docs/api.md, GET /v1/tokens/receipt).
    audit::CheckpointWaiter checkpoint_waiter;
    audit::WaiterAnchor waiter_anchor(&anchor, checkpoint_waiter);
    wiring::HsmPseudonymizer pseudonymizer(token);
    if (auto st = pseudonymizer.ensure_key(); !st) {
        log_line("pseudonym key: " + st.error().to_string());
        return kExitRuntime;
    }
    audit::LogOptions log_options;
    log_options.dir = cfg->audit.dir;
    log_options.origin = cfg->audit.origin;
    log_options.key_name = cfg->audit.origin;
    log_options.segment_max_bytes = cfg->audit.segment_bytes;
    log_options.checkpoint_every = cfg->audit.checkpoint_every_entries;
    log_options.checkpoint_interval = cfg->audit.checkpoint_interval;
    log_options.sync_timeout = cfg->audit.sync_timeout;
    auto log =
        audit::AuditLog::open(log_options, {&audit_signer, &waiter_anchor, nullptr, log_line});
    if (!log) {
        log_line("audit log: " + log.error().to_string());
        return kExitRuntime;
    }
    std::unique_ptr<audit::AuditLog> audit_log = std::move(*log);
    checkpoint_waiter.advance(audit_log->checkpoint_size());
    if (const auto& r = audit_log->recovery(); r.torn_log) {
        log_line("audit log: cut back a torn final record at start (" + std::to_string(r.size) +
                 " entries kept)");
    }
    log_line("audit log " + cfg->audit.dir.string() + ": " + std::to_string(audit_log->size()) +
             " entries; checkpoint verifier key " + audit_log->verifier().to_string());
    {
        // A convenience copy for auditors; they should confirm it out of band (docs/audit.md).
        std::ofstream vkey(cfg->audit.dir / "verifier.vkey", std::ios::trunc);
        vkey << audit_log->verifier().to_string() << '\n';
    }
    if (audit_key_generated) {
        audit::Entry e;
        e.principal = std::string(policy::kSystemPrincipal);
        e.action = "audit.key.bootstrap";
        e.result = audit::Outcome::allowed;
        e.key = "audit";
        e.version = audit_ref->version;
        e.policy_sha256 = policy_holder.current()->sha256_hex();
        if (auto a = audit_log->append(std::move(e)); !a) {
            log_line("audit log: " + a.error().to_string());
            return kExitRuntime;
        }
    }

    // ---- keys and use cases ----
    keys::ClusterOptions cluster;
    cluster.replica = cfg->audit.origin;
    cluster.claims.write_bound = cfg->cluster.claim_write_bound;
    cluster.claims.settle = 2 * cfg->cluster.claim_write_bound;
    cluster.min_pre_active = 2 * cfg->cluster.refresh_interval;
    cluster.log = [](std::string_view line) { log_line(line); };
    auto created_keys = keys::KeyManager::create(
        keys::hsm_key_store(token),
        [](const crypto::PublicKey& k) {
            auto kid = token::jwk_thumbprint(k);
            return kid ? *kid : std::string();
        },
        cluster);
    if (!created_keys) {
        log_line("keys: " + created_keys.error().to_string());
        return kExitRuntime;
    }
    keys::KeyManager& key_manager = **created_keys;
    const std::size_t hsm_threads =
        cfg->server.hsm_threads > 0 ? cfg->server.hsm_threads : cfg->hsm.session_pool;
    // A hung module may hold every HSM thread: at most as many again are started to replace
    // them (net::WorkPool), the io threads never wait for the module.
    net::WorkPool work_pool(hsm_threads, 4096, hsm_threads, "hsm");
    const auto call_timeout = cfg->hsm.call_timeout;
    WorkPoolExecutor executor(work_pool, call_timeout, [&token, call_timeout] {
        token->fault_log().fault("timeout: hsm.call_timeout",
                                 "the HSM work of a signing request did not finish within " +
                                     std::to_string(call_timeout.count()) +
                                     " ms; answered 503 hsm.timeout, its thread replaced");
    });
    wiring::HsmRequestStore request_store(token);
    service::Dependencies service_deps{&request_store,    &policy_holder, &key_manager,
                                       audit_log.get(),   &pseudonymizer, &executor,
                                       cfg->audit.origin, cluster.claims};
    service_deps.checkpoints = &checkpoint_waiter;
    // A checkpoint comes at most checkpoint_interval after the entry; the margin covers the
    // HSM signature. When it did not come, the log retries signing every 5 s at most.
    service_deps.receipt_wait = cfg->audit.checkpoint_interval + std::chrono::seconds(5);
    service_deps.receipt_retry_after =
        std::max(std::chrono::seconds(1),
                 std::chrono::ceil<std::chrono::seconds>(std::min<std::chrono::milliseconds>(
                     cfg->audit.checkpoint_interval, std::chrono::seconds(5))));
    auto created_service = service::Service::create(std::move(service_deps));
    if (!created_service) {
        log_line("service: " + created_service.error().to_string());
        return kExitRuntime;
    }
    service::Service& service = **created_service;
    if (auto st = service.bootstrap_keys(); !st) {
        // The key stays unavailable (409) until it exists; the periodic tick tries again.
        log_line("key bootstrap: " + st.error().to_string());
    }
    // Every active key passed its attribute check and self-test in refresh (load_key).
    if (auto st = key_manager.refresh(); !st) {
        log_line("keys: " + st.error().to_string());
        return kExitRuntime;
    }
    // Pseudonym epochs (docs/privacy.md): the current and the next epoch's keys exist before
    // any token is signed; keys past retention are destroyed, as `system`, and audited.
    auto maintain_pseudonyms = [&](core::TimePoint now) -> core::Status {
        const auto engine = policy_holder.current();
        const auto& epochs = engine->pseudonyms();
        if (!epochs) return {};
        auto destroyed = pseudonymizer.maintain(now, epochs->epoch, epochs->retention);
        if (!destroyed) return std::move(destroyed).error();
        for (const auto& epoch : *destroyed) {
            audit::Entry e;
            e.principal = std::string(policy::kSystemPrincipal);
            e.action = "pseudonym.destroy";
            e.result = audit::Outcome::allowed;
            e.pseudonym_epoch = epoch.name();
            e.policy_sha256 = engine->sha256_hex();
            auto appended = audit_log->append(std::move(e));
            log_line("pseudonyms: destroyed the key of epoch " + epoch.name() + " (ended " +
                     core::format_rfc3339_ms(epoch.end()) + ")" +
                     (appended ? std::string() : "; audit: " + appended.error().to_string()));
        }
        return {};
    };
    if (auto st = maintain_pseudonyms(core::Clock::now()); !st) {
        log_line("pseudonyms: " + st.error().to_string());
        return kExitRuntime;
    }

    // ---- listeners ----
    std::atomic<bool> ready{false};
    std::atomic<bool> hsm_ok{true};
    std::mutex hsm_error_mutex;
    std::string hsm_error;
    // Readiness probe state (see kProbeInterval).
    std::atomic<std::int64_t> probe_started_ms{0};  // steady ms of the probe in flight, or 0
    std::atomic<std::int64_t> probe_finished_ms{steady_ms()};  // of the last probe (watchdog)
    std::string probe_failure;  // guarded by hsm_error_mutex; "" = signs
    net::Server* server_ptr = nullptr;
    OpsProbe probe;
    probe.live = [] { return true; };
    // The HSM part of readiness: "" while every active key signs and the key state reads.
    auto hsm_not_ready = [&]() -> std::string {
        // "hsm: <code>..." while the HSM cannot sign with every active key (docs/daemon.md).
        if (const auto started = probe_started_ms.load(); started != 0) {
            const auto running = steady_ms() - started;
            if (running > call_timeout.count()) {
                token->fault_log().fault("timeout: readiness probe",
                                         "a readiness probe signature has been running for " +
                                             std::to_string(running) + " ms");
                return "hsm: hsm.timeout (readiness probe running for " + std::to_string(running) +
                       " ms)";
            }
        }
        std::lock_guard lock(hsm_error_mutex);
        if (!probe_failure.empty()) return "hsm: " + probe_failure;
        if (!hsm_ok.load()) return "hsm: " + hsm_error;
        return {};
    };
    probe.not_ready_reason = [&]() -> std::string {
        if (!ready.load()) return "starting";
        if (audit_log->slow()) return "audit log: sync past deadline";
        if (!audit_log->healthy()) return "audit log cannot record";
        if (auto e = audit_log->checkpoint_error()) {
            return "audit checkpoint: " + e->code;  // the probe retries it every interval
        }
        // "hsm: <code>..." while the HSM cannot sign with every active key (docs/daemon.md).
        return hsm_not_ready();
    };
    RequestMetrics request_metrics;
    CertificateExpiry certificates;
    MetricsSources metrics_sources;
    metrics_sources.service = &service;
    metrics_sources.audit = audit_log.get();
    metrics_sources.keys = &key_manager;
    metrics_sources.policy = &policy_holder;
    metrics_sources.token = token.get();
    metrics_sources.work_pool = &work_pool;
    metrics_sources.server = &server_ptr;
    metrics_sources.requests = &request_metrics;
    metrics_sources.certificates = &certificates;
    metrics_sources.hsm_up = [&] { return hsm_not_ready().empty(); };
    probe.metrics = [&]() { return render_metrics(metrics_sources); };

    net::ServerOptions server_options;
    server_options.api = {cfg->listen.address, cfg->listen.port};
    server_options.tls = {cfg->tls.cert, cfg->tls.key, cfg->tls.client_ca};
    certificates.load(server_options.tls, log_line);
    server_options.ops = net::ListenAddress{cfg->operations.address, cfg->operations.port};
    server_options.limits.header_limit = cfg->limits.max_header_bytes;
    server_options.limits.body_limit = cfg->limits.max_body_bytes;
    server_options.limits.read_timeout = cfg->limits.read_timeout;
    server_options.limits.idle_timeout = cfg->limits.idle_timeout;
    server_options.limits.handshake_timeout = cfg->limits.handshake_timeout;
    server_options.limits.max_connections = cfg->limits.max_connections;
    server_options.limits.max_handshakes = cfg->limits.max_handshakes;
    server_options.io_threads =
        static_cast<unsigned>(cfg->server.worker_threads > 0 ? cfg->server.worker_threads : 2);
    server_options.log = log_line;
    server_options.on_exchange = [&request_metrics](const net::Exchange& x) {
        net::log_exchange(x);
        request_metrics.record(x);
    };
    AuditProbe audit_probe;
    audit_probe.slow = [&audit_log] { return audit_log->slow(); };
    audit_probe.retry_after = std::chrono::ceil<std::chrono::seconds>(cfg->audit.sync_timeout);
    if (cfg->public_jwks) {
        server_options.public_listener =
            net::ListenAddress{cfg->public_jwks->address, cfg->public_jwks->port};
        server_options.public_limits = server_options.limits;
    }
    auto server = net::Server::create(
        server_options, make_api_handler(service, executor, audit_probe), make_ops_handler(probe),
        cfg->public_jwks ? make_public_handler(service) : nullptr);
    if (!server) {
        log_line("listeners: " + server.error().to_string());
        return kExitRuntime;
    }
    server_ptr = server->get();
    if (auto st = (*server)->start(); !st) {
        log_line("listeners: " + st.error().to_string());
        return kExitRuntime;
    }

    // Key state is shared with every daemon on the token: re-read it periodically.
    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stopping = false;
    // audit.prune_after (docs/audit.md#pruning-while-the-daemon-runs): at a refresh tick at most
    // once per min(prune_after, 1 h), the payloads of entries older than prune_after go; each
    // contiguous run pruned is audited as system (audit.prune) after the rewrite. A failure is
    // logged and the next period tries again; signing never waits for it.
    std::optional<std::chrono::steady_clock::time_point> last_prune;
    auto maybe_prune = [&] {
        if (!cfg->audit.prune_after) return;
        const auto period =
            std::min<std::chrono::milliseconds>(*cfg->audit.prune_after, std::chrono::hours(1));
        const auto now = std::chrono::steady_clock::now();
        if (last_prune && now - *last_prune < period) return;
        last_prune = now;
        const core::TimePoint before = core::Clock::now() - *cfg->audit.prune_after;
        auto pruned = audit_log->prune_before(before);
        if (!pruned) {
            log_line("audit prune: " + pruned.error().to_string() + "; retrying in " +
                     std::to_string(period.count()) + " ms");
            return;
        }
        for (const audit::PrunedRange& range : pruned->newly_pruned_ranges) {
            audit::Entry e;
            e.principal = std::string(policy::kSystemPrincipal);
            e.action = "audit.prune";
            e.result = audit::Outcome::allowed;
            e.pruned_first = range.first;
            e.pruned_count = range.count;
            auto appended = audit_log->append(std::move(e));
            log_line("audit prune: removed the payloads of entries " + std::to_string(range.first) +
                     ".." + std::to_string(range.first + range.count - 1) + " (older than " +
                     core::format_rfc3339_ms(before) + "; " +
                     std::to_string(pruned->rewritten.size()) + " segments rewritten)" +
                     (appended ? "; audited as entry " + std::to_string(appended->index)
                               : "; audit: " + appended.error().to_string()));
        }
    };

    std::thread refresher([&] {
        core::name_this_thread("key-refresh");
        std::unique_lock lock(stop_mutex);
        while (!stop_cv.wait_for(lock, cfg->cluster.refresh_interval, [&] { return stopping; })) {
            lock.unlock();
            auto st = key_manager.refresh();
            if (!st) {
                // The last good key state stays in force (KeyManager::refresh).
                token->fault_log().fault("keys: key refresh", st.error().to_string());
                std::lock_guard elock(hsm_error_mutex);
                hsm_ok = false;
                hsm_error = st.error().code + ": " + st.error().message;
            } else {
                if (!hsm_ok.exchange(true)) token->fault_log().recovered("keys: ");
                // Request expiry, unfinished executions, scheduled rotations.
                service.tick(core::Clock::now());
                if (auto pst = maintain_pseudonyms(core::Clock::now()); !pst) {
                    token->fault_log().fault("pseudonyms: epoch keys", pst.error().to_string());
                }
            }
            maybe_prune();  // needs no HSM call: also while the token is away
            lock.lock();
        }
    });

    std::atomic<bool> checkpoint_retrying{false};
    std::thread checkpoint_retry;  // owned by the prober; joined after the log is closed
    std::thread prober([&] {
        core::name_this_thread("ready-probe");
        std::map<std::string, hsm::KeyRef> refs;  // by "<label>#<CKA_ID hex>"
        auto probe_once = [&]() -> std::string {
            for (const auto& v : key_manager.all_versions()) {
                if (v.record.state != keys::KeyState::active) continue;
                const std::string ck = v.label + "#" + v.id_hex;
                auto it = refs.find(ck);
                if (it == refs.end()) {
                    auto id = core::hex_decode(v.id_hex);
                    if (!id) return id.error().code;
                    auto ref = token->load_key(v.label, &*id);
                    if (!ref) return ref.error().code + ": " + ref.error().message;
                    it = refs.emplace(ck, std::move(*ref)).first;
                }
                auto sig = token->sign(it->second, core::as_bytes(kProbeMessage));
                if (!sig) return sig.error().code + ": " + sig.error().message;
            }
            return {};
        };
        std::unique_lock lock(stop_mutex);
        for (;;) {
            lock.unlock();
            probe_started_ms = steady_ms();
            std::string failure = probe_once();
            probe_started_ms = 0;
            probe_finished_ms = steady_ms();
            if (failure.empty()) {
                token->fault_log().recovered("probe: ");
                token->fault_log().recovered("timeout: ");
            } else {
                token->fault_log().fault("probe: readiness", failure);
            }
            {
                std::lock_guard elock(hsm_error_mutex);
                probe_failure = std::move(failure);
            }
            // A checkpoint that could not be signed or anchored is tried again now, not only
            // at the log's next trigger, so readiness returns as soon as the cause is gone. On
            // its own thread: a hung HSM must not stop the probe.
            if (audit_log->checkpoint_error() && !checkpoint_retrying.exchange(true)) {
                if (checkpoint_retry.joinable()) checkpoint_retry.join();
                checkpoint_retry = std::thread([&] {
                    core::name_this_thread("checkpoint-retry");
                    (void)audit_log->checkpoint_now();
                    checkpoint_retrying = false;
                });
            }
            lock.lock();
            if (stop_cv.wait_for(lock, kProbeInterval, [&] { return stopping; })) break;
        }
    });

    ready = true;
    std::string listening = "API on " + cfg->listen.address + ":" +
                            std::to_string((*server)->api_port()) + ", operations on " +
                            cfg->operations.address + ":" + std::to_string((*server)->ops_port());
    if (cfg->public_jwks) {
        listening += ", public JWKS on " + cfg->public_jwks->address + ":" +
                     std::to_string((*server)->public_port());
    }
    notify_serving(listening);
    log_line("ready: " + listening);
    Watchdog watchdog((*server)->io_context(), probe_finished_ms);
    watchdog.start();

    for (;;) {
        int sig = net::wait_for_signal();
        if (sig == SIGHUP) {
            // RELOADING=1 with the time of the request (sd_notify(3)), READY=1 once done.
            notify("RELOADING=1\nSTATUS=reloading policy and TLS certificate\nMONOTONIC_USEC=" +
                   std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::steady_clock::now().time_since_epoch())
                                      .count()));
            auto reloaded = policy_holder.reload(cfg->policy.path);
            if (reloaded.ok()) {
                log_line("SIGHUP: policy reloaded (sha256 " + reloaded.engine->sha256_hex() + ")");
            } else {
                log_line("SIGHUP: policy reload failed; the old policy stays in force:\n" +
                         reloaded.error().message);
            }
            if (auto st = (*server)->reload_tls(server_options.tls); !st) {
                log_line("SIGHUP: TLS reload failed; the old certificate stays: " +
                         st.error().to_string());
            } else {
                log_line("SIGHUP: TLS certificate reloaded");
                certificates.load(server_options.tls, log_line);
            }
            notify_serving(listening);
            continue;
        }
        log_line(std::string("signal ") + strsignal(sig) + ": draining");
        break;
    }
    notify("STOPPING=1\nSTATUS=stopping: draining connections, closing the audit log");
    watchdog.stop();
    ready = false;
    // Receipts still waiting for a checkpoint are answered 503 now, so they do not hold the
    // drain; later ones are answered at once.
    checkpoint_waiter.stop();
    (*server)->stop(kDrain);
    work_pool.stop();
    {
        std::lock_guard lock(stop_mutex);
        stopping = true;
    }
    stop_cv.notify_all();
    refresher.join();
    prober.join();
    auto closed = audit_log->close();                          // signs the final checkpoint
    if (checkpoint_retry.joinable()) checkpoint_retry.join();  // close() released it
    if (!closed) {
        log_line("audit log close: " + closed.error().to_string());
        return kExitRuntime;
    }
    log_line("stopped");
    return kExitOk;
}

}  // namespace licentra::app
