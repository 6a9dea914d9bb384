// Tokens from the real daemon, checked by verifiers that share no code with it.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

const std::filesystem::path kVerifiers =
    std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "verifiers";

std::string all_algorithms_policy() {
    return read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "integration" / "data" /
                     "policy-all-algorithms.yaml");
}

std::string audit_text(const std::filesystem::path& dir) {
    std::string all;
    for (const auto& e : std::filesystem::directory_iterator(dir)) all += read_file(e.path());
    return all;
}

TEST(DaemonTokens, EveryAlgorithmVerifiesWithJoseAndJwcryptoAndIsAudited) {
    LICENTRA_REQUIRE_PROGRAM(node, "node");
    // Debian's interpreter carries python3-jwcrypto; a PATH python3 (pyenv) may not.
    const std::string python3 = std::filesystem::exists("/usr/bin/python3")
                                    ? std::string("/usr/bin/python3")
                                    : find_program("python3");
    ASSERT_FALSE(python3.empty()) << "python3 is not installed; run scripts/setup";
    ASSERT_TRUE(std::filesystem::exists(kVerifiers / "node_modules" / "jose" / "package.json"))
        << "npm jose is missing: run scripts/setup";
    Deployment deployment(all_algorithms_policy());
    std::vector<std::string> tokens;
    std::vector<std::string> kids;
    {
        Daemon daemon(deployment);
        auto jwks = daemon.request("license-server", "GET", "/.well-known/jwks.json");
        ASSERT_EQ(jwks.status, 200u) << jwks.body;
        for (const std::string key : {"alg-eddsa", "alg-es256", "alg-es384", "alg-ps256"}) {
            SCOPED_TRACE(key);
            const long exp = static_cast<long>(std::time(nullptr)) + 3600;
            std::string claims = R"({"sub":"customer-secret-4711","seats":42,"tier":"gold-tier",)"
                                 R"("exp":)" +
                                 std::to_string(exp) + "}";
            auto r = daemon.request("license-server", "POST", "/v1/tokens",
                                    R"({"key":")" + key + R"(","claims":)" + claims + "}");
            ASSERT_EQ(r.status, 201u) << r.body;
            auto doc = nlohmann::json::parse(r.body);
            const std::string token = doc["token"];
            tokens.push_back(token);
            kids.push_back(doc["kid"]);
            const std::string input =
                nlohmann::json{{"jwks", nlohmann::json::parse(jwks.body)}, {"token", token}}.dump();
            for (const auto& verifier : std::vector<std::vector<std::string>>{
                     {node, (kVerifiers / "verify_jose.mjs").string()},
                     {python3, (kVerifiers / "verify_jwcrypto.py").string()}}) {
                std::string out;
                int rc = run_command(verifier, &out, &input);
                ASSERT_EQ(rc, 0) << verifier[1] << ": " << out;
                auto v = nlohmann::json::parse(out);
                EXPECT_EQ(v["kid"], doc["kid"]);
                // kid recomputed independently as the RFC 7638 thumbprint.
                EXPECT_EQ(v["thumbprints"][doc["kid"].get<std::string>()], doc["kid"]);
                EXPECT_EQ(v["claims"]["iss"], "https://licenses.example.com/it");
                EXPECT_EQ(v["claims"]["seats"], 42);
                EXPECT_TRUE(v["claims"].contains("jti"));
                EXPECT_TRUE(v["claims"].contains("iat"));
            }
            // A tampered token is rejected by the independent verifier.
            std::string bad = token;
            bad[bad.size() - 5] = bad[bad.size() - 5] == 'A' ? 'B' : 'A';
            const std::string bad_input =
                nlohmann::json{{"jwks", nlohmann::json::parse(jwks.body)}, {"token", bad}}.dump();
            std::string out;
            EXPECT_NE(
                run_command({node, (kVerifiers / "verify_jose.mjs").string()}, &out, &bad_input),
                0);
        }
        // The offline CLI verifies a token against the published JWKS too.
        auto jwks_file = deployment.dir() / "jwks.json";
        write_file(jwks_file, jwks.body);
        std::string out;
        EXPECT_EQ(run_command({binary("licentra"), "token", "verify", "-", "--jwks",
                               jwks_file.string(), "--json"},
                              &out, &tokens[0]),
                  0)
            << out;
        daemon.signal(SIGTERM);
        EXPECT_EQ(daemon.wait(), 0) << daemon.log();
        const std::string log = audit_text(daemon.audit_dir());
        for (const auto& t : tokens) {
            EXPECT_NE(log.find(core::hex_encode(crypto::sha256(core::as_bytes(t)))),
                      std::string::npos);
            EXPECT_EQ(log.find(t), std::string::npos);
        }
        for (const auto& k : kids) EXPECT_NE(log.find(k), std::string::npos);
        // No claim value reaches the log: not the subject, not the tier.
        EXPECT_EQ(log.find("customer-secret-4711"), std::string::npos);
        EXPECT_EQ(log.find("gold-tier"), std::string::npos);
        EXPECT_NE(log.find("\"pseudonyms\":{\"sub\":"), std::string::npos);
        // The auditor's offline check passes on what the daemon wrote.
        EXPECT_EQ(daemon.audit_verify(&out), 0) << out;
    }
}

}  // namespace
}  // namespace licentra::test
