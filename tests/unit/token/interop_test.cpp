// Tokens for every algorithm, signed through the crypto::Signer interface, checked by three
// independent JOSE implementations: Debian's python3-jwcrypto and python3-jwt, and npm jose.
// Each also recomputes the RFC 7638 thumbprint (jwcrypto JWK.thumbprint(), jose
// calculateJwkThumbprint) that must equal our kid. Tokens reach the verifiers on stdin, never
// in argv. A missing interpreter or module fails the test.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "core/time.hpp"
#include "support/test_support.hpp"
#include "token/claims.hpp"
#include "token/jwk.hpp"
#include "token/jws.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::token {
namespace {

using crypto::Algorithm;
using test::OpensslSigner;

const std::filesystem::path kVerifiers = LICENTRA_VERIFIERS_DIR;

// Debian's interpreter carries python3-jwcrypto and python3-jwt; a PATH python3 (pyenv,
// virtualenv) may not.
std::string debian_python() {
    if (std::filesystem::exists("/usr/bin/python3")) return "/usr/bin/python3";
    return test::find_program("python3");
}

struct Verifier {
    std::string name;
    std::vector<std::string> argv;
    bool thumbprints;
};

std::vector<Verifier> verifiers() {
    std::string python = debian_python();
    std::string node = test::find_program("node");
    return {
        {"python3-jwcrypto", {python, (kVerifiers / "verify_jwcrypto.py").string()}, true},
        {"python3-jwt", {python, (kVerifiers / "verify_pyjwt.py").string()}, false},
        {"npm jose", {node, (kVerifiers / "verify_jose.mjs").string()}, true},
    };
}

struct RunOutput {
    int status;
    std::string output;
};

RunOutput run_verifier(const Verifier& v, const nlohmann::json& jwks, const std::string& token) {
    std::string input = nlohmann::json{{"jwks", jwks}, {"token", token}}.dump();
    RunOutput r;
    r.status = test::run_command(v.argv, &r.output, &input);
    return r;
}

class Interop : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(debian_python().empty()) << "python3 is not installed; run scripts/setup";
        LICENTRA_REQUIRE_PROGRAM(node, "node");
        ASSERT_TRUE(std::filesystem::exists(kVerifiers / "node_modules" / "jose" / "package.json"))
            << "npm jose is not installed in tests/verifiers; run scripts/setup";
    }
};

TEST_F(Interop, EveryAlgorithmVerifiesWithEveryIndependentVerifier) {
    const auto now = std::chrono::system_clock::now();
    const std::int64_t t = core::unix_seconds(now);
    std::vector<std::unique_ptr<OpensslSigner>> signers;
    for (Algorithm alg : {Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256}) {
        signers.push_back(OpensslSigner::generate(alg));
    }
    std::vector<JwksKey> entries;
    for (const auto& s : signers) entries.push_back({&s->public_key(), {}});
    const nlohmann::json jwks = jwks_document(entries).value();

    for (const auto& signer : signers) {
        const std::string alg(crypto::jws_name(signer->algorithm()));
        nlohmann::json caller = {{"sub", "customer-42"}, {"features", {"pro", "sso"}},
                                 {"seats", 25},          {"nbf", t - 10},
                                 {"exp", t + 3600},      {"note", "caf\xc3\xa9"}};
        auto claims = make_claims(caller, "https://signer.test", now, new_jti().value());
        ASSERT_TRUE(claims.ok());
        auto token = sign_token(*signer, *claims);
        ASSERT_TRUE(token.ok()) << token.error().to_string();
        const std::string kid = jwk_thumbprint(signer->public_key()).value();

        for (const auto& v : verifiers()) {
            SCOPED_TRACE(v.name + " / " + alg);
            RunOutput r = run_verifier(v, jwks, *token);
            ASSERT_EQ(r.status, 0) << r.output;
            auto out = nlohmann::json::parse(r.output);
            EXPECT_EQ(out["alg"], alg);
            EXPECT_EQ(out["kid"], kid);
            EXPECT_EQ(out["claims"], *claims);
            if (v.thumbprints) {
                // Every kid in the JWKS is the independently computed RFC 7638 thumbprint.
                for (const auto& jwk : jwks["keys"]) {
                    EXPECT_EQ(out["thumbprints"][jwk["kid"].get<std::string>()], jwk["kid"]);
                }
            }
        }
    }
}

TEST_F(Interop, IndependentVerifiersRejectATamperedToken) {
    // Guards the test itself: a verifier that accepted anything would make the test above vacuous.
    auto signer = OpensslSigner::generate(Algorithm::ES256);
    const nlohmann::json jwks = jwks_document({{&signer->public_key(), {}}}).value();
    std::string token = sign_token(*signer, {{"seats", 1}}).value();
    auto d1 = token.find('.');
    auto d2 = token.rfind('.');
    std::string forged = token.substr(0, d1 + 1) +
                         core::base64url_encode(core::as_bytes(R"({"seats":1000})")) +
                         token.substr(d2);
    for (const auto& v : verifiers()) {
        RunOutput r = run_verifier(v, jwks, forged);
        EXPECT_EQ(r.status, 1) << v.name << ": " << r.output;
    }
}

}  // namespace
}  // namespace licentra::token
