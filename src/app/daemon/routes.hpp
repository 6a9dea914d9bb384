// The API and operations routes of licentra-signd: HTTP requests -> service use cases.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "net/http.hpp"
#include "service/service.hpp"

namespace licentra::app {

// What the API reports about a slow audit log (optional).
struct AuditProbe {
    std::function<bool()> slow;           // audit::AuditLog::slow
    std::chrono::seconds retry_after{5};  // Retry-After while it is slow
};

// Routes of the mTLS API listener (docs/api.md). Every route goes through the policy inside the
// service; unknown paths are 404, wrong methods 405. Every 503 carries Retry-After; one caused
// by a slow audit log has the problem type "audit-slow" and code "audit.sync_timeout".
// Blocking work (HSM key generation, token objects, audit file reads) runs on `blocking`.
std::shared_ptr<net::Handler> make_api_handler(service::Service& service,
                                               service::Executor& blocking, AuditProbe audit = {});

// What the operations listener reports.
struct OpsProbe {
    std::function<bool()> live;
    // Returns an empty string when ready, else the reason (e.g. "audit log failed").
    std::function<std::string()> not_ready_reason;
    std::function<std::string()> metrics;  // Prometheus text exposition
};

// GET /.well-known/jwks.json on the public listener (TLS, no client certificate),
// with the same Cache-Control and ETag as the API listener's copy; nothing else.
std::shared_ptr<net::Handler> make_public_handler(service::Service& service);

// /healthz, /readyz and /metrics on the plain-HTTP operations listener; nothing else.
std::shared_ptr<net::Handler> make_ops_handler(OpsProbe probe);

}  // namespace licentra::app
