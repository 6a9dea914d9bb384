// A receipt asked for while the HSM cannot sign checkpoints: the daemon waits its bound
// (audit.checkpoint.interval + 5 s), answers 503 service.receipt_pending, and serves the receipt
// once the HSM signs again. The HSM fails through libp11fault.so in front of SoftHSM.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "licentra/verify.hpp"
#include "support/daemon.hpp"
#include "support/softhsm.hpp"
#include "support/test_support.hpp"

namespace licentra::test {
namespace {

TEST(ReceiptFaults, NoCheckpointWithinTheBoundIs503ThenTheReceiptComesOnceTheHsmSigns) {
    Deployment deployment(example_policy_without_rate_limit());
    const auto control = deployment.dir() / "receipt.ctl";
    auto set_control = [&](const std::string& rules) {
        write_file(control.string() + ".new", rules, 0600);
        std::filesystem::rename(control.string() + ".new", control);
    };
    set_control("");
    DaemonOptions o;
    o.name = "receipt";
    o.hsm_module = P11FAULT_LIBRARY;
    // A checkpoint 3 s after an entry: the fault below is in place well before it is due.
    o.audit_config = "  checkpoint:\n    interval: 3s\n";
    o.environment = {{"P11FAULT_MODULE", SoftHsmToken::module_path()},
                     {"P11FAULT_CONTROL", control.string()},
                     {"P11FAULT_STATS", (deployment.dir() / "receipt.stats").string()}};
    Daemon daemon(deployment, o);

    auto signed_token =
        daemon.request("license-server", "POST", "/v1/tokens",
                       R"({"key":"product-a","claims":)" + example_claims("product-a") + "}");
    ASSERT_EQ(signed_token.status, 201u) << signed_token.body;
    const auto doc = nlohmann::json::parse(signed_token.body);
    const std::string token = doc["token"];
    const std::string target =
        "/v1/tokens/receipt?audit_index=" + std::to_string(doc["audit_index"].get<int>());
    // The HSM refuses every signature, the checkpoint's included.
    set_control("C_Sign rv=CKR_DEVICE_ERROR every\n");

    auto client = daemon.client("license-server");
    const auto asked = std::chrono::steady_clock::now();
    auto pending = client.request("GET", target);
    const auto waited = std::chrono::steady_clock::now() - asked;
    ASSERT_TRUE(pending.ok()) << pending.error().to_string();
    EXPECT_EQ(pending->status, 503u) << pending->body;
    EXPECT_NE(pending->body.find("service.receipt_pending"), std::string::npos) << pending->body;
    // It waited for the checkpoint that was due, up to the bound (3 s + 5 s) ...
    EXPECT_GE(waited, std::chrono::seconds(7)) << pending->body;
    // ... and says when to ask again: the log's signing retry period, min(3 s, 5 s).
    std::string retry_after;
    for (const auto& h : pending->headers) {
        if (h.name == "Retry-After") retry_after = h.value;
    }
    EXPECT_EQ(retry_after, "3");

    // The HSM signs again: the log signs the checkpoint at its next retry and the receipt comes.
    set_control("");
    auto r = daemon.request("license-server", "GET", target);
    ASSERT_EQ(r.status, 200u) << r.body << daemon.log();
    auto v = verify_receipt(token, r.body, read_file(daemon.verifier_key_file()));
    EXPECT_TRUE(v.ok()) << to_string(v.error) << ": " << v.message;
}

}  // namespace
}  // namespace licentra::test
