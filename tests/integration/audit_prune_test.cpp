// Pruning while the daemon runs (audit.prune_after): a real daemon on a real SoftHSM token with
// payloads kept 1 second and 1 MiB segments. Once a segment is sealed and signed, the daemon
// prunes it, audits the prune as `system` (audit.prune with the range), GET /v1/audit/entries
// answers the range as pruned, and the auditor's `licentra audit verify` passes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using nlohmann::json;

std::vector<json> entries_over_api(Daemon& d) {
    auto r = d.request("auditor", "GET", "/v1/audit/entries?start=0&end=10000");
    std::vector<json> out;
    if (r.status != 200) return out;
    std::size_t pos = 0;
    while (pos < r.body.size()) {
        const auto nl = r.body.find('\n', pos);
        out.push_back(json::parse(r.body.substr(pos, nl - pos)));
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    return out;
}

std::optional<json> prune_entry(const std::vector<json>& entries) {
    for (const auto& e : entries) {
        if (e.contains("action") && e["action"] == "audit.prune") return e;
    }
    return std::nullopt;
}

TEST(AuditPruneDaemon, PayloadsPastRetentionArePrunedAuditedReadAsPrunedAndTheLogVerifies) {
    Deployment deployment(example_policy_without_rate_limit());
    DaemonOptions options;
    options.extra_config = "cluster:\n  refresh_interval: 250ms\n";
    options.audit_config =
        "  segment_bytes: 1048576\n"
        "  prune_after: 1s\n"
        "  checkpoint:\n"
        "    every_entries: 100\n"
        "    interval: 1s\n";
    Daemon daemon(deployment, options);

    // Sign until the log has started its second segment (the first is then sealed), and some
    // more so the first one's entries are all published and signed.
    const std::filesystem::path second = daemon.audit_dir() / "log-000001.jsonl";
    const std::string body = R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
    std::atomic<int> issued{0};
    std::atomic<int> after_roll{0};
    std::atomic<bool> failed{false};
    std::vector<std::thread> signers;
    for (int t = 0; t < 4; ++t) {
        signers.emplace_back([&] {
            auto client = daemon.client("license-server");
            for (int i = 0; i < 2000 && after_roll.load() < 40 && !failed.load(); ++i) {
                auto r = client.request("POST", "/v1/tokens", body, "application/json");
                if (!r.ok() || r->status != 201) {
                    failed = true;
                    break;
                }
                ++issued;
                if (std::filesystem::exists(second)) ++after_roll;
            }
        });
    }
    for (auto& t : signers) t.join();
    ASSERT_FALSE(failed.load()) << daemon.log();
    ASSERT_TRUE(std::filesystem::exists(second)) << issued.load() << " tokens signed";

    // The refresh (every 250 ms) prunes once the entries are a second old; wait for its entry.
    std::optional<json> pruned;
    std::vector<json> entries;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!pruned && std::chrono::steady_clock::now() < deadline) {
        entries = entries_over_api(daemon);
        pruned = prune_entry(entries);
        if (!pruned) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll
    }
    ASSERT_TRUE(pruned.has_value()) << daemon.log();
    EXPECT_EQ((*pruned)["principal"], "system");
    EXPECT_EQ((*pruned)["result"], "allowed");
    const std::uint64_t first = (*pruned)["pruned_first"];
    const std::uint64_t count = (*pruned)["pruned_count"];
    EXPECT_EQ(first, 0u);  // the first prune of this log
    ASSERT_GT(count, 100u);
    ASSERT_LE(first + count, entries.size());
    EXPECT_GT((*pruned)["seq"].get<std::uint64_t>(), first + count - 1);
    for (std::uint64_t i = first; i < first + count; ++i) {
        const json& e = entries[i];
        ASSERT_EQ(e["seq"], i);
        ASSERT_EQ(e.value("pruned", false), true) << e.dump();
        ASSERT_TRUE(e.contains("leaf_hash")) << e.dump();
        ASSERT_FALSE(e.contains("action")) << e.dump();
    }
    // The entries of the open segment keep their payloads.
    EXPECT_TRUE(entries.back().contains("action")) << entries.back().dump();
    EXPECT_NE(daemon.log().find("audit prune: removed the payloads of entries 0.." +
                                std::to_string(count - 1)),
              std::string::npos)
        << daemon.log();

    // The auditor's check, on the stopped daemon's directory: the tree, every checkpoint and
    // the anchored one still verify with the payloads gone.
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
}

}  // namespace
}  // namespace licentra::test
