#include "app/daemon/daemon.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "app/daemon/metrics.hpp"
#include "app/daemon/routes.hpp"
#include "app/wiring/audit_hsm.hpp"
#include "app/wiring/requests_hsm.hpp"
#include "audit/checkpoint_waiter.hpp"
#include "audit/log.hpp"
#include "config/config.hpp"
#include "core/thread_name.hpp"
#include "hsm/hsm.hpp"
#include "keys/capabilities.hpp"
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

// A stage that cannot start: reported in the operational log, then a runtime failure (exit 1)
// whatever the kind of its cause.
core::Error start_failure(std::string line) {
    log_line(line);
    return core::make_error(core::ErrorKind::unavailable, "daemon.start_failed", std::move(line));
}

// Readiness probe of the HSM: a self-test signature with every active key, every
// kProbeInterval, on its own thread. A probe past hsm.call_timeout makes /readyz answer 503
// while it lasts.
constexpr auto kProbeInterval = std::chrono::milliseconds(500);

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// systemd service notifications (sd_notify(3)); no-ops when $NOTIFY_SOCKET is not set.
void notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

// READY=1 (again, after a reload) with the status line systemctl shows.
void notify_serving(const std::string& status) { notify("READY=1\nSTATUS=serving: " + status); }

// The newest licentra/audit/v<N>, or v1 generated now with `algorithm` (Ed25519 or ECDSA P-256,
// the C2SP signed-note types 0x01 and 0x02). An existing key keeps its algorithm.
core::Result<hsm::KeyRef> audit_key(hsm::Token& token, const hsm::GenerateCapability& capability,
                                    crypto::Algorithm algorithm, bool* generated) {
    *generated = false;
    auto listed = token.list_keys("licentra/audit/");
    if (!listed) return listed.error();
    unsigned newest = 0;
    for (const auto& k : *listed) {
        if (k.name == "audit" && k.has_private && k.version > newest) newest = k.version;
    }
    if (newest > 0) return token.load_key("audit", newest);
    *generated = true;
    return token.generate_key(capability, 1, algorithm);
}

// One readiness probe: a self-test signature (Token::self_test: fresh random bytes, checked)
// with every active key. Returns "" when all signed, else the first failure's code and message.
// refs caches the key handles by "<label>#<CKA_ID hex>".
std::string probe_active_keys(const std::shared_ptr<hsm::Token>& token,
                              const keys::KeyManager& key_manager,
                              std::map<std::string, hsm::KeyRef>& refs) {
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
        if (auto st = token->self_test(it->second); !st) {
            return st.error().code + ": " + st.error().message;
        }
    }
    return {};
}

audit::LogOptions audit_log_options(const config::Config& cfg) {
    audit::LogOptions options;
    options.dir = cfg.audit.dir;
    options.origin = cfg.audit.origin;
    options.key_name = cfg.audit.origin;
    options.segment_max_bytes = cfg.audit.segment_bytes;
    options.checkpoint_every = cfg.audit.checkpoint_every_entries;
    options.checkpoint_interval = cfg.audit.checkpoint_interval;
    options.sync_timeout = cfg.audit.sync_timeout;
    return options;
}

// This replica's share of the key state on the token (docs/adr/0004).
keys::ClusterOptions cluster_options(const config::Config& cfg) {
    keys::ClusterOptions cluster;
    cluster.replica = cfg.audit.origin;
    cluster.claims.write_bound = cfg.cluster.claim_write_bound;
    cluster.claims.settle = 2 * cfg.cluster.claim_write_bound;
    cluster.min_pre_active = 2 * cfg.cluster.refresh_interval;
    cluster.log = [](std::string_view line) { log_line(line); };
    return cluster;
}

net::ServerTlsFiles tls_files(const config::Config& cfg) {
    return {cfg.tls.cert, cfg.tls.key, cfg.tls.client_ca};
}

// The listeners; the handlers and on_exchange are the caller's.
net::ServerOptions server_options(const config::Config& cfg) {
    net::ServerOptions options;
    options.api = {cfg.listen.address, cfg.listen.port};
    options.tls = tls_files(cfg);
    options.ops = net::ListenAddress{cfg.operations.address, cfg.operations.port};
    options.limits.header_limit = cfg.limits.max_header_bytes;
    options.limits.body_limit = cfg.limits.max_body_bytes;
    options.limits.read_timeout = cfg.limits.read_timeout;
    options.limits.idle_timeout = cfg.limits.idle_timeout;
    options.limits.handshake_timeout = cfg.limits.handshake_timeout;
    options.limits.max_connections = cfg.limits.max_connections;
    options.limits.max_handshakes = cfg.limits.max_handshakes;
    options.io_threads =
        static_cast<unsigned>(cfg.server.worker_threads > 0 ? cfg.server.worker_threads : 2);
    options.log = log_line;
    if (cfg.public_jwks) {
        options.public_listener =
            net::ListenAddress{cfg.public_jwks->address, cfg.public_jwks->port};
        options.public_limits = options.limits;
    }
    return options;
}

int exit_code(const core::Error& e) {
    return e.kind == core::ErrorKind::usage ? kExitInvalid : kExitRuntime;
}

}  // namespace

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

Daemon::Daemon() = default;

Daemon::~Daemon() { (void)stop(); }

core::Result<std::unique_ptr<Daemon>> Daemon::create(const std::filesystem::path& config_path) {
    auto opened = open(config_path);
    if (!opened) return opened;
    Daemon& daemon = **opened;
    for (auto stage : {&Daemon::open_audit, &Daemon::start_keys, &Daemon::start_service,
                       &Daemon::start_listeners}) {
        if (auto st = (daemon.*stage)(); !st) return std::move(st).error();
    }
    daemon.start_workers();
    daemon.running_ = true;
    return opened;
}

core::Status Daemon::check(const std::filesystem::path& config_path, std::ostream& out) {
    auto opened = open(config_path);
    if (!opened) return std::move(opened).error();
    const Daemon& daemon = **opened;
    out << "configuration " << config_path.string() << ": ok\n"
        << "policy " << daemon.cfg_->policy.path.string() << ": ok (sha256 "
        << daemon.policy_holder_->current()->sha256_hex() << ")\n"
        << "HSM token " << daemon.token_->label() << ": logged in\n";
    return {};
}

// The stages --check-config runs too.
core::Result<std::unique_ptr<Daemon>> Daemon::open(const std::filesystem::path& config_path) {
    std::unique_ptr<Daemon> daemon(new Daemon());
    if (auto st = daemon->load_configuration(config_path); !st) return std::move(st).error();
    if (auto st = daemon->open_hsm(); !st) return std::move(st).error();
    return daemon;
}

// Configuration and policy: every problem reported, nothing started.
core::Status Daemon::load_configuration(const std::filesystem::path& config_path) {
    std::vector<config::Diagnostic> diagnostics;
    auto cfg = config::load_and_validate(config_path, &diagnostics);
    if (!cfg) {
        for (const auto& d : diagnostics) std::cerr << d.to_string() << '\n';
        if (diagnostics.empty()) std::cerr << cfg.error().to_string() << '\n';
        return core::make_error(core::ErrorKind::usage, "daemon.config_invalid",
                                config_path.string());
    }
    auto policy_load = policy::load_policy_file(cfg->policy.path);
    if (!policy_load.ok()) {
        std::cerr << policy_load.error().message << '\n';
        return core::make_error(core::ErrorKind::usage, "daemon.policy_invalid",
                                cfg->policy.path.string());
    }
    cfg_ = std::make_unique<config::Config>(std::move(*cfg));
    policy_holder_ = std::make_unique<policy::EngineHolder>(policy_load.engine);
    net::configure_log(cfg_->log.level, cfg_->log.format);

    // Lifecycle signals go to the main thread only: block them before any thread starts.
    if (!net::block_signals()) return start_failure("cannot block signals");
    return {};
}

core::Status Daemon::open_hsm() {
    auto module = hsm::Module::load(cfg_->hsm.module);
    if (!module) return start_failure("HSM module: " + module.error().to_string());
    module_ = std::move(*module);
    hsm::TokenOptions token_options;
    token_options.uri = cfg_->hsm.token_uri;
    token_options.pool_size = cfg_->hsm.session_pool;
    token_options.pin_file = cfg_->hsm.pin_file;  // resolved against the config file
    token_options.log = [](std::string_view line) { log_line(line); };
    auto opened = hsm::Token::open(module_, token_options);
    if (!opened) return start_failure("HSM token: " + opened.error().to_string());
    token_ = std::move(*opened);
    return {};
}

// The audit log, its checkpoint key on the token, its anchor and the pseudonym key.
core::Status Daemon::open_audit() {
    bool audit_key_generated = false;
    const auto checkpoint_grant = policy_holder_->current()->checkpoint_grant();
    auto audit_ref = audit_key(*token_, keys::Capabilities::checkpoint_key(checkpoint_grant),
                               cfg_->audit.key_algorithm == config::AuditKeyAlgorithm::es256
                                   ? crypto::Algorithm::ES256
                                   : crypto::Algorithm::EdDSA,
                               &audit_key_generated);
    if (!audit_ref) return start_failure("audit key: " + audit_ref.error().to_string());
    audit_signer_ = std::make_unique<hsm::HsmSigner>(
        token_, *audit_ref, keys::Capabilities::checkpoints(checkpoint_grant));
    anchor_ = std::make_unique<wiring::HsmCheckpointAnchor>(token_, cfg_->audit.origin);
    // Receipts wait for the checkpoint that covers their entry: the waiter learns of every
    // checkpoint the log stores through the anchor (docs/api.md, GET /v1/tokens/receipt).
    checkpoint_waiter_ = std::make_unique<audit::CheckpointWaiter>();
    waiter_anchor_ = std::make_unique<audit::WaiterAnchor>(anchor_.get(), *checkpoint_waiter_);
    pseudonymizer_ = std::make_unique<wiring::HsmPseudonymizer>(token_);
    if (auto st = pseudonymizer_->ensure_key(); !st) {
        return start_failure("pseudonym key: " + st.error().to_string());
    }
    auto log = audit::AuditLog::open(
        audit_log_options(*cfg_), {audit_signer_.get(), waiter_anchor_.get(), nullptr, log_line});
    if (!log) return start_failure("audit log: " + log.error().to_string());
    audit_log_ = std::move(*log);
    checkpoint_waiter_->advance(audit_log_->checkpoint_size());
    if (const auto& r = audit_log_->recovery(); r.torn_log) {
        log_line("audit log: cut back a torn final record at start (" + std::to_string(r.size) +
                 " entries kept)");
    }
    log_line("audit log " + cfg_->audit.dir.string() + ": " + std::to_string(audit_log_->size()) +
             " entries; checkpoint verifier key " + audit_log_->verifier().to_string());
    {
        // A convenience copy for auditors; they should confirm it out of band (docs/audit.md).
        std::ofstream vkey(cfg_->audit.dir / "verifier.vkey", std::ios::trunc);
        vkey << audit_log_->verifier().to_string() << '\n';
    }
    if (audit_key_generated) return audit_key_bootstrap(audit_ref->version);
    return {};
}

// The audit key was generated at this start: the log's first word about it.
core::Status Daemon::audit_key_bootstrap(unsigned version) {
    audit::Entry e;
    e.principal = std::string(policy::kSystemPrincipal);
    e.action = "audit.key.bootstrap";
    e.result = audit::Outcome::allowed;
    e.key = "audit";
    e.version = version;
    e.policy_sha256 = policy_holder_->current()->sha256_hex();
    if (auto a = audit_log_->append(std::move(e)); !a) {
        return start_failure("audit log: " + a.error().to_string());
    }
    return {};
}

core::Status Daemon::start_keys() {
    auto created_keys = keys::KeyManager::create(
        keys::hsm_key_store(token_),
        [](const crypto::PublicKey& k) {
            auto kid = token::jwk_thumbprint(k);
            return kid ? *kid : std::string();
        },
        cluster_options(*cfg_));
    if (!created_keys) return start_failure("keys: " + created_keys.error().to_string());
    key_manager_ = std::move(*created_keys);
    return {};
}

// The use cases, their HSM work pool, the keys' first bootstrap and the pseudonym epochs.
core::Status Daemon::start_service() {
    const std::size_t hsm_threads =
        cfg_->server.hsm_threads > 0 ? cfg_->server.hsm_threads : cfg_->hsm.session_pool;
    // A hung module may hold every HSM thread: at most as many again are started to replace
    // them (net::WorkPool), the io threads never wait for the module.
    work_pool_ = std::make_unique<net::WorkPool>(hsm_threads, 4096, hsm_threads, "hsm");
    const auto call_timeout = cfg_->hsm.call_timeout;
    executor_ = std::make_unique<WorkPoolExecutor>(*work_pool_, call_timeout, [this, call_timeout] {
        token_->fault_log().fault("timeout: hsm.call_timeout",
                                  "the HSM work of a signing request did not finish within " +
                                      std::to_string(call_timeout.count()) +
                                      " ms; answered 503 hsm.timeout, its thread replaced");
    });
    request_store_ = std::make_unique<wiring::HsmRequestStore>(token_);
    service::Dependencies service_deps{request_store_.get(), policy_holder_.get(),
                                       key_manager_.get(),   audit_log_.get(),
                                       pseudonymizer_.get(), executor_.get(),
                                       cfg_->audit.origin,   cluster_options(*cfg_).claims};
    service_deps.checkpoints = checkpoint_waiter_.get();
    service_deps.log = [](std::string_view line) { log_line(line); };
    // A checkpoint comes at most checkpoint_interval after the entry; the margin covers the
    // HSM signature. When it did not come, the log retries signing every 5 s at most.
    service_deps.receipt_wait = cfg_->audit.checkpoint_interval + std::chrono::seconds(5);
    service_deps.receipt_retry_after =
        std::max(std::chrono::seconds(1),
                 std::chrono::ceil<std::chrono::seconds>(std::min<std::chrono::milliseconds>(
                     cfg_->audit.checkpoint_interval, std::chrono::seconds(5))));
    auto created_service = service::Service::create(std::move(service_deps));
    if (!created_service) return start_failure("service: " + created_service.error().to_string());
    service_ = std::move(*created_service);
    if (auto st = service_->bootstrap_keys(); !st) {
        // The key stays unavailable (409) until it exists; the periodic tick tries again.
        log_line("key bootstrap: " + st.error().to_string());
    }
    // Every active key passed its attribute check and self-test in refresh (load_key).
    if (auto st = key_manager_->refresh(); !st) {
        return start_failure("keys: " + st.error().to_string());
    }
    if (auto st = maintain_pseudonyms(core::Clock::now()); !st) {
        return start_failure("pseudonyms: " + st.error().to_string());
    }
    return {};
}

// Pseudonym epochs (docs/privacy.md): the current and the next epoch's keys exist before
// any token is signed; keys past retention are destroyed, as `system`, and audited.
core::Status Daemon::maintain_pseudonyms(core::TimePoint now) {
    const auto engine = policy_holder_->current();
    const auto& epochs = engine->pseudonyms();
    if (!epochs) return {};
    auto destroyed = pseudonymizer_->maintain(now, epochs->epoch, epochs->retention);
    if (!destroyed) return std::move(destroyed).error();
    for (const auto& epoch : *destroyed) {
        audit::Entry e;
        e.principal = std::string(policy::kSystemPrincipal);
        e.action = "pseudonym.destroy";
        e.result = audit::Outcome::allowed;
        e.pseudonym_epoch = epoch.name();
        e.policy_sha256 = engine->sha256_hex();
        auto appended = audit_log_->append(std::move(e));
        log_line("pseudonyms: destroyed the key of epoch " + epoch.name() + " (ended " +
                 core::format_rfc3339_ms(epoch.end()) + ")" +
                 (appended ? std::string() : "; audit: " + appended.error().to_string()));
    }
    return {};
}

// The API, operations and (optional) public JWKS listeners, with readiness and metrics.
core::Status Daemon::start_listeners() {
    probe_finished_ms_ = steady_ms();
    OpsProbe probe;
    probe.live = [] { return true; };
    probe.not_ready_reason = [this] { return not_ready_reason(); };
    request_metrics_ = std::make_unique<RequestMetrics>();
    certificates_ = std::make_unique<CertificateExpiry>();
    metrics_sources_ = std::make_unique<MetricsSources>();
    metrics_sources_->service = service_.get();
    metrics_sources_->audit = audit_log_.get();
    metrics_sources_->keys = key_manager_.get();
    metrics_sources_->policy = policy_holder_.get();
    metrics_sources_->token = token_.get();
    metrics_sources_->work_pool = work_pool_.get();
    metrics_sources_->server = &server_view_;
    metrics_sources_->requests = request_metrics_.get();
    metrics_sources_->certificates = certificates_.get();
    metrics_sources_->hsm_up = [this] { return hsm_not_ready().empty(); };
    probe.metrics = [this] { return render_metrics(*metrics_sources_); };

    net::ServerOptions options = server_options(*cfg_);
    certificates_->load(options.tls, log_line);
    options.on_exchange = [requests = request_metrics_.get()](const net::Exchange& x) {
        net::log_exchange(x);
        requests->record(x);
    };
    AuditProbe audit_probe;
    audit_probe.slow = [this] { return audit_log_->slow(); };
    audit_probe.retry_after = std::chrono::ceil<std::chrono::seconds>(cfg_->audit.sync_timeout);
    auto server = net::Server::create(options, make_api_handler(*service_, *executor_, audit_probe),
                                      make_ops_handler(probe),
                                      cfg_->public_jwks ? make_public_handler(*service_) : nullptr);
    if (!server) return start_failure("listeners: " + server.error().to_string());
    server_ = std::move(*server);
    server_view_ = server_.get();
    if (auto st = server_->start(); !st)
        return start_failure("listeners: " + st.error().to_string());
    return {};
}

// The HSM part of readiness: "" while every active key signs and the key state reads.
std::string Daemon::hsm_not_ready() {
    // "hsm: <code>..." while the HSM cannot sign with every active key (docs/daemon.md).
    if (const auto started = probe_started_ms_.load(); started != 0) {
        const auto running = steady_ms() - started;
        if (running > cfg_->hsm.call_timeout.count()) {
            token_->fault_log().fault("timeout: readiness probe",
                                      "a readiness probe signature has been running for " +
                                          std::to_string(running) + " ms");
            return "hsm: hsm.timeout (readiness probe running for " + std::to_string(running) +
                   " ms)";
        }
    }
    std::lock_guard lock(hsm_error_mutex_);
    if (!probe_failure_.empty()) return "hsm: " + probe_failure_;
    if (!hsm_ok_.load()) return "hsm: " + hsm_error_;
    return {};
}

std::string Daemon::not_ready_reason() {
    if (!ready_.load()) return "starting";
    if (audit_log_->slow()) return "audit log: sync past deadline";
    if (!audit_log_->healthy()) return "audit log cannot record";
    if (auto e = audit_log_->checkpoint_error()) {
        return "audit checkpoint: " + e->code;  // the probe retries it every interval
    }
    // "hsm: <code>..." while the HSM cannot sign with every active key (docs/daemon.md).
    return hsm_not_ready();
}

// The key refresher (key-refresh) and the readiness prober (ready-probe), until stop().
void Daemon::start_workers() {
    // Key state is shared with every daemon on the token: re-read it periodically.
    refresher_ = std::thread([this] {
        core::name_this_thread("key-refresh");
        std::unique_lock lock(stop_mutex_);
        while (!stop_cv_.wait_for(lock, cfg_->cluster.refresh_interval,
                                  [this] { return stopping_; })) {
            lock.unlock();
            refresh_tick();
            lock.lock();
        }
    });
    prober_ = std::thread([this] {
        core::name_this_thread("ready-probe");
        probe_loop();
    });
    watchdog_ = std::make_unique<Watchdog>(server_->io_context(), probe_finished_ms_);
}

void Daemon::refresh_tick() {
    auto st = key_manager_->refresh();
    if (!st) {
        // The last good key state stays in force (KeyManager::refresh).
        token_->fault_log().fault("keys: key refresh", st.error().to_string());
        std::lock_guard elock(hsm_error_mutex_);
        hsm_ok_ = false;
        hsm_error_ = st.error().code + ": " + st.error().message;
    } else {
        if (!hsm_ok_.exchange(true)) token_->fault_log().recovered("keys: ");
        // Request expiry, unfinished executions, scheduled rotations.
        service_->tick(core::Clock::now());
        if (auto pst = maintain_pseudonyms(core::Clock::now()); !pst) {
            token_->fault_log().fault("pseudonyms: epoch keys", pst.error().to_string());
        }
    }
    maybe_prune();  // needs no HSM call: also while the token is away
}

// audit.prune_after (docs/audit.md#pruning-while-the-daemon-runs): at a refresh tick at most
// once per min(prune_after, 1 h), the payloads of entries older than prune_after go; each
// contiguous run pruned is audited as system (audit.prune) after the rewrite. A failure is
// logged and the next period tries again; signing never waits for it.
void Daemon::maybe_prune() {
    if (!cfg_->audit.prune_after) return;
    const auto period =
        std::min<std::chrono::milliseconds>(*cfg_->audit.prune_after, std::chrono::hours(1));
    const auto now = std::chrono::steady_clock::now();
    if (last_prune_ && now - *last_prune_ < period) return;
    last_prune_ = now;
    const core::TimePoint before = core::Clock::now() - *cfg_->audit.prune_after;
    auto pruned = audit_log_->prune_before(before);
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
        auto appended = audit_log_->append(std::move(e));
        log_line("audit prune: removed the payloads of entries " + std::to_string(range.first) +
                 ".." + std::to_string(range.first + range.count - 1) + " (older than " +
                 core::format_rfc3339_ms(before) + "; " + std::to_string(pruned->rewritten.size()) +
                 " segments rewritten)" +
                 (appended ? "; audited as entry " + std::to_string(appended->index)
                           : "; audit: " + appended.error().to_string()));
    }
}

void Daemon::probe_loop() {
    std::map<std::string, hsm::KeyRef> refs;  // by "<label>#<CKA_ID hex>"
    std::unique_lock lock(stop_mutex_);
    for (;;) {
        lock.unlock();
        probe_started_ms_ = steady_ms();
        std::string failure = probe_active_keys(token_, *key_manager_, refs);
        probe_started_ms_ = 0;
        probe_finished_ms_ = steady_ms();
        if (failure.empty()) {
            token_->fault_log().recovered("probe: ");
            token_->fault_log().recovered("timeout: ");
        } else {
            token_->fault_log().fault("probe: readiness", failure);
        }
        {
            std::lock_guard elock(hsm_error_mutex_);
            probe_failure_ = std::move(failure);
        }
        // A checkpoint that could not be signed or anchored is tried again now, not only
        // at the log's next trigger, so readiness returns as soon as the cause is gone. On
        // its own thread: a hung HSM must not stop the probe.
        if (audit_log_->checkpoint_error() && !checkpoint_retrying_.exchange(true)) {
            if (checkpoint_retry_.joinable()) checkpoint_retry_.join();
            checkpoint_retry_ = std::thread([this] {
                core::name_this_thread("checkpoint-retry");
                (void)audit_log_->checkpoint_now();
                checkpoint_retrying_ = false;
            });
        }
        lock.lock();
        if (stop_cv_.wait_for(lock, kProbeInterval, [this] { return stopping_; })) break;
    }
}

void Daemon::run() {
    ready_ = true;
    listening_ = "API on " + cfg_->listen.address + ":" + std::to_string(server_->api_port()) +
                 ", operations on " + cfg_->operations.address + ":" +
                 std::to_string(server_->ops_port());
    if (cfg_->public_jwks) {
        listening_ += ", public JWKS on " + cfg_->public_jwks->address + ":" +
                      std::to_string(server_->public_port());
    }
    notify_serving(listening_);
    log_line("ready: " + listening_);
    watchdog_->start();

    for (;;) {
        int sig = net::wait_for_signal();
        if (sig != SIGHUP) {
            log_line(std::string("signal ") + strsignal(sig) + ": draining");
            return;
        }
        reload();
    }
}

// SIGHUP: the policy and the TLS certificate; what fails to load leaves the old one in force.
void Daemon::reload() {
    // RELOADING=1 with the time of the request (sd_notify(3)), READY=1 once done.
    notify("RELOADING=1\nSTATUS=reloading policy and TLS certificate\nMONOTONIC_USEC=" +
           std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count()));
    auto reloaded = policy_holder_->reload(cfg_->policy.path);
    if (reloaded.ok()) {
        log_line("SIGHUP: policy reloaded (sha256 " + reloaded.engine->sha256_hex() + ")");
    } else {
        log_line("SIGHUP: policy reload failed; the old policy stays in force:\n" +
                 reloaded.error().message);
    }
    const net::ServerTlsFiles tls = tls_files(*cfg_);
    if (auto st = server_->reload_tls(tls); !st) {
        log_line("SIGHUP: TLS reload failed; the old certificate stays: " + st.error().to_string());
    } else {
        log_line("SIGHUP: TLS certificate reloaded");
        certificates_->load(tls, log_line);
    }
    notify_serving(listening_);
}

core::Status Daemon::stop() {
    if (!running_) return {};
    running_ = false;
    notify("STOPPING=1\nSTATUS=stopping: draining connections, closing the audit log");
    watchdog_->stop();
    ready_ = false;
    // Receipts still waiting for a checkpoint are answered 503 now, so they do not hold the
    // drain; later ones are answered at once.
    checkpoint_waiter_->stop();
    server_->stop(kDrain);
    work_pool_->stop();
    {
        std::lock_guard lock(stop_mutex_);
        stopping_ = true;
    }
    stop_cv_.notify_all();
    refresher_.join();
    prober_.join();
    auto closed = audit_log_->close();                           // signs the final checkpoint
    if (checkpoint_retry_.joinable()) checkpoint_retry_.join();  // close() released it
    if (!closed) {
        log_line("audit log close: " + closed.error().to_string());
        return closed;
    }
    log_line("stopped");
    return {};
}

int run_daemon(const std::filesystem::path& config_path, bool check_only) {
    if (check_only) {
        auto checked = Daemon::check(config_path, std::cout);
        return checked ? kExitOk : exit_code(checked.error());
    }
    auto daemon = Daemon::create(config_path);
    if (!daemon) return exit_code(daemon.error());
    (*daemon)->run();
    return (*daemon)->stop() ? kExitOk : kExitRuntime;
}

}  // namespace licentra::app
