// Pseudonym epochs end to end: a real daemon on a real SoftHSM token with 2-second epochs kept
// 1 second. A token's entry names its epoch; once the epoch is past retention the daemon
// destroys its key inside the HSM and audits that as `system`; the auditor's report shows the
// key destroyed, and the log, never rewritten, still verifies.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "support/audit_entries.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using nlohmann::json;

std::string epoch_policy() {
    return read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" /
                     "policy.example.yaml") +
           "pseudonyms:\n  epoch: 2s\n  retention: 1s\n";
}

std::vector<json> entries_where(const Daemon& d, const std::string& action) {
    std::vector<json> out;
    for (const auto& e : audit_entries(d.audit_dir())) {
        if (e["action"] == action) out.push_back(e);
    }
    return out;
}

TEST(PseudonymEpochs, AnEpochPastRetentionLosesItsKeyAndTheLogStillVerifies) {
    Deployment deployment(epoch_policy());
    DaemonOptions options;
    options.extra_config = "cluster:\n  refresh_interval: 250ms\n";
    Daemon daemon(deployment, options);

    auto signed_token =
        daemon.request("license-server", "POST", "/v1/tokens",
                       R"({"key":"product-a","claims":)" + example_claims("product-a") + "}");
    ASSERT_EQ(signed_token.status, 201u) << signed_token.body;
    const auto issued = entries_where(daemon, "token.sign");
    ASSERT_EQ(issued.size(), 1u);
    ASSERT_TRUE(issued[0].contains("pseudonym_epoch")) << issued[0].dump();
    ASSERT_TRUE(issued[0]["pseudonyms"].contains("sub")) << issued[0].dump();
    const std::string epoch = issued[0]["pseudonym_epoch"];
    ASSERT_EQ(epoch.substr(epoch.size() - 2), "-2") << epoch;

    // The epoch ends within 2 s and is kept 1 s more; the daemon's refresh (every 250 ms)
    // destroys its key. Wait for the audit entry that says so.
    std::vector<json> destroyed;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
        destroyed.clear();
        for (const auto& e : entries_where(daemon, "pseudonym.destroy")) {
            if (e["pseudonym_epoch"] == epoch) destroyed.push_back(e);
        }
        // The operational log line follows the audit entry: wait for both.
        const bool logged = daemon.log().find("pseudonyms: destroyed the key of epoch " + epoch) !=
                            std::string::npos;
        if ((!destroyed.empty() && logged) || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll
    }
    ASSERT_EQ(destroyed.size(), 1u) << daemon.log();
    EXPECT_EQ(destroyed[0]["principal"], "system");
    EXPECT_EQ(destroyed[0]["result"], "allowed");
    EXPECT_GT(destroyed[0]["seq"].get<std::uint64_t>(), issued[0]["seq"].get<std::uint64_t>());
    EXPECT_NE(daemon.log().find("pseudonyms: destroyed the key of epoch " + epoch),
              std::string::npos);

    // The auditor's report: the epoch named in the log, its key destroyed on the token.
    std::string out;
    ASSERT_EQ(run_command({binary("licentra"), "audit", "retention", "--uri",
                           deployment.token().uri(), "--policy", deployment.policy_file().string(),
                           "--dir", daemon.audit_dir().string(), "--json"},
                          &out),
              0)
        << out;
    const json report = json::parse(out.substr(out.find('{')));
    EXPECT_EQ(report["epoch_seconds"], 2);
    EXPECT_EQ(report["retention_seconds"], 1);
    bool listed = false;
    for (const auto& e : report["epochs"]) {
        if (e["epoch"] != epoch) continue;
        listed = true;
        EXPECT_EQ(e["key"], "destroyed");
        EXPECT_EQ(e["in_log"], true);
    }
    EXPECT_TRUE(listed) << report.dump(2);

    // Nothing was rewritten: the whole log, its checkpoints and proofs verify.
    std::string verified;
    EXPECT_EQ(daemon.audit_verify(&verified), 0) << verified;
}

}  // namespace
}  // namespace licentra::test
