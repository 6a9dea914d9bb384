// `licentra keys ...` and `licentra requests ...` against a real daemon, as officers would run
// them: what an approver sees, and the exit codes of refusals.
#include <gtest/gtest.h>

#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace licentra::test
