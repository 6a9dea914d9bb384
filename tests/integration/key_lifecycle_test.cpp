// Key lifecycle end to end: dual-control rotation, publish-ahead, verify grace, destruction,
// requests that survive restarts and expire, two daemons on one token, signing under rotation,
// scheduled rotation. Real daemons, a real SoftHSM token, real TLS, npm jose as verifier.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/audit_entries.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using nlohmann::json;

const std::filesystem::path kVerifiers =
    std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "verifiers";

std::string lifecycle_policy() {
    return read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "integration" / "data" /
                     "policy-lifecycle.yaml");
}

std::string sign_body(const std::string& key, long seconds = 50) {
    const long exp = static_cast<long>(std::time(nullptr)) + seconds;
    return R"({"key":")" + key + R"(","claims":{"sub":"c-1","exp":)" + std::to_string(exp) + "}}";
}

json parse(const HttpResult& r) {
    auto j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.status << ' ' << r.body;
    return j;
}

// Verifies token against jwks with npm jose; returns the exit status (0 = valid).
int jose_verify(const std::string& jwks, const std::string& token) {
    std::string node = find_program("node");
    EXPECT_FALSE(node.empty()) << "node is not installed; run scripts/setup";
    const std::string input = json{{"jwks", json::parse(jwks)}, {"token", token}}.dump();
    std::string out;
    return run_command({node, (kVerifiers / "verify_jose.mjs").string()}, &out, &input);
}

std::string state_of(Daemon& d, const std::string& key, unsigned version) {
    auto doc = parse(d.request("auditor", "GET", "/v1/keys/" + key));
    for (const auto& v : doc["versions"]) {
        if (v["version"] == version) return v["state"];
    }
    return "absent";
}

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

TEST(KeyLifecycle, WholeStoryRotationUnderDualControlThenDestruction) {
    LICENTRA_REQUIRE_PROGRAM(pkcs11_tool, "pkcs11-tool");
    Deployment deployment(lifecycle_policy());
    Daemon daemon(deployment);

    auto first = daemon.request("license-server", "POST", "/v1/tokens", sign_body("rot-a"));
    ASSERT_EQ(first.status, 201u) << first.body;
    const std::string old_token = parse(first)["token"];
    const std::string old_kid = parse(first)["kid"];

    // Officer A requests; nobody but another officer can approve.
    auto opened = daemon.request("officer-a", "POST", "/v1/keys/rot-a/rotations");
    ASSERT_EQ(opened.status, 202u) << opened.body;
    const std::string id = parse(opened)["id"];
    const std::string digest = parse(opened)["digest"];
    EXPECT_EQ(daemon.request("officer-a", "POST", "/v1/requests/" + id + "/approve").status, 403u);
    EXPECT_EQ(daemon.request("license-server", "POST", "/v1/requests/" + id + "/approve").status,
              403u);
    EXPECT_EQ(daemon.request("auditor", "POST", "/v1/requests/" + id + "/approve").status, 403u);
    EXPECT_EQ(daemon.request("license-server", "POST", "/v1/keys/rot-a/rotations").status, 403u);
    // Officer B approves the exact request they reviewed: the new version is generated.
    auto approved = daemon.request("officer-b", "POST", "/v1/requests/" + id + "/approve",
                                   json{{"digest", digest}}.dump());
    ASSERT_EQ(approved.status, 200u) << approved.body;
    EXPECT_EQ(parse(approved)["executed"], true);
    const std::string new_kid = parse(approved)["result"]["kid"];
    ASSERT_NE(new_kid, old_kid);

    // Published ahead: in the JWKS as pre-active while v1 still signs.
    auto jwks = daemon.request("auditor", "GET", "/.well-known/jwks.json").body;
    EXPECT_NE(jwks.find(new_kid), std::string::npos);
    EXPECT_EQ(state_of(daemon, "rot-a", 2), "pre-active");
    auto during = daemon.request("license-server", "POST", "/v1/tokens", sign_body("rot-a"));
    EXPECT_EQ(parse(during)["kid"], old_kid);

    // After publish-ahead (5 s) new tokens carry the new kid; v1 is retired.
    ASSERT_TRUE(eventually(
        [&] {
            auto r = daemon.request("license-server", "POST", "/v1/tokens", sign_body("rot-a"));
            return r.status == 201 && parse(r)["kid"] == new_kid;
        },
        std::chrono::seconds(15)));
    EXPECT_EQ(state_of(daemon, "rot-a", 1), "retired");
    // Tokens of the retired version still verify with the published JWKS.
    jwks = daemon.request("auditor", "GET", "/.well-known/jwks.json").body;
    EXPECT_EQ(jose_verify(jwks, old_token), 0);

    // Destroying a version whose tokens can still be valid is refused without force.
    auto destroy = daemon.request("officer-a", "POST", "/v1/keys/rot-a/versions/1/destroy");
    ASSERT_EQ(destroy.status, 202u) << destroy.body;
    auto refused =
        daemon.request("officer-c", "POST",
                       "/v1/requests/" + parse(destroy)["id"].get<std::string>() + "/approve");
    EXPECT_EQ(refused.status, 409u) << refused.body;
    EXPECT_EQ(state_of(daemon, "rot-a", 1), "retired");
    // With force (the policy allows it) and a second officer, v1 is destroyed.
    auto forced = daemon.request("officer-a", "POST", "/v1/keys/rot-a/versions/1/destroy",
                                 R"({"force":true})");
    ASSERT_EQ(forced.status, 202u) << forced.body;
    auto done = daemon.request(
        "officer-b", "POST", "/v1/requests/" + parse(forced)["id"].get<std::string>() + "/approve");
    ASSERT_EQ(done.status, 200u) << done.body;
    EXPECT_EQ(state_of(daemon, "rot-a", 1), "destroyed");
    jwks = daemon.request("auditor", "GET", "/.well-known/jwks.json").body;
    EXPECT_EQ(jwks.find(old_kid), std::string::npos);
    EXPECT_NE(jose_verify(jwks, old_token), 0);

    // The private object is gone from the token, as another tool lists it.
    std::string objects;
    ASSERT_EQ(run_command({pkcs11_tool, "--module", SoftHsmToken::module_path(), "--token-label",
                           deployment.token().token_label(), "--login", "--pin",
                           deployment.token().user_pin(), "--list-objects", "--type", "privkey"},
                          &objects),
              0)
        << objects;
    EXPECT_EQ(objects.find("licentra/rot-a/v1"), std::string::npos) << objects;
    EXPECT_NE(objects.find("licentra/rot-a/v2"), std::string::npos) << objects;

    // Every step is in the audit log with the request's digest.
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    auto entries = audit_entries(daemon.audit_dir());
    std::set<std::string> actions;
    for (const auto& e : entries) {
        if (e.contains("request_digest") && e["request_digest"] == digest) {
            actions.insert(e["action"].get<std::string>() + ":" + e["result"].get<std::string>());
        }
    }
    EXPECT_TRUE(actions.count("key.rotate.request:allowed"));
    EXPECT_TRUE(actions.count("key.rotate.approve:denied"));
    EXPECT_TRUE(actions.count("key.rotate.approve:allowed"));
    EXPECT_TRUE(actions.count("key.rotate.execute:allowed"));
    EXPECT_TRUE(actions.count("key.rotate:allowed"));
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
}

TEST(KeyLifecycle, PendingRequestSurvivesRestartAndExpiresOnTime) {
    Deployment deployment(lifecycle_policy());
    std::string id;
    {
        Daemon daemon(deployment);
        auto opened = daemon.request("officer-a", "POST", "/v1/keys/rot-a/versions/1/retire");
        ASSERT_EQ(opened.status, 202u) << opened.body;
        id = parse(opened)["id"];
    }
    DaemonOptions second;
    second.name = "after-restart";
    Daemon daemon(deployment, second);
    auto listed = parse(daemon.request("officer-b", "GET", "/v1/requests"));
    ASSERT_EQ(listed["requests"].size(), 1u) << listed.dump();
    EXPECT_EQ(listed["requests"][0]["id"], id);
    // The retire request's lifetime is 6 s: after it nobody can approve it. Wait until the
    // daemon reports it expired (its view, or the replica that closed it as expired).
    ASSERT_TRUE(eventually(
        [&] {
            return parse(daemon.request("officer-b", "GET", "/v1/requests/" + id))["state"] ==
                   "expired";
        },
        std::chrono::seconds(10)));
    auto late = daemon.request("officer-b", "POST", "/v1/requests/" + id + "/approve");
    EXPECT_GE(late.status, 400u) << late.body;
    EXPECT_LT(late.status, 500u) << late.body;
    EXPECT_EQ(state_of(daemon, "rot-a", 1), "active");
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& e : audit_entries(daemon.audit_dir())) {
                if (e["action"] == "key.retire.expire") return true;
            }
            return false;
        },
        std::chrono::seconds(5)));
}

TEST(KeyLifecycle, TwoDaemonsOnOneTokenAgreeOnRotations) {
    Deployment deployment(lifecycle_policy());
    DaemonOptions o1, o2;
    o1.name = "node-1";
    o2.name = "node-2";
    Daemon d1(deployment, o1);
    Daemon d2(deployment, o2);
    auto before = d2.request("license-server", "POST", "/v1/tokens", sign_body("fast"));
    ASSERT_EQ(before.status, 201u) << before.body;
    auto rotated = d1.request("officer-a", "POST", "/v1/keys/fast/rotations");
    ASSERT_EQ(rotated.status, 201u) << rotated.body;  // quorum 0: executed at once
    const std::string new_kid = parse(rotated)["result"]["kid"];
    // The other daemon re-reads the token every second: it signs with the new version soon.
    ASSERT_TRUE(eventually(
        [&] {
            auto r = d2.request("license-server", "POST", "/v1/tokens", sign_body("fast"));
            return r.status == 201 && parse(r)["kid"] == new_kid;
        },
        std::chrono::seconds(3)));
    // A request opened through one daemon is approved through the other.
    auto opened = d1.request("officer-a", "POST", "/v1/keys/fast/versions/2/retire");
    ASSERT_EQ(opened.status, 202u) << opened.body;
    auto approved = d2.request(
        "officer-b", "POST", "/v1/requests/" + parse(opened)["id"].get<std::string>() + "/approve");
    EXPECT_EQ(approved.status, 200u) << approved.body;
}

TEST(KeyLifecycle, SigningContinuesDuringFiveRotationsWithoutARetiredVersionSigning) {
    Deployment deployment(lifecycle_policy());
    Daemon daemon(deployment);
    std::atomic<bool> stop{false};
    std::atomic<unsigned> ok{0}, failed{0};
    std::vector<std::thread> signers;
    for (int t = 0; t < 3; ++t) {
        signers.emplace_back([&] {
            auto client = daemon.client("license-server");
            while (!stop.load()) {
                auto r =
                    client.request("POST", "/v1/tokens", sign_body("fast"), "application/json");
                if (r.ok() && r->status == 201) {
                    ok.fetch_add(1);
                } else {
                    failed.fetch_add(1);
                }
            }
        });
    }
    for (unsigned i = 0; i < 5; ++i) {
        auto r = daemon.request("officer-a", "POST", "/v1/keys/fast/rotations");
        ASSERT_EQ(r.status, 201u) << r.body;
        EXPECT_EQ(parse(r)["result"]["state"], "pre-active");
        // A version signs only after every replica has published it; the next rotation
        // waits for that (a second one would be refused while this one is pre-active).
        ASSERT_TRUE(eventually([&] { return state_of(daemon, "fast", i + 2) == "active"; },
                               std::chrono::seconds(10)));
    }
    stop = true;
    for (auto& t : signers) t.join();
    EXPECT_EQ(failed.load(), 0u);
    EXPECT_GT(ok.load(), 20u);
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    // In log order, every token of "fast" was signed by the version active at that point.
    unsigned active = 0;
    unsigned checked = 0;
    for (const auto& e : audit_entries(daemon.audit_dir())) {
        if (!e.contains("key") || e["key"] != "fast") continue;
        if ((e["action"] == "key.bootstrap" || e["action"] == "key.activate") &&
            e["result"] == "allowed") {
            active = e["version"];
        } else if (e["action"] == "token.sign" && e["result"] == "allowed") {
            EXPECT_EQ(e["version"].get<unsigned>(), active) << e.dump();
            ++checked;
        }
    }
    EXPECT_EQ(active, 6u);
    EXPECT_EQ(checked, ok.load());
    std::string out;
    EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
}

TEST(KeyLifecycle, ScheduledRotationRunsAsTheSystem) {
    Deployment deployment(lifecycle_policy());
    Daemon daemon(deployment);
    ASSERT_TRUE(eventually([&] { return state_of(daemon, "sched", 2) == "active"; },
                           std::chrono::seconds(25)));
    EXPECT_EQ(state_of(daemon, "sched", 1), "retired");
    bool system_rotation = false;
    for (const auto& e : audit_entries(daemon.audit_dir())) {
        system_rotation |=
            e["action"] == "key.rotate" && e["principal"] == "system" && e["key"] == "sched";
    }
    EXPECT_TRUE(system_rotation);
}

}  // namespace
}  // namespace licentra::test
