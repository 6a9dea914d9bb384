// The audit log's faults as an operator meets them: licentra-signd under a file-size limit it
// did not ask for (it ignores SIGXFSZ itself and fails closed), and an ES256 checkpoint key.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "support/daemon.hpp"

namespace licentra::test {
namespace {

std::string sign_body() {
    return R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

std::string header(const net::Response& r, const std::string& name) {
    for (const auto& h : r.headers) {
        if (h.name == name) return h.value;
    }
    return {};
}

// The harness ignores SIGXFSZ only when it sets the limit itself (DaemonOptions::file_size_limit);
// here the limit is inherited with SIGXFSZ at its default action, so only the daemon's own
// signal setup keeps it alive.
TEST(AuditFaults, FileSizeLimitFailsTheAuditLogClosedWithoutKillingTheDaemon) {
    Deployment deployment;
    ASSERT_NE(::signal(SIGXFSZ, SIG_DFL), SIG_ERR);
    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    rlimit limited = old;
    limited.rlim_cur = 96 * 1024;  // soft limit only: restored below
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limited), 0);
    std::optional<Daemon> started;
    try {
        started.emplace(deployment);
    } catch (...) {
        ::setrlimit(RLIMIT_FSIZE, &old);
        throw;
    }
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
    Daemon& daemon = *started;

    auto client = daemon.client("license-server");
    unsigned issued = 0;
    std::optional<net::Response> refused;
    for (int i = 0; i < 2000 && !refused; ++i) {
        auto r = client.request("POST", "/v1/tokens", sign_body(), "application/json");
        ASSERT_TRUE(r.ok()) << r.error().to_string() << daemon.log();
        if (r->status == 201) {
            ++issued;
        } else {
            refused = *r;
        }
    }
    ASSERT_GT(issued, 10u);
    ASSERT_TRUE(refused) << "the audit log never failed";
    EXPECT_EQ(refused->status, 503u) << refused->body;
    EXPECT_EQ(refused->body.find("\"token\""), std::string::npos);
    EXPECT_FALSE(header(*refused, "Retry-After").empty());
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 503u);
    }
    // Alive (SIGXFSZ did not kill it), not ready with an audit reason, reads still answered.
    EXPECT_EQ(::kill(daemon.pid(), 0), 0);
    auto ready = daemon.ops_get("/readyz");
    EXPECT_EQ(ready.status, 503u);
    EXPECT_NE(ready.body.find("audit log"), std::string::npos) << ready.body;
    EXPECT_EQ(daemon.ops_get("/healthz").status, 200u);
    EXPECT_EQ(daemon.request("auditor", "GET", "/.well-known/jwks.json").status, 200u);
    EXPECT_EQ(daemon.request("auditor", "GET", "/v1/audit/checkpoint").status, 200u);
    // One operational line, naming the operation and the errno.
    const std::string log = daemon.log();
    EXPECT_EQ(count(log, "audit log failed closed"), 1u) << log;
    EXPECT_NE(log.find("EFBIG"), std::string::npos) << log;
    EXPECT_NE(log.find("audit write failed"), std::string::npos) << log;

    daemon.signal(SIGKILL);
    daemon.wait();
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
}

TEST(AuditFaults, Es256CheckpointKeySignsALogThatLicentraAuditVerifyAccepts) {
    Deployment deployment;
    DaemonOptions options;
    // Continues the harness's "audit:" mapping.
    options.extra_config = "  key_algorithm: ES256\n  sync_timeout: 2s\n";
    Daemon daemon(deployment, options);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 201u)
            << daemon.log();
    }
    const std::string vkey = read_file(daemon.verifier_key_file());
    // base64(0x02 || DER SPKI) starts with "AjBZ" (0x02 0x30 0x59 ...).
    EXPECT_NE(vkey.find("+AjBZ"), std::string::npos) << vkey;
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
    EXPECT_NE(out.find("verified"), std::string::npos) << out;
}

}  // namespace
}  // namespace licentra::test
