// licentra-signd's /metrics: the request metrics it records itself, and the exposition of every
// metric (docs/operations.md#metrics) from the modules that keep them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/metrics.hpp"
#include "net/server.hpp"
#include "net/tls.hpp"

namespace licentra {
namespace audit {
class AuditLog;
}
namespace hsm {
class Token;
}
namespace keys {
class KeyManager;
}
namespace net {
class WorkPool;
}
namespace policy {
class EngineHolder;
}
namespace service {
class Service;
}
}  // namespace licentra

namespace licentra::app {

// Responses of both listeners by route template and status, and their durations by route.
// record() is lock-free (called on the io threads once per response).
class RequestMetrics {
  public:
    void record(const net::Exchange& x) noexcept;
    void write(core::metrics::Exposition& out) const;

  private:
    core::metrics::Family<core::metrics::Counter> requests_{{"route", "status"}, 1024};
    core::metrics::HistogramFamily durations_{{"route"}, 64, core::metrics::kLatencySeconds};
};

// notAfter of the server certificate chain and of the client CA bundle (Unix seconds; 0 while
// unknown), read at start and after each SIGHUP TLS reload.
struct CertificateExpiry {
    std::atomic<std::int64_t> server{0};
    std::atomic<std::int64_t> client_ca{0};
    // Reads both files; a file that cannot be read keeps its previous value and is reported.
    void load(const net::ServerTlsFiles& files, const std::function<void(std::string_view)>& log);
};

// Where the metrics come from; every pointer outlives the operations listener.
struct MetricsSources {
    const service::Service* service = nullptr;
    const audit::AuditLog* audit = nullptr;
    const keys::KeyManager* keys = nullptr;
    const policy::EngineHolder* policy = nullptr;
    const hsm::Token* token = nullptr;
    const net::WorkPool* work_pool = nullptr;
    const net::Server* const* server = nullptr;  // *server is null until the server exists
    const RequestMetrics* requests = nullptr;
    const CertificateExpiry* certificates = nullptr;
    std::function<bool()> hsm_up;  // the readiness probe's HSM part is fine
};

// The whole exposition (text/plain; version=0.0.4).
[[nodiscard]] std::string render_metrics(const MetricsSources& s);

}  // namespace licentra::app
