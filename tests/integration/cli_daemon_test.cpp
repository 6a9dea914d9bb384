// `licentra keys ...` and `licentra requests ...` against a real daemon, as officers would run
// them: what an approver sees, and the exit codes of refusals.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/audit_entries.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using nlohmann::json;

std::string lifecycle_policy() {
    return read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "integration" / "data" /
                     "policy-lifecycle.yaml");
}

// Runs `licentra ARGS` as `principal` (connection from the LICENTRA_* environment).
int licentra_as(Deployment& deployment, Daemon& daemon, const std::string& principal,
                std::vector<std::string> args, std::string* out) {
    const CertFiles& c = deployment.client_cert(principal);
    std::vector<std::string> argv = {
        "env",
        "LICENTRA_PROFILE=",
        "XDG_CONFIG_HOME=" + (deployment.dir() / "no-config").string(),
        "LICENTRA_SERVER=https://127.0.0.1:" + std::to_string(daemon.api_port()),
        "LICENTRA_CERT=" + c.cert.string(),
        "LICENTRA_KEY=" + c.key.string(),
        "LICENTRA_CA=" + deployment.pki().ca_file().string(),
        binary("licentra")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, out);
}

TEST(LicentraCliDaemon, RequestsListShowsForceAndRefusalsHaveTheirExitCodes) {
    Deployment deployment(lifecycle_policy());
    Daemon daemon(deployment);
    std::string out;
    ASSERT_EQ(
        licentra_as(deployment, daemon, "officer-a",
                    {"keys", "destroy", "rot-a", "--version", "1", "--force", "--json"}, &out),
        0)
        << out;
    const json destroy = json::parse(out);
    EXPECT_EQ(destroy["force"], true);
    EXPECT_EQ(destroy["params"]["force"], true);
    const std::string destroy_id = destroy["id"];
    ASSERT_EQ(
        licentra_as(deployment, daemon, "officer-a", {"keys", "rotate", "rot-a", "--json"}, &out),
        0)
        << out;
    const std::string rotate_id = json::parse(out)["id"];

    // The table: a header with FORCE and PARAMS, one row per request.
    ASSERT_EQ(licentra_as(deployment, daemon, "officer-b", {"requests", "list"}, &out), 0) << out;
    EXPECT_NE(out.find("FORCE"), std::string::npos) << out;
    EXPECT_NE(out.find("PARAMS"), std::string::npos) << out;
    std::istringstream lines(out);
    std::string line;
    bool saw_destroy = false;
    bool saw_rotate = false;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        if (w.size() < 6) continue;
        if (w[0] == destroy_id) {
            saw_destroy = true;
            EXPECT_EQ(w[1], "destroy") << line;
            EXPECT_EQ(w[2], "rot-a") << line;
            EXPECT_EQ(w[3], "1") << line;
            EXPECT_EQ(w[4], "yes") << line;
        }
        if (w[0] == rotate_id) {
            saw_rotate = true;
            EXPECT_EQ(w[1], "rotate") << line;
            EXPECT_EQ(w[4], "no") << line;
        }
    }
    EXPECT_TRUE(saw_destroy && saw_rotate) << out;

    // --json: every request with params and force spelled out.
    ASSERT_EQ(licentra_as(deployment, daemon, "officer-b", {"requests", "list", "--json"}, &out), 0)
        << out;
    for (const auto& r : json::parse(out)["requests"]) {
        ASSERT_TRUE(r.contains("force")) << r.dump();
        ASSERT_TRUE(r.contains("params")) << r.dump();
        EXPECT_EQ(r["force"], r["id"] == destroy_id) << r.dump();
    }
    ASSERT_EQ(licentra_as(deployment, daemon, "officer-b", {"requests", "show", destroy_id}, &out),
              0)
        << out;
    EXPECT_NE(out.find("(force)"), std::string::npos) << out;
    EXPECT_NE(out.find("force yes"), std::string::npos) << out;

    // Denied: the requester cannot approve their own request (403).
    EXPECT_EQ(
        licentra_as(deployment, daemon, "officer-a", {"requests", "approve", rotate_id}, &out), 6)
        << out;
    // Conflict: a rejected request cannot be rejected again (409).
    ASSERT_EQ(licentra_as(deployment, daemon, "officer-b", {"requests", "reject", rotate_id}, &out),
              0)
        << out;
    EXPECT_EQ(licentra_as(deployment, daemon, "officer-c", {"requests", "reject", rotate_id}, &out),
              7)
        << out;
    // Not found: exit 1.
    EXPECT_EQ(licentra_as(deployment, daemon, "officer-b", {"requests", "show", "nope"}, &out), 1)
        << out;
}

// The auditor takes the checkpoint a daemon anchored on the HSM token and has the offline
// verifier require it: a log directory rolled back to before it no longer passes.
TEST(LicentraCli, AuditAnchorPrintsTheAnchoredNoteThatVerifyTrusts) {
    Deployment deployment;
    DaemonOptions o;
    o.name = "anchor";
    Daemon daemon(deployment, o);
    const auto before = deployment.dir() / "audit-before";
    std::filesystem::copy(daemon.audit_dir(), before);  // a log with only its first checkpoint
    for (int i = 0; i < 3; ++i) {
        auto r =
            daemon.request("license-server", "POST", "/v1/tokens",
                           R"({"key":"product-a","claims":)" + example_claims("product-a") + "}");
        ASSERT_EQ(r.status, 201u) << r.body;
    }
    daemon.signal(SIGTERM);  // the final checkpoint is anchored at shutdown
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();

    const auto& token = deployment.token();
    const std::vector<std::string> env = {"env", "SOFTHSM2_CONF=" + token.conf_path().string(),
                                          "LICENTRA_PKCS11_MODULE=" + SoftHsmToken::module_path(),
                                          binary("licentra")};
    auto anchor = [&](const std::string& origin, std::string* out) {
        auto argv = env;
        for (const std::string& a : std::vector<std::string>{"audit", "anchor", "--uri",
                                                             token.uri(), "--origin", origin}) {
            argv.push_back(a);
        }
        std::string all;
        const int rc = run_command(argv, &all);
        *out = all;
        return rc;
    };
    std::string note;
    ASSERT_EQ(anchor("test/licentra/anchor", &note), 0) << note;
    // The newest checkpoint: the whole log, signed at shutdown.
    const auto size = audit_entries(daemon.audit_dir()).size();
    EXPECT_EQ(note.rfind("test/licentra/anchor\n" + std::to_string(size) + "\n", 0), 0u) << note;
    const auto note_file = deployment.dir() / "anchor.note";
    write_file(note_file, note);

    auto verify = [&](const std::filesystem::path& dir, std::string* out) {
        return run_command(
            {binary("licentra"), "audit", "verify", "--dir", dir.string(), "--key",
             daemon.verifier_key_file().string(), "--trusted-checkpoint", note_file.string()},
            out);
    };
    std::string out;
    EXPECT_EQ(verify(daemon.audit_dir(), &out), 0) << out;
    EXPECT_EQ(verify(before, &out), 3) << out;  // rolled back: the anchored size is missing

    std::string none;
    EXPECT_EQ(anchor("test/licentra/other", &none), 1) << none;
    EXPECT_NE(none.find("no checkpoint for origin test/licentra/other"), std::string::npos) << none;
    EXPECT_EQ(anchor("bad origin", &none), 2) << none;
}

// `hsm generate` is a key-ceremony tool: it makes a pair on a token no daemon has used, and
// refuses (exit 7, nothing created) once a daemon has written its records there.
TEST(LicentraCli, HsmGenerateMakesKeysOnlyOnATokenNoDaemonHasUsed) {
    Deployment deployment;
    const auto& token = deployment.token();
    auto hsm = [&](std::vector<std::string> args, std::string* out) {
        std::vector<std::string> argv = {"env", "SOFTHSM2_CONF=" + token.conf_path().string(),
                                         "LICENTRA_PKCS11_MODULE=" + SoftHsmToken::module_path(),
                                         binary("licentra"), "hsm"};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"--uri", token.uri()});
        return run_command(argv, out);
    };
    auto generate = [&](unsigned version, std::string* out) {
        return hsm({"generate", "--name", "ceremony", "--version", std::to_string(version), "--alg",
                    "EdDSA"},
                   out);
    };
    std::string out;
    ASSERT_EQ(generate(1, &out), 0) << out;
    EXPECT_EQ(out.rfind("licentra/ceremony/v1 EdDSA id=", 0), 0u) << out;

    Daemon daemon(deployment);  // bootstraps the policy's keys: its records are on the token
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();

    ASSERT_EQ(generate(2, &out), 7) << out;
    EXPECT_NE(out.find("licentra hsm generate: token licentra-it is used by a licentra-signd "
                       "deployment"),
              std::string::npos)
        << out;
    ASSERT_EQ(hsm({"keys", "--prefix", "licentra/ceremony/"}, &out), 0) << out;
    EXPECT_NE(out.find("licentra/ceremony/v1 "), std::string::npos) << out;
    EXPECT_EQ(out.find("licentra/ceremony/v2"), std::string::npos) << out;
}

}  // namespace
}  // namespace licentra::test
