// /metrics of a real daemon: the exposition passes promtool, and after a mixed workload its
// counters agree with what the audit log recorded.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "support/audit_entries.hpp"
#include "support/daemon.hpp"
#include "support/test_support.hpp"

namespace licentra::test {
namespace {

using nlohmann::json;

// The value of one series, written exactly as the exposition writes it ("name{a=\"b\"}"), or
// nullopt when the exposition has no such series.
std::optional<double> series(const std::string& body, const std::string& name) {
    const std::string needle = "\n" + name + " ";
    const auto p = ("\n" + body).find(needle);
    if (p == std::string::npos) return std::nullopt;
    const auto start = p + needle.size() - 1;  // offset in body
    return std::stod(body.substr(start, body.find('\n', start) - start));
}

double value(const std::string& body, const std::string& name) {
    auto v = series(body, name);
    EXPECT_TRUE(v.has_value()) << "no series " << name << " in\n" << body;
    return v.value_or(-1);
}

// Waits (bounded) until pred() holds; returns its last answer.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds bound = std::chrono::seconds(15)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

std::string sign_body(const std::string& key) {
    return R"({"key":")" + key + R"(","claims":)" + example_claims(key) + "}";
}

std::size_t count_entries(const std::vector<json>& entries, const std::string& action,
                          const std::string& result, const std::string& key = {}) {
    std::size_t n = 0;
    for (const auto& e : entries) {
        if (e.value("action", "") != action || e.value("result", "") != result) continue;
        if (!key.empty() && e.value("key", "") != key) continue;
        ++n;
    }
    return n;
}

TEST(DaemonMetrics, ExpositionPassesPromtool) {
    LICENTRA_REQUIRE_PROGRAM(promtool, "promtool");
    Deployment deployment;
    Daemon daemon(deployment);
    ASSERT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body("product-a")).status,
              201u);
    // The pending-request gauge appears with the first periodic tick (cluster.refresh_interval).
    HttpResult m;
    ASSERT_TRUE(eventually([&] {
        m = daemon.ops_get("/metrics");
        return m.status == 200 &&
               m.body.find("\nlicentra_key_requests_pending{") != std::string::npos;
    })) << m.body;
    std::string out;
    EXPECT_EQ(run_command({promtool, "check", "metrics"}, &out, &m.body), 0) << out << m.body;
    EXPECT_EQ(out, "") << m.body;

    // Every family the documentation lists is there.
    for (const char* name : {"licentra_build_info{",
                             "licentra_tokens_issued_total ",
                             "licentra_key_tokens_issued_total{",
                             "licentra_token_sign_duration_seconds_bucket{",
                             "licentra_requests_denied_total ",
                             "licentra_requests_failed_total ",
                             "licentra_http_requests_total{",
                             "licentra_http_request_duration_seconds_bucket{",
                             "licentra_tls_handshake_failures_total ",
                             "licentra_connections_active ",
                             "licentra_tls_certificate_expiry_seconds{",
                             "licentra_hsm_up ",
                             "licentra_hsm_operations_total{",
                             "licentra_hsm_sessions{",
                             "licentra_hsm_session_wait_seconds_bucket{",
                             "licentra_hsm_sessions_evicted_total ",
                             "licentra_hsm_work_queued ",
                             "licentra_audit_entries ",
                             "licentra_audit_unsigned_entries ",
                             "licentra_audit_last_checkpoint_timestamp_seconds ",
                             "licentra_audit_sync_duration_seconds_bucket{",
                             "licentra_audit_batch_entries_bucket{",
                             "licentra_audit_healthy ",
                             "licentra_key_versions{",
                             "licentra_key_next_rotation_timestamp_seconds{",
                             "licentra_key_requests_pending{",
                             "process_cpu_seconds_total ",
                             "process_resident_memory_bytes ",
                             "process_open_fds ",
                             "process_start_time_seconds "}) {
        EXPECT_NE(("\n" + m.body).find(std::string("\n") + name), std::string::npos) << name;
    }
    const double now = static_cast<double>(std::time(nullptr));
    EXPECT_EQ(value(m.body, "licentra_hsm_up"), 1);
    EXPECT_EQ(value(m.body, "licentra_audit_healthy"), 1);
    // The test PKI: server certificate 7 days, CA 30 days.
    const double server =
        value(m.body, R"(licentra_tls_certificate_expiry_seconds{certificate="server"})");
    EXPECT_GT(server, now + 6 * 86400);
    EXPECT_LE(server, now + 7 * 86400);
    const double ca =
        value(m.body, R"(licentra_tls_certificate_expiry_seconds{certificate="client_ca"})");
    EXPECT_GT(ca, now + 29 * 86400);
    EXPECT_LE(ca, now + 30 * 86400);
    EXPECT_LE(value(m.body, "licentra_audit_last_checkpoint_timestamp_seconds"), now + 1);
    EXPECT_GT(value(m.body, "licentra_audit_last_checkpoint_timestamp_seconds"), now - 600);
    EXPECT_GT(value(m.body, "process_start_time_seconds"), now - 600);
    EXPECT_GT(value(m.body, "process_open_fds"), 0);
}

TEST(DaemonMetrics, CountersAgreeWithTheAuditLogAfterAMixedWorkload) {
    Deployment deployment;
    Daemon daemon(deployment);
    // (route template, status) -> responses, as the client saw them.
    std::map<std::pair<std::string, unsigned>, int> seen;
    auto call = [&](const std::string& principal, const std::string& method,
                    const std::string& target, const std::string& route,
                    const std::string& body = {}) {
        auto r = daemon.request(principal, method, target, body);
        ++seen[{route, r.status}];
        return r;
    };

    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(call("license-server", "POST", "/v1/tokens", "/v1/tokens", sign_body("product-a"))
                      .status,
                  201u);
    }
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(call("license-server", "POST", "/v1/tokens", "/v1/tokens", sign_body("product-b"))
                      .status,
                  201u);
    }
    // Policy denials: a certificate the policy does not name, a principal without token.sign,
    // and a claim no rule allows.
    for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(
            call("stranger", "POST", "/v1/tokens", "/v1/tokens", sign_body("product-a")).status,
            403u);
        ASSERT_EQ(
            call("officer-a", "POST", "/v1/tokens", "/v1/tokens", sign_body("product-a")).status,
            403u);
    }
    auto bad = json::parse(example_claims("product-a"));
    bad["seats"] = 0;
    ASSERT_EQ(call("license-server", "POST", "/v1/tokens", "/v1/tokens",
                   json{{"key", "product-a"}, {"claims", bad}}.dump())
                  .status,
              422u);

    // Key lifecycle: a rotation request that stays pending, and a retirement that executes.
    ASSERT_EQ(call("officer-a", "POST", "/v1/keys/product-b/rotations", "/v1/keys/{key}/rotations")
                  .status,
              202u);
    auto retire = call("officer-a", "POST", "/v1/keys/product-a/versions/1/retire",
                       "/v1/keys/{key}/versions/{version}/retire");
    ASSERT_EQ(retire.status, 202u) << retire.body;
    const std::string id = json::parse(retire.body)["id"];
    ASSERT_EQ(
        call("officer-b", "POST", "/v1/requests/" + id + "/approve", "/v1/requests/{id}/approve")
            .status,
        200u);
    auto executed =
        call("officer-c", "POST", "/v1/requests/" + id + "/approve", "/v1/requests/{id}/approve");
    ASSERT_EQ(executed.status, 200u) << executed.body;
    ASSERT_EQ(json::parse(executed.body)["executed"], true) << executed.body;

    // A failure: product-a has no signing version any more.
    auto failed =
        call("license-server", "POST", "/v1/tokens", "/v1/tokens", sign_body("product-a"));
    ASSERT_EQ(failed.status, 409u) << failed.body;

    // Refusals are audited without the answer waiting for them: wait until all 14 are durable.
    std::vector<json> entries;
    ASSERT_TRUE(eventually([&] {
        entries = audit_entries(daemon.audit_dir());
        std::size_t signs = 0;
        for (const auto& e : entries) signs += e.value("action", "") == "token.sign" ? 1 : 0;
        return signs == 14;
    })) <<
        [&] {
            std::string all;
            for (const auto& e : entries) all += e.dump() + "\n";
            return all;
        }();
    // The pending-request gauge follows the periodic tick (cluster.refresh_interval): product-b's
    // rotation pending, product-a's retirement closed.
    std::string m;
    ASSERT_TRUE(eventually([&] {
        m = daemon.ops_get("/metrics").body;
        return series(m, R"(licentra_key_requests_pending{key="product-b"})") == 1.0 &&
               series(m, R"(licentra_key_requests_pending{key="product-a"})") == 0.0 &&
               series(m, "licentra_audit_entries") ==
                   static_cast<double>(audit_entries(daemon.audit_dir()).size());
    })) << m;
    entries = audit_entries(daemon.audit_dir());

    // Tokens: by key and algorithm, and in total, as the audit log has them.
    EXPECT_EQ(count_entries(entries, "token.sign", "allowed", "product-a"), 5u);
    EXPECT_EQ(count_entries(entries, "token.sign", "allowed", "product-b"), 3u);
    EXPECT_EQ(value(m, R"(licentra_key_tokens_issued_total{key="product-a",algorithm="EdDSA"})"),
              5);
    EXPECT_EQ(value(m, R"(licentra_key_tokens_issued_total{key="product-b",algorithm="ES256"})"),
              3);
    EXPECT_EQ(value(m, "licentra_tokens_issued_total"),
              static_cast<double>(count_entries(entries, "token.sign", "allowed")));
    EXPECT_EQ(value(m, R"(licentra_token_sign_duration_seconds_count{algorithm="EdDSA"})"), 5);
    EXPECT_EQ(value(m, R"(licentra_token_sign_duration_seconds_count{algorithm="ES256"})"), 3);
    // Denials and failures: every one audited, none missed.
    EXPECT_EQ(count_entries(entries, "token.sign", "denied"), 5u);
    EXPECT_EQ(count_entries(entries, "token.sign", "failed"), 1u);
    std::size_t denied = 0;
    std::size_t failures = 0;
    for (const auto& e : entries) {
        denied += e.value("result", "") == "denied" ? 1 : 0;
        failures += e.value("result", "") == "failed" ? 1 : 0;
    }
    EXPECT_EQ(value(m, "licentra_requests_denied_total"), static_cast<double>(denied));
    EXPECT_EQ(value(m, "licentra_requests_failed_total"), static_cast<double>(failures));

    // Responses by route template and status, exactly as the client saw them.
    for (const auto& [rs, n] : seen) {
        EXPECT_EQ(value(m, "licentra_http_requests_total{route=\"" + rs.first + "\",status=\"" +
                               std::to_string(rs.second) + "\"}"),
                  n)
            << rs.first << " " << rs.second;
    }
    EXPECT_EQ(value(m, R"(licentra_http_request_duration_seconds_count{route="/v1/tokens"})"), 14);

    // Keys: product-a's only version retired (published until its verify-until), product-b's
    // rotation waiting for approval; the retirement request is closed.
    EXPECT_EQ(value(m, R"(licentra_key_versions{key="product-a",state="retired"})"), 1);
    EXPECT_EQ(value(m, R"(licentra_key_versions{key="product-a",state="active"})"), 0);
    EXPECT_EQ(value(m, R"(licentra_key_versions{key="product-b",state="active"})"), 1);
    EXPECT_EQ(value(m, R"(licentra_key_requests_pending{key="product-a"})"), 0);
    EXPECT_GT(value(m, R"(licentra_key_verify_until_timestamp_seconds{key="product-a"})"),
              static_cast<double>(std::time(nullptr)));
    EXPECT_FALSE(series(m, R"(licentra_key_next_rotation_timestamp_seconds{key="product-a"})"));
    EXPECT_TRUE(series(m, R"(licentra_key_next_rotation_timestamp_seconds{key="product-b"})"));
    // The HSM signed every token (and the readiness probes), without failures.
    EXPECT_GE(value(m, R"(licentra_hsm_operations_total{operation="C_Sign",result="ok"})"), 8);
    EXPECT_EQ(value(m, "licentra_hsm_up"), 1);

    // No label names a principal or carries a claim value.
    for (const char* secret : {"license-server", "officer-a", "stranger", "customer-4711"}) {
        EXPECT_EQ(m.find(secret), std::string::npos) << secret;
    }
}

}  // namespace
}  // namespace licentra::test
