#include "app/daemon/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "app/version.hpp"
#include "audit/log.hpp"
#include "core/time.hpp"
#include "hsm/hsm.hpp"
#include "keys/key_manager.hpp"
#include "net/work_pool.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"

namespace licentra::app {

using core::metrics::Exposition;
using core::metrics::Label;

void RequestMetrics::record(const net::Exchange& x) noexcept {
    // Route templates only (app/daemon/routes.cpp); a request no handler saw has none.
    const std::string_view route = x.route.empty() ? std::string_view("unmatched") : x.route;
    char status[16];
    const auto end = std::to_chars(status, status + sizeof status, x.status).ptr;
    try {
        requests_.at({route, std::string_view(status, static_cast<std::size_t>(end - status))})
            .inc();
        durations_.at({route}).observe(std::chrono::duration<double>(x.duration).count());
    } catch (...) {
        // Out of memory for a new label set: the response is not counted.
    }
}

void RequestMetrics::write(Exposition& out) const {
    out.family("licentra_http_requests_total",
               "HTTP responses written (API and operations listeners) by route template and "
               "status.",
               "counter", requests_);
    out.family("licentra_http_request_duration_seconds",
               "Time from a request read to its response handed to the socket, by route "
               "template.",
               durations_);
}

void CertificateExpiry::load(const net::ServerTlsFiles& files,
                             const std::function<void(std::string_view)>& log) {
    auto read = [&](const std::filesystem::path& file, std::atomic<std::int64_t>& into) {
        auto t = net::earliest_certificate_expiry(file);
        if (t) {
            into = *t;
        } else if (log) {
            log("metrics: " + t.error().to_string());
        }
    };
    read(files.cert_chain, server);
    read(files.client_ca, client_ca);
}

namespace {

double seconds_of_ms(std::int64_t ms) { return static_cast<double>(ms) / 1000.0; }

void write_hsm(Exposition& out, const MetricsSources& s) {
    const auto& m = hsm::metrics();
    out.gauge("licentra_hsm_up",
              "1 while the readiness probe's HSM part is fine: every active key signs and the "
              "key state can be read.",
              s.hsm_up && s.hsm_up() ? 1 : 0);
    out.family("licentra_hsm_operations_total",
               "PKCS#11 calls by function and result (ok or the class of the CKR_* value).",
               "counter", m.operations);
    out.family("licentra_hsm_errors_total", "PKCS#11 calls that did not return CKR_OK, by CKR_*.",
               "counter", m.errors);
    if (s.token != nullptr) {
        const auto pool = s.token->pool_stats();
        out.header("licentra_hsm_sessions",
                   "Pooled PKCS#11 sessions by state (broken: idle sessions opened before the "
                   "last session or device fault, checked before reuse).",
                   "gauge");
        out.sample("licentra_hsm_sessions", {{"state", "idle"}}, static_cast<double>(pool.idle));
        out.sample("licentra_hsm_sessions", {{"state", "in_use"}},
                   static_cast<double>(pool.in_use));
        out.sample("licentra_hsm_sessions", {{"state", "broken"}},
                   static_cast<double>(pool.suspect));
    }
    out.histogram("licentra_hsm_session_wait_seconds",
                  "Time to borrow a pooled PKCS#11 session (idle, newly opened or waited for).",
                  m.session_wait);
    out.counter("licentra_hsm_sessions_evicted_total",
                "PKCS#11 sessions closed after a session or device fault.",
                static_cast<double>(m.sessions_evicted.value()));
    if (s.work_pool != nullptr) {
        out.gauge("licentra_hsm_work_queued", "Jobs waiting for an HSM thread.",
                  static_cast<double>(s.work_pool->queued()));
    }
}

void write_audit(Exposition& out, const audit::AuditLog& log) {
    const auto size = log.size();
    const auto signed_size = log.checkpoint_size();
    const auto& m = log.metrics();
    out.gauge("licentra_audit_entries", "Durable audit log entries.", static_cast<double>(size));
    out.gauge("licentra_audit_unsigned_entries",
              "Durable audit log entries after the newest signed checkpoint.",
              static_cast<double>(size > signed_size ? size - signed_size : 0));
    out.gauge("licentra_audit_last_checkpoint_timestamp_seconds",
              "When the newest audit checkpoint was stored, Unix time.",
              seconds_of_ms(m.checkpoint_unix_ms.load()));
    out.histogram("licentra_audit_sync_duration_seconds",
                  "Write and fdatasync of one batch of audit entries.", m.sync_seconds);
    out.histogram("licentra_audit_batch_entries",
                  "Audit entries written per write and fdatasync (group commit).", m.batch_entries);
    out.gauge("licentra_audit_healthy", "1 if the audit log accepts appends.",
              log.healthy() ? 1 : 0);
}

void write_keys(Exposition& out, const MetricsSources& s) {
    const auto versions = s.keys->all_versions();
    std::map<std::string, std::vector<keys::KeyVersion>> by_key;
    const auto engine = s.policy->current();
    for (const auto& rules : engine->keys()) by_key[rules.name];
    for (const auto& v : versions) by_key[v.name].push_back(v);

    constexpr keys::KeyState kStates[] = {keys::KeyState::pre_active, keys::KeyState::active,
                                          keys::KeyState::retired, keys::KeyState::destroyed};
    out.header("licentra_key_versions", "Key versions on the token by key and state.", "gauge");
    for (const auto& [key, list] : by_key) {
        for (const auto state : kStates) {
            const auto n = std::count_if(list.begin(), list.end(), [state](const auto& v) {
                return v.record.state == state;
            });
            out.sample("licentra_key_versions", {{"key", key}, {"state", keys::state_name(state)}},
                       static_cast<double>(n));
        }
    }
    out.header("licentra_key_verify_until_timestamp_seconds",
               "Until when the key's retired versions stay published for verifiers (the latest "
               "verify-until of its retired versions), Unix time.",
               "gauge");
    for (const auto& [key, list] : by_key) {
        std::optional<std::int64_t> until;
        for (const auto& v : list) {
            if (v.record.state == keys::KeyState::retired && v.record.verify_until_ms) {
                until =
                    std::max(until.value_or(*v.record.verify_until_ms), *v.record.verify_until_ms);
            }
        }
        if (until) {
            out.sample("licentra_key_verify_until_timestamp_seconds", {{"key", key}},
                       seconds_of_ms(*until));
        }
    }
    out.header("licentra_key_next_rotation_timestamp_seconds",
               "When the scheduled rotation of the key's active version is due, Unix time.",
               "gauge");
    for (const auto& rules : engine->keys()) {
        const auto due = service::scheduled_rotation_due_ms(rules, by_key[rules.name]);
        if (due) {
            out.sample("licentra_key_next_rotation_timestamp_seconds", {{"key", rules.name}},
                       seconds_of_ms(*due));
        }
    }
    out.header("licentra_key_requests_pending",
               "Approval requests (rotate, retire, destroy) waiting for a decision, by key.",
               "gauge");
    for (const auto& [key, n] : s.service->pending_requests()) {
        out.sample("licentra_key_requests_pending", {{"key", key}}, static_cast<double>(n));
    }
}

}  // namespace

std::string render_metrics(const MetricsSources& s) {
    Exposition out;
    out.header("licentra_build_info", "The version and git revision of licentra-signd.", "gauge");
    out.sample("licentra_build_info", {{"version", kVersion}, {"revision", kGitRevision}}, 1);

    const auto& st = s.service->stats();
    out.counter("licentra_tokens_issued_total", "Tokens signed and audited.",
                static_cast<double>(st.tokens_issued.load()));
    out.family("licentra_key_tokens_issued_total",
               "Tokens signed and audited, by key and algorithm.", "counter", st.tokens);
    out.family("licentra_token_sign_duration_seconds",
               "The HSM signature of a token, by algorithm.", st.sign_seconds);
    out.counter("licentra_requests_denied_total",
                "Requests refused by policy or limits (audited denials).",
                static_cast<double>(st.denied.load()));
    out.counter("licentra_requests_failed_total", "Requests that failed (HSM, audit).",
                static_cast<double>(st.failed.load()));

    if (s.requests != nullptr) s.requests->write(out);
    if (s.server != nullptr && *s.server != nullptr) {
        const auto ss = (*s.server)->stats();
        out.counter("licentra_tls_handshake_failures_total", "Refused TLS handshakes.",
                    static_cast<double>(ss.handshake_failures));
        out.gauge("licentra_connections_active", "Open API connections.",
                  static_cast<double>(ss.connections_active));
    }
    if (s.certificates != nullptr) {
        out.header("licentra_tls_certificate_expiry_seconds",
                   "notAfter of the first certificate to expire in the server chain and in the "
                   "client CA bundle, Unix time.",
                   "gauge");
        const std::pair<std::string_view, std::int64_t> certs[] = {
            {"server", s.certificates->server.load()},
            {"client_ca", s.certificates->client_ca.load()}};
        for (const auto& [which, at] : certs) {
            if (at != 0) {
                out.sample("licentra_tls_certificate_expiry_seconds", {{"certificate", which}},
                           static_cast<double>(at));
            }
        }
    }
    write_hsm(out, s);
    write_audit(out, *s.audit);
    write_keys(out, s);
    core::metrics::write_process_metrics(out);
    return out.take();
}

}  // namespace licentra::app
