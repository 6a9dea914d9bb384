// licentra-signd's composition root: loads configuration and policy, opens the HSM, the audit
// log and the listeners, wires the use cases, and runs until SIGTERM/SIGINT.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/result.hpp"
#include "core/time.hpp"

namespace licentra {
namespace audit {
class AuditLog;
class CheckpointWaiter;
class WaiterAnchor;
}  // namespace audit
namespace config {
struct Config;
}
namespace hsm {
class HsmSigner;
class Module;
class Token;
}  // namespace hsm
namespace keys {
class KeyManager;
}
namespace net {
class Server;
class WorkPool;
}  // namespace net
namespace policy {
class EngineHolder;
}
namespace service {
class Service;
}
namespace app::wiring {
class HsmCheckpointAnchor;
class HsmPseudonymizer;
class HsmRequestStore;
}  // namespace app::wiring
}  // namespace licentra

namespace licentra::app {

struct CertificateExpiry;
struct MetricsSources;
class RequestMetrics;
class Watchdog;
class WorkPoolExecutor;

// The daemon, built in stages, one per concern: configuration and policy, the HSM, the audit
// log, the key state, the use cases, the listeners, the background workers. A stage that fails
// reports why where it happens (configuration and policy problems on stderr, everything else in
// the operational log) and returns the failure: kind `usage` when the configuration or policy
// is invalid, `unavailable` for a runtime failure. What an earlier stage built is released in
// reverse order.
//
// Not thread-safe: create(), run() and stop() are called from the main thread, which alone
// receives the lifecycle signals.
class Daemon {
  public:
    // Builds every stage and starts the listeners and workers; readiness is declared by run().
    static core::Result<std::unique_ptr<Daemon>> create(const std::filesystem::path& config_path);

    // --check-config: configuration, policy and an HSM login, then a summary on `out`. Nothing
    // is started; errors as create().
    static core::Status check(const std::filesystem::path& config_path, std::ostream& out);

    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;
    ~Daemon();  // stop() unless it was called

    // Declares the daemon ready and serves until SIGTERM or SIGINT; SIGHUP reloads the policy
    // and the TLS certificate.
    void run();

    // Drains the connections, stops the workers and closes the audit log with a final
    // checkpoint. Fails when the log could not be closed. Idempotent.
    core::Status stop();

  private:
    Daemon();

    // The stages of create(), in order.
    static core::Result<std::unique_ptr<Daemon>> open(const std::filesystem::path& config_path);
    core::Status load_configuration(const std::filesystem::path& config_path);
    core::Status open_hsm();
    core::Status open_audit();
    core::Status audit_key_bootstrap(unsigned version);
    core::Status start_keys();
    core::Status start_service();
    core::Status start_listeners();
    void start_workers();

    core::Status maintain_pseudonyms(core::TimePoint now);
    std::string hsm_not_ready();
    std::string not_ready_reason();
    void refresh_tick();
    void maybe_prune();
    void probe_loop();
    void reload();

    // In the order the stages create them, so the destructor releases everything after what uses
    // it; the threads, last, are joined by stop().
    std::unique_ptr<config::Config> cfg_;
    std::unique_ptr<policy::EngineHolder> policy_holder_;
    std::shared_ptr<hsm::Module> module_;
    std::shared_ptr<hsm::Token> token_;

    std::unique_ptr<hsm::HsmSigner> audit_signer_;
    std::unique_ptr<wiring::HsmCheckpointAnchor> anchor_;
    std::unique_ptr<audit::CheckpointWaiter> checkpoint_waiter_;
    std::unique_ptr<audit::WaiterAnchor> waiter_anchor_;
    std::unique_ptr<wiring::HsmPseudonymizer> pseudonymizer_;
    std::unique_ptr<audit::AuditLog> audit_log_;

    std::unique_ptr<keys::KeyManager> key_manager_;
    std::unique_ptr<net::WorkPool> work_pool_;
    std::unique_ptr<WorkPoolExecutor> executor_;
    std::unique_ptr<wiring::HsmRequestStore> request_store_;
    std::unique_ptr<service::Service> service_;

    // Readiness: set by run(), the key refresher and the readiness prober.
    std::atomic<bool> ready_{false};
    std::atomic<bool> hsm_ok_{true};
    std::mutex hsm_error_mutex_;
    std::string hsm_error_;                           // guarded by hsm_error_mutex_
    std::atomic<std::int64_t> probe_started_ms_{0};   // steady ms of the probe in flight, or 0
    std::atomic<std::int64_t> probe_finished_ms_{0};  // of the last probe (watchdog)
    std::string probe_failure_;                       // guarded by hsm_error_mutex_; "" = signs

    std::unique_ptr<RequestMetrics> request_metrics_;
    std::unique_ptr<CertificateExpiry> certificates_;
    std::unique_ptr<MetricsSources> metrics_sources_;
    const net::Server* server_view_ = nullptr;  // server_ for the metrics, null until it exists
    std::unique_ptr<net::Server> server_;

    std::mutex stop_mutex_;
    std::condition_variable stop_cv_;
    bool stopping_ = false;                                            // guarded by stop_mutex_
    std::optional<std::chrono::steady_clock::time_point> last_prune_;  // key refresher only
    std::thread refresher_;
    std::atomic<bool> checkpoint_retrying_{false};
    std::thread checkpoint_retry_;  // owned by the prober; joined after the log is closed
    std::thread prober_;
    std::unique_ptr<Watchdog> watchdog_;

    std::string listening_;  // the listeners' addresses, for the status line
    bool running_ = false;   // create() succeeded and stop() has not run
};

// Returns the process exit code (see signd_main.cpp).
int run_daemon(const std::filesystem::path& config_path, bool check_only);

}  // namespace licentra::app
