// The daemon's promises over its lifetime: fail closed when the audit log cannot record,
// reload on SIGHUP without losing the old policy, keep keys across restarts, shut down cleanly.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "support/daemon.hpp"

namespace licentra::test {
namespace {

// Waits (bounded) until the daemon's log holds `text` at least `count` times.
bool log_shows(const Daemon& daemon, const std::string& text, std::size_t count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        const std::string log = daemon.log();
        std::size_t n = 0;
        for (auto p = log.find(text); p != std::string::npos; p = log.find(text, p + 1)) ++n;
        if (n >= count) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::string sign_body() {
    return R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
}

TEST(DaemonLifecycle, AuditLogThatCannotWriteStopsSigningButNotReads) {
    Deployment deployment;
    DaemonOptions options;
    // Writes past 96 KiB fail with EFBIG: the audit segment fills up while running.
    options.file_size_limit = 96 * 1024;
    Daemon daemon(deployment, options);
    unsigned issued = 0;
    unsigned refused = 0;
    std::string last;
    auto client = daemon.client("license-server");
    for (int i = 0; i < 2000 && refused == 0; ++i) {
        auto r = client.request("POST", "/v1/tokens", sign_body(), "application/json");
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        if (r->status == 201) {
            ++issued;
        } else {
            ASSERT_EQ(r->status, 503u) << r->body;
            EXPECT_EQ(r->body.find("\"token\""), std::string::npos);
            last = r->body;
            ++refused;
        }
    }
    ASSERT_GT(issued, 10u);
    ASSERT_EQ(refused, 1u) << "the audit log never failed";
    // Every later signing request is refused too, readiness says why, reads still work.
    EXPECT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 503u);
    auto ready = daemon.ops_get("/readyz");
    EXPECT_EQ(ready.status, 503u);
    EXPECT_NE(ready.body.find("audit"), std::string::npos);
    EXPECT_EQ(daemon.request("auditor", "GET", "/.well-known/jwks.json").status, 200u);
    EXPECT_EQ(daemon.request("auditor", "GET", "/v1/keys").status, 200u);
    // The operational log has one line naming the failed operation and its errno.
    const std::string log = daemon.log();
    const auto line = log.find("audit log failed closed");
    ASSERT_NE(line, std::string::npos) << log;
    EXPECT_EQ(log.find("audit log failed closed", line + 1), std::string::npos) << log;
    EXPECT_NE(log.find("EFBIG", line), std::string::npos) << log;
    daemon.signal(SIGKILL);
    daemon.wait();
    // What is on disk still verifies offline.
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
}

TEST(DaemonLifecycle, KeysSurviveRestartAndShutdownSignsAFinalCheckpoint) {
    Deployment deployment;
    std::string kid;
    std::filesystem::path audit_dir;
    {
        Daemon daemon(deployment);
        auto r = daemon.request("license-server", "POST", "/v1/tokens", sign_body());
        ASSERT_EQ(r.status, 201u) << r.body;
        kid = nlohmann::json::parse(r.body)["kid"];
        daemon.signal(SIGTERM);
        EXPECT_EQ(daemon.wait(), 0) << daemon.log();
        std::string out;
        EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
        // The final checkpoint covers the token's entry.
        std::string cp;
        run_command(
            {binary("licentra"), "audit", "checkpoint", "--dir", daemon.audit_dir().string()}, &cp);
        auto doc = nlohmann::json::parse(cp, nullptr, false);
        ASSERT_FALSE(doc.is_discarded()) << cp;
        EXPECT_GE(doc["size"].get<std::uint64_t>(),
                  nlohmann::json::parse(r.body)["audit_index"].get<std::uint64_t>() + 1);
    }
    DaemonOptions second;
    second.name = "second";
    Daemon again(deployment, second);
    auto r = again.request("license-server", "POST", "/v1/tokens", sign_body());
    ASSERT_EQ(r.status, 201u) << r.body;
    EXPECT_EQ(nlohmann::json::parse(r.body)["kid"], kid);
}

TEST(DaemonLifecycle, SighupReloadsAGoodPolicyAndKeepsTheOldOneOnABadOne) {
    Deployment deployment;
    Daemon daemon(deployment);
    ASSERT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 201u);
    const std::string original = read_file(deployment.policy_file());
    deployment.write_policy("version: 1\nprincipals: [oops\n");
    daemon.signal(SIGHUP);
    ASSERT_TRUE(log_shows(daemon, "old policy stays in force")) << daemon.log();
    EXPECT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 201u);
    // A valid policy without the signer role for the license server takes effect.
    std::string revoked = original;
    const std::string grant = "actions: [token.sign, keys.read]";
    auto pos = revoked.find(grant);
    ASSERT_NE(pos, std::string::npos);
    revoked.replace(pos, grant.size(), "actions: [keys.read]");
    const std::string limit = "signing_rate_limit:";
    auto lpos = revoked.find(limit);
    ASSERT_NE(lpos, std::string::npos);
    revoked.erase(lpos, revoked.find('\n', lpos) - lpos);
    deployment.write_policy(revoked);
    daemon.signal(SIGHUP);
    ASSERT_TRUE(log_shows(daemon, "SIGHUP: policy reloaded")) << daemon.log();
    EXPECT_EQ(daemon.request("license-server", "POST", "/v1/tokens", sign_body()).status, 403u)
        << daemon.log();
}

TEST(DaemonLifecycle, InvalidConfigurationIsRefusedWithEveryProblem) {
    TempDir dir;
    auto cfg = dir.path() / "bad.yaml";
    write_file(cfg, "listen: { port: 99999 }\nbogus: 1\nhsm: { session_pool: zero }\n");
    std::string out;
    int rc =
        run_command({binary("licentra-signd"), "--config", cfg.string(), "--check-config"}, &out);
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find("listen.port"), std::string::npos) << out;
    EXPECT_NE(out.find("bogus"), std::string::npos) << out;
    EXPECT_NE(out.find("session_pool"), std::string::npos) << out;
}

// These six bytes made the YAML reader loop forever (tests/fuzz/corpus/config): --check-config
// now refuses them at once, with their position. timeout(1) bounds a regression.
TEST(DaemonLifecycle, CheckConfigRefusesTheBytesThatHungTheYamlReaderAtOnce) {
    TempDir dir;
    auto cfg = dir.path() / "bad.yaml";
    write_file(cfg, ",[ a:!");
    std::string out;
    const auto start = std::chrono::steady_clock::now();
    int rc = run_command(
        {"timeout", "20", binary("licentra-signd"), "--config", cfg.string(), "--check-config"},
        &out);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(rc, 2) << out;
    EXPECT_NE(out.find(cfg.string() + ":1:1: YAML syntax error: unexpected \",\""),
              std::string::npos)
        << out;
}

}  // namespace
}  // namespace licentra::test
