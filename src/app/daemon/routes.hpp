// The API and operations routes of licentra-signd: HTTP requests -> service use cases.
#pragma once

#include <functional>
#include <memory>

#include "net/http.hpp"
#include "service/service.hpp"

namespace licentra::app {

// Routes of the mTLS API listener (docs/api.md). Every route goes through the policy inside the
// service; unknown paths are 404, wrong methods 405.
// Blocking work (HSM key generation, token objects, audit file reads) runs on `blocking`.
std::shared_ptr<net::Handler> make_api_handler(service::Service& service,
                                               service::Executor& blocking);

// What the operations listener reports.
struct OpsProbe {
    std::function<bool()> live;
    // Returns an empty string when ready, else the reason (e.g. "audit log failed").
    std::function<std::string()> not_ready_reason;
    std::function<std::string()> metrics;  // Prometheus text exposition
};

// /healthz, /readyz and /metrics on the plain-HTTP operations listener; nothing else.
std::shared_ptr<net::Handler> make_ops_handler(OpsProbe probe);

}  // namespace licentra::app
