// The API as each user sees it: the role matrix, error shapes and limits.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/daemon.hpp"
#include "support/test_support.hpp"

namespace licentra::test {
namespace {

class DaemonApi : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        deployment_ = new Deployment();
        daemon_ = new Daemon(*deployment_);
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete deployment_;
    }
    static Deployment* deployment_;
    static Daemon* daemon_;
};
Deployment* DaemonApi::deployment_ = nullptr;
Daemon* DaemonApi::daemon_ = nullptr;

struct Route {
    std::string method;
    std::string target;
    bool sign_body = false;
    std::set<std::string> allowed;  // principals that get ok_status; everyone else 403
    unsigned ok_status = 200;
};

TEST_F(DaemonApi, EveryEndpointAllowsExactlyThePrincipalsThePolicyNames) {
    const std::set<std::string> named = {"license-server", "officer-a", "officer-b", "officer-c",
                                         "auditor"};
    const std::set<std::string> readers_of_keys = named;
    const std::vector<Route> routes = {
        {"POST", "/v1/tokens", true, {"license-server"}, 201},
        {"GET", "/.well-known/jwks.json", false, named},
        {"GET", "/v1/keys", false, readers_of_keys},
        {"GET", "/v1/keys/product-a", false, readers_of_keys},
        {"GET", "/v1/audit/checkpoint", false, {"auditor"}},
        {"GET", "/v1/audit/entries?start=0&end=2", false, {"auditor"}},
        {"GET", "/v1/audit/proofs/inclusion?index=0&size=2", false, {"auditor"}},
        {"GET", "/v1/audit/proofs/consistency?first=1&second=2", false, {"auditor"}},
    };
    for (const auto& route : routes) {
        for (const auto& principal : kPrincipals) {
            std::string body;
            if (route.sign_body) {
                body = R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
            }
            auto r = daemon_->request(principal, route.method, route.target, body);
            SCOPED_TRACE(route.method + " " + route.target + " as " + principal + ": " + r.body);
            if (route.allowed.count(principal)) {
                EXPECT_EQ(r.status, route.ok_status);
            } else {
                EXPECT_EQ(r.status, 403u);
                EXPECT_NE(r.body.find("https://licentra.dev/problems/forbidden"),
                          std::string::npos);
            }
            EXPECT_EQ(r.request_id.size(), 32u);
        }
    }
}

// The lifecycle and request routes, each principal in turn with an exact status: opening a
// request is the officers' (202), reading and deciding requests too; the requester cannot
// approve its own request; a decided request refuses further decisions.
TEST_F(DaemonApi, EveryLifecycleAndRequestRouteAllowsExactlyTheOfficers) {
    const std::set<std::string> officers = {"officer-a", "officer-b", "officer-c"};
    // Everyone but the officers gets 403 (nothing is recorded for them).
    auto expect_refused = [&](const std::string& method, const std::string& target,
                              const std::string& body = {}) {
        for (const auto& principal : kPrincipals) {
            if (officers.count(principal) != 0) continue;
            auto r = daemon_->request(principal, method, target, body);
            EXPECT_EQ(r.status, 403u)
                << method << ' ' << target << " as " << principal << ": " << r.body;
        }
    };
    auto expect_only = [&](const std::string& method, const std::string& target, unsigned ok_status,
                           const std::string& body = {}) {
        expect_refused(method, target, body);
        for (const auto& principal : officers) {
            auto r = daemon_->request(principal, method, target, body);
            EXPECT_EQ(r.status, ok_status)
                << method << ' ' << target << " as " << principal << ": " << r.body;
        }
    };
    // Opening requests (product-b needs two approvals, so none of them executes here).
    expect_only("POST", "/v1/keys/product-b/rotations", 202u);
    expect_only("POST", "/v1/keys/product-b/versions/1/retire", 202u);
    expect_only("POST", "/v1/keys/product-b/versions/1/destroy", 202u, R"({"force":true})");
    expect_only("GET", "/v1/requests", 200u);

    auto opened = daemon_->request("officer-a", "POST", "/v1/keys/product-b/rotations");
    ASSERT_EQ(opened.status, 202u) << opened.body;
    const std::string id = nlohmann::json::parse(opened.body)["id"];
    expect_only("GET", "/v1/requests/" + id, 200u);
    // Approve: everyone but the officers is refused before anything is recorded; the
    // requester may not approve; officer-b's approval is the first of two.
    expect_refused("POST", "/v1/requests/" + id + "/approve", "{}");
    auto own = daemon_->request("officer-a", "POST", "/v1/requests/" + id + "/approve", "{}");
    EXPECT_EQ(own.status, 403u) << own.body;
    EXPECT_NE(own.body.find("policy.requester_cannot_approve"), std::string::npos) << own.body;
    auto first = daemon_->request("officer-b", "POST", "/v1/requests/" + id + "/approve", "{}");
    ASSERT_EQ(first.status, 200u) << first.body;
    EXPECT_EQ(nlohmann::json::parse(first.body)["state"], "pending");
    // Reject: only officers; officer-c's rejection closes it, and nothing decides it again.
    expect_refused("POST", "/v1/requests/" + id + "/reject", "{}");
    auto rejected = daemon_->request("officer-c", "POST", "/v1/requests/" + id + "/reject", "{}");
    ASSERT_EQ(rejected.status, 200u) << rejected.body;
    EXPECT_EQ(nlohmann::json::parse(rejected.body)["state"], "rejected");
    auto late = daemon_->request("officer-b", "POST", "/v1/requests/" + id + "/reject", "{}");
    EXPECT_EQ(late.status, 409u) << late.body;
    auto missing = daemon_->request("officer-b", "GET", "/v1/requests/" + std::string(32, '0'));
    EXPECT_EQ(missing.status, 404u) << missing.body;
}

TEST_F(DaemonApi, SignerCannotReachAnotherKeyOrManageKeys) {
    auto r = daemon_->request("license-server", "GET", "/v1/keys/product-a");
    EXPECT_EQ(r.status, 200u);
    auto listed = daemon_->request("license-server", "GET", "/v1/keys");
    ASSERT_EQ(listed.status, 200u);
    auto doc = nlohmann::json::parse(listed.body);
    EXPECT_EQ(doc["keys"].size(), 2u);  // product-* only
    auto unknown = daemon_->request("license-server", "POST", "/v1/tokens",
                                    R"({"key":"nope","claims":{"exp":1}})");
    EXPECT_EQ(unknown.status, 403u);
}

TEST_F(DaemonApi, AKeyThePolicyDoesNotHaveIs403AndAPathThatIsNoEndpointIs404) {
    for (const char* principal : {"auditor", "officer-a", "license-server"}) {
        auto r = daemon_->request(principal, "GET", "/v1/keys/no-such-key");
        EXPECT_EQ(r.status, 403u) << principal << ' ' << r.body;
        EXPECT_NE(r.body.find("\"policy."), std::string::npos) << r.body;
    }
    EXPECT_EQ(daemon_->request("auditor", "GET", "/v1/keys/product-a/nothing").status, 404u);
    EXPECT_EQ(daemon_->request("auditor", "GET", "/v1/nothing").status, 404u);
}

TEST_F(DaemonApi, ClaimViolationsAreAllListedWith422) {
    // Forbidden claim, unknown claim, validity too long, wrong type, missing required claim.
    const long far = static_cast<long>(std::time(nullptr)) + 400L * 86400;
    std::string body =
        R"({"key":"product-a","claims":{"sub":"c","product":"product-a",)"
        R"("edition":"pro\u001b[2J","email":"x@example.com","color":"red","seats":"ten",)"
        R"("exp":)" +
        std::to_string(far) + "}}";
    auto r = daemon_->request("license-server", "POST", "/v1/tokens", body);
    ASSERT_EQ(r.status, 422u) << r.body;
    EXPECT_EQ(r.content_type, "application/problem+json");
    auto p = nlohmann::json::parse(r.body);
    std::set<std::string> codes;
    for (const auto& v : p["violations"]) codes.insert(v["code"].get<std::string>());
    EXPECT_TRUE(codes.count("policy.claim_forbidden"));
    EXPECT_TRUE(codes.count("policy.claim_not_allowed"));
    EXPECT_TRUE(codes.count("policy.claim_type"));
    EXPECT_TRUE(codes.count("policy.exp_beyond_max_validity"));
    EXPECT_TRUE(codes.count("policy.claim_control_character"));  // the escape in "edition"
    // Violations name claims, never their values.
    EXPECT_EQ(r.body.find("x@example.com"), std::string::npos);
    EXPECT_EQ(r.body.find("red"), std::string::npos);
}

TEST_F(DaemonApi, MalformedRequestsGetClearProblems) {
    EXPECT_EQ(daemon_->request("license-server", "POST", "/v1/tokens", "{not json").status, 400u);
    EXPECT_EQ(daemon_->request("license-server", "POST", "/v1/tokens", "[1,2]").status, 400u);
    // I-JSON (RFC 7493 §2.3): a name twice in one object, at any depth, is refused.
    auto dup = daemon_->request("license-server", "POST", "/v1/tokens",
                                R"({"key":"product-a","key":"product-b","claims":{}})");
    EXPECT_EQ(dup.status, 400u) << dup.body;
    EXPECT_NE(dup.body.find("duplicate member"), std::string::npos) << dup.body;
    auto dup_claim = daemon_->request("license-server", "POST", "/v1/tokens",
                                      R"({"key":"product-a","claims":{"sub":"a","sub":"b"}})");
    EXPECT_EQ(dup_claim.status, 400u) << dup_claim.body;
    EXPECT_EQ(dup_claim.body.find("\"a\""), std::string::npos) << dup_claim.body;
    EXPECT_EQ(daemon_
                  ->request("license-server", "POST", "/v1/tokens",
                            R"({"key":"product-a","claims":{},"extra":1})")
                  .status,
              400u);
    std::string huge =
        R"({"key":"product-a","claims":{"sub":")" + std::string(70 * 1024, 'a') + "\"}}";
    EXPECT_EQ(daemon_->request("license-server", "POST", "/v1/tokens", huge).status, 413u);
    // RFC 9110 §15.5.6: a 405 names the allowed methods.
    auto wrong_method = daemon_->request("license-server", "GET", "/v1/tokens");
    EXPECT_EQ(wrong_method.status, 405u);
    EXPECT_EQ(wrong_method.allow, "POST");
    auto jwks_post = daemon_->request("license-server", "POST", "/.well-known/jwks.json", "{}");
    EXPECT_EQ(jwks_post.status, 405u);
    EXPECT_EQ(jwks_post.allow, "GET");
    // Only JSON is read, whatever the case of its media type; the rest is 415.
    const std::string body = R"({"key":"product-a","claims":{}})";
    auto c = daemon_->client("license-server");
    for (const char* type : {"text/plain", "application/json; charset=latin1", ""}) {
        auto r = c.request("POST", "/v1/tokens", body, type);
        ASSERT_TRUE(r.ok()) << type;
        EXPECT_EQ(r->status, 415u) << type;
    }
    auto upper = c.request("POST", "/v1/tokens", body, "Application/JSON; Charset=UTF-8");
    ASSERT_TRUE(upper.ok());
    EXPECT_EQ(upper->status, 422u) << upper->body;  // read as JSON: the claims are incomplete
    EXPECT_EQ(daemon_->request("auditor", "GET", "/v1/nothing").status, 404u);
    EXPECT_EQ(
        daemon_->request("auditor", "GET", "/v1/audit/proofs/inclusion?index=x&size=1").status,
        400u);
    EXPECT_EQ(
        daemon_->request("auditor", "GET", "/v1/audit/proofs/inclusion?index=5&size=1").status,
        400u);
    // The daemon is still serving.
    EXPECT_EQ(daemon_->ops_get("/readyz").status, 200u);
}

TEST_F(DaemonApi, HandshakeWithoutClientCertificateOrOverTls12IsRefused) {
    LICENTRA_REQUIRE_PROGRAM(openssl, "openssl");
    const std::string connect = "127.0.0.1:" + std::to_string(daemon_->api_port());
    const std::string request =
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    std::string out;
    run_command({openssl, "s_client", "-connect", connect, "-tls1_3", "-CAfile",
                 deployment_->pki().ca_file().string(), "-quiet", "-ign_eof"},
                &out, &request);
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << out;
    const auto& cert = deployment_->client_cert("auditor");
    int rc = run_command(
        {openssl, "s_client", "-connect", connect, "-tls1_2", "-cert", cert.cert.string(), "-key",
         cert.key.string(), "-CAfile", deployment_->pki().ca_file().string(), "-quiet", "-ign_eof"},
        &out, &request);
    EXPECT_NE(rc, 0);
    EXPECT_EQ(out.find("HTTP/1.1 200"), std::string::npos) << out;
    // With a certificate over TLS 1.3 the same request succeeds.
    rc = run_command(
        {openssl, "s_client", "-connect", connect, "-tls1_3", "-cert", cert.cert.string(), "-key",
         cert.key.string(), "-CAfile", deployment_->pki().ca_file().string(), "-quiet", "-ign_eof"},
        &out, &request);
    EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
}

TEST_F(DaemonApi, OperationsListenerServesProbesOnly) {
    EXPECT_EQ(daemon_->ops_get("/healthz").status, 200u);
    EXPECT_EQ(daemon_->ops_get("/readyz").status, 200u);
    auto m = daemon_->ops_get("/metrics");
    EXPECT_EQ(m.status, 200u);
    EXPECT_NE(m.body.find("licentra_tokens_issued_total"), std::string::npos);
    EXPECT_EQ(daemon_->ops_get("/v1/keys").status, 404u);
    EXPECT_EQ(daemon_->ops_get("/.well-known/jwks.json").status, 404u);
}

// RFC 6585 §4: a 429 may say how long to wait; the daemon says when the principal's bucket
// holds a token again.
TEST(DaemonRateLimit, SigningPastTheLimitIs429WithRetryAfter) {
    std::string policy =
        read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" / "policy.example.yaml");
    const std::string limit = "signing_rate_limit: { per_second: 200, burst: 400 }";
    const auto pos = policy.find(limit);
    ASSERT_NE(pos, std::string::npos);
    policy.replace(pos, limit.size(), "signing_rate_limit: { per_second: 0.2, burst: 1 }");
    Deployment deployment(policy);
    Daemon daemon(deployment);
    const std::string body = R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
    auto c = daemon.client("license-server");
    auto first = c.request("POST", "/v1/tokens", body, "application/json");
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->status, 201u) << first->body;
    auto second = c.request("POST", "/v1/tokens", body, "application/json");
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->status, 429u) << second->body;
    EXPECT_EQ(nlohmann::json::parse(second->body)["code"], "policy.rate_limited");
    std::string retry_after;
    for (const auto& h : second->headers) {
        if (h.name == "Retry-After") retry_after = h.value;
    }
    // One token every 5 s: between 1 and 5 s from now, in whole seconds.
    ASSERT_FALSE(retry_after.empty());
    EXPECT_GE(std::stoi(retry_after), 1);
    EXPECT_LE(std::stoi(retry_after), 5);
}

}  // namespace
}  // namespace licentra::test
