// The public JWKS listener: TLS with the server certificate only, the JWKS and nothing else,
// fetched by products the way they do it (PyJWT's PyJWKClient, jose's createRemoteJWKSet).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "support/daemon.hpp"

namespace licentra::test {
namespace {

const std::filesystem::path kVerifiers =
    std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "verifiers";

struct Fetched {
    int status = -1;
    std::string head;  // status line and header fields
    std::string body;
};

// One HTTPS request with curl: no client certificate, the test CA as the only trust anchor.
Fetched curl(const std::string& curl_path, const std::filesystem::path& ca, const std::string& url,
             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {curl_path, "-sS", "-i", "--cacert", ca.string(), url};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out;
    Fetched f;
    if (run_command(argv, &out) != 0) {
        f.head = out;
        return f;
    }
    const auto split = out.find("\r\n\r\n");
    f.head = out.substr(0, split);
    f.body = split == std::string::npos ? "" : out.substr(split + 4);
    std::smatch m;
    if (std::regex_search(f.head, m, std::regex(R"(^HTTP/1\.1 (\d{3}))")))
        f.status = std::stoi(m[1]);
    return f;
}

std::string header(const std::string& head, const std::string& name) {
    std::smatch m;
    if (!std::regex_search(head, m,
                           std::regex("\r\n" + name + ": ([^\r\n]*)", std::regex::icase))) {
        return {};
    }
    return m[1];
}

TEST(PublicJwks, ProductsFetchTheKeySetWithoutAClientCertificateAndVerifyTokens) {
    LICENTRA_REQUIRE_PROGRAM(curl_path, "curl");
    LICENTRA_REQUIRE_PROGRAM(node, "node");
    ASSERT_TRUE(std::filesystem::exists("/usr/bin/python3")) << "run scripts/setup";
    ASSERT_TRUE(std::filesystem::exists(kVerifiers / "node_modules" / "jose" / "package.json"))
        << "npm jose is missing: run scripts/setup";
    Deployment deployment;
    const std::uint16_t port = free_port();
    DaemonOptions o;
    o.extra_config = "public_jwks:\n  address: 127.0.0.1\n  port: " + std::to_string(port) + "\n";
    Daemon daemon(deployment, o);
    const auto ca = deployment.pki().ca_file();
    const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/.well-known/jwks.json";

    // Served to anyone over TLS, with caching headers.
    const Fetched jwks = curl(curl_path, ca, url);
    ASSERT_EQ(jwks.status, 200) << jwks.head;
    const auto set = nlohmann::json::parse(jwks.body);
    ASSERT_TRUE(set["keys"].is_array());
    EXPECT_FALSE(set["keys"].empty());
    // The example policy publishes new versions days ahead: caches keep the set an hour at most.
    EXPECT_EQ(header(jwks.head, "Cache-Control"), "public, max-age=3600") << jwks.head;
    const std::string etag = header(jwks.head, "ETag");
    EXPECT_TRUE(std::regex_match(etag, std::regex(R"("[0-9a-f]{32}")"))) << etag;
    EXPECT_EQ(header(jwks.head, "Content-Type"), "application/json");

    // The mTLS listener's copy is the same document with the same validators.
    const auto mtls = daemon.request("auditor", "GET", "/.well-known/jwks.json");
    ASSERT_EQ(mtls.status, 200u);
    EXPECT_EQ(mtls.body, jwks.body);

    // A cache that holds this version gets 304 without a body; a stale one gets the set.
    const Fetched same = curl(curl_path, ca, url, {"-H", "If-None-Match: " + etag});
    EXPECT_EQ(same.status, 304) << same.head;
    EXPECT_EQ(same.body, "");
    EXPECT_EQ(header(same.head, "ETag"), etag);
    const Fetched stale = curl(curl_path, ca, url, {"-H", R"(If-None-Match: W/"0123", "4567")"});
    EXPECT_EQ(stale.status, 200) << stale.head;

    // Nothing else is served there, and nothing but GET.
    EXPECT_EQ(curl(curl_path, ca, "https://127.0.0.1:" + std::to_string(port) + "/v1/keys").status,
              404);
    const Fetched post = curl(curl_path, ca, url, {"-X", "POST", "-d", "{}"});
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(header(post.head, "Allow"), "GET");
    // The API listener still wants a client certificate.
    EXPECT_NE(
        curl(curl_path, ca,
             "https://127.0.0.1:" + std::to_string(daemon.api_port()) + "/.well-known/jwks.json")
            .status,
        200);

    // A product verifies a fresh token against the fetched set.
    auto signed_token =
        daemon.request("license-server", "POST", "/v1/tokens",
                       R"({"key":"product-a","claims":)" + example_claims("product-a") + "}");
    ASSERT_EQ(signed_token.status, 201u) << signed_token.body;
    const std::string token = nlohmann::json::parse(signed_token.body)["token"];
    const std::string kid = nlohmann::json::parse(signed_token.body)["kid"];
    const std::string input = nlohmann::json{{"url", url}, {"token", token}}.dump();
    for (const auto& verifier : std::vector<std::vector<std::string>>{
             {"/usr/bin/env", "SSL_CERT_FILE=" + ca.string(), "/usr/bin/python3",
              (kVerifiers / "verify_pyjwt.py").string()},
             {"/usr/bin/env", "NODE_EXTRA_CA_CERTS=" + ca.string(), node,
              (kVerifiers / "verify_jose.mjs").string()}}) {
        std::string out;
        ASSERT_EQ(run_command(verifier, &out, &input), 0) << verifier[3] << ": " << out;
        const auto j = nlohmann::json::parse(out.substr(out.find('{')));
        EXPECT_EQ(j["kid"], kid) << out;
        EXPECT_EQ(j["claims"]["sub"], "customer-4711") << out;
    }
}

TEST(PublicJwks, CachesKeepTheSetForHalfTheShortestPublishAheadPeriod) {
    LICENTRA_REQUIRE_PROGRAM(curl_path, "curl");
    // The example policy with new versions published 30 s and 20 s before they sign.
    std::string policy =
        read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" / "policy.example.yaml");
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"publish_ahead: 7d", "publish_ahead: 30s"},
          {"publish_ahead: 3d", "publish_ahead: 20s"}}) {
        const auto at = policy.find(from);
        ASSERT_NE(at, std::string::npos) << from;
        policy.replace(at, from.size(), to);
    }
    Deployment deployment(policy);
    const std::uint16_t port = free_port();
    DaemonOptions o;
    o.extra_config = "public_jwks:\n  address: 127.0.0.1\n  port: " + std::to_string(port) + "\n";
    Daemon daemon(deployment, o);
    const Fetched jwks =
        curl(curl_path, deployment.pki().ca_file(),
             "https://127.0.0.1:" + std::to_string(port) + "/.well-known/jwks.json");
    ASSERT_EQ(jwks.status, 200) << jwks.head;
    EXPECT_EQ(header(jwks.head, "Cache-Control"), "public, max-age=10") << jwks.head;
}

}  // namespace
}  // namespace licentra::test
