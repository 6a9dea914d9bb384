#include "token/jws.hpp"

#include <gtest/gtest.h>

#include "core/bytes.hpp"
#include "licentra/verify.hpp"
#include "token/jwk.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::token {
namespace {

using crypto::Algorithm;
using test::OpensslSigner;

constexpr Algorithm kAll[] = {Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384,
                              Algorithm::PS256};

std::string jwks_for(const crypto::PublicKey& key) { return jwks_json({{&key, {}}}).value(); }

TEST(Jws, HeaderIsCanonicalWithAlgKidAndLicenseType) {
    auto input = make_signing_input(Algorithm::ES256, "kid-1_x", {{"sub", "acme"}});
    ASSERT_TRUE(input.ok()) << input.error().to_string();
    auto dot = input->text.find('.');
    ASSERT_NE(dot, std::string::npos);
    auto header = core::base64url_decode(input->text.substr(0, dot));
    auto payload = core::base64url_decode(input->text.substr(dot + 1));
    EXPECT_EQ(core::as_chars(*header), R"({"alg":"ES256","kid":"kid-1_x","typ":"license+jwt"})");
    EXPECT_EQ(core::as_chars(*payload), R"({"sub":"acme"})");
    EXPECT_EQ(input->kid, "kid-1_x");
    EXPECT_EQ(input->alg, Algorithm::ES256);
}

TEST(Jws, PayloadIsCanonicalWhateverTheInsertionOrder) {
    nlohmann::json a = {{"z", 1}, {"a", {{"y", 2}, {"b", 3}}}};
    nlohmann::json b = nlohmann::json::parse(R"({ "a" : { "b":3, "y":2 }, "z":1 })");
    EXPECT_EQ(make_signing_input(Algorithm::EdDSA, "k", a)->text,
              make_signing_input(Algorithm::EdDSA, "k", b)->text);
}

TEST(Jws, SigningInputRejectsNonObjectClaimsBadKidAndOversize) {
    EXPECT_EQ(make_signing_input(Algorithm::EdDSA, "k", nlohmann::json::array()).error().code,
              "token.bad_claims");
    EXPECT_EQ(make_signing_input(Algorithm::EdDSA, "", {{"a", 1}}).error().code, "token.bad_kid");
    EXPECT_EQ(make_signing_input(Algorithm::EdDSA, "a.b", {{"a", 1}}).error().code,
              "token.bad_kid");
    EXPECT_EQ(make_signing_input(Algorithm::EdDSA, "k\"", {{"a", 1}}).error().code,
              "token.bad_kid");
    auto big = make_signing_input(Algorithm::EdDSA, "k", {{"a", std::string(12000, 'x')}});
    ASSERT_FALSE(big.ok());
    EXPECT_EQ(big.error().code, "token.too_large");
}

TEST(Jws, AssembleRefusesSignaturesOfTheWrongLength) {
    auto in = [](Algorithm alg) { return make_signing_input(alg, "k", {{"a", 1}}).value(); };
    EXPECT_FALSE(assemble_token(in(Algorithm::EdDSA), core::Bytes(63)).ok());
    EXPECT_TRUE(assemble_token(in(Algorithm::EdDSA), core::Bytes(64)).ok());
    EXPECT_FALSE(assemble_token(in(Algorithm::ES256), core::Bytes(72)).ok());  // DER-ish size
    EXPECT_TRUE(assemble_token(in(Algorithm::ES256), core::Bytes(64)).ok());
    EXPECT_FALSE(assemble_token(in(Algorithm::ES384), core::Bytes(64)).ok());
    EXPECT_TRUE(assemble_token(in(Algorithm::ES384), core::Bytes(96)).ok());
    EXPECT_FALSE(assemble_token(in(Algorithm::PS256), core::Bytes(256)).ok());  // RSA-2048
    EXPECT_TRUE(assemble_token(in(Algorithm::PS256), core::Bytes(384)).ok());
    auto t = assemble_token(in(Algorithm::EdDSA), core::Bytes(64, 0xff));
    EXPECT_EQ(t->substr(t->rfind('.') + 1), core::base64url_encode(core::Bytes(64, 0xff)));
}

TEST(Jws, SignTokenProducesTokensTheProductVerifierAcceptsForEveryAlgorithm) {
    for (Algorithm alg : kAll) {
        auto signer = OpensslSigner::generate(alg);
        nlohmann::json claims = {{"sub", "acme"}, {"features", {"pro", "sso"}}, {"seats", 25}};
        auto token = sign_token(*signer, claims);
        ASSERT_TRUE(token.ok()) << crypto::jws_name(alg) << ": " << token.error().to_string();
        auto r = licentra::verify_token(jwks_for(signer->public_key()), *token);
        ASSERT_TRUE(r.ok()) << crypto::jws_name(alg) << ": " << r.message;
        EXPECT_EQ(r.claims, claims);
        EXPECT_EQ(r.alg, crypto::jws_name(alg));
        EXPECT_EQ(r.kid, jwk_thumbprint(signer->public_key()).value());
    }
}

TEST(Jws, TwoStepSigningMatchesTheOneStepForm) {
    auto signer = OpensslSigner::generate(Algorithm::EdDSA);
    auto kid = jwk_thumbprint(signer->public_key()).value();
    nlohmann::json claims = {{"sub", "acme"}};
    auto input = make_signing_input(Algorithm::EdDSA, kid, claims).value();
    auto sig = signer->sign(core::as_bytes(input.text)).value();
    auto token = assemble_token(input, sig).value();
    // Ed25519 is deterministic (RFC 8032), so both paths give the same bytes.
    EXPECT_EQ(token, sign_token(*signer, claims).value());
    EXPECT_TRUE(check_token(token, signer->public_key()).ok());
}

TEST(Jws, CheckTokenCatchesABadSignatureAndTheWrongKey) {
    auto signer = OpensslSigner::generate(Algorithm::ES256);
    auto other = OpensslSigner::generate(Algorithm::ES256);
    auto kid = jwk_thumbprint(signer->public_key()).value();
    auto input = make_signing_input(Algorithm::ES256, kid, {{"a", 1}}).value();
    auto token = assemble_token(input, core::Bytes(64, 1)).value();
    auto st = check_token(token, signer->public_key());
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "token.self_check");
    EXPECT_EQ(st.error().kind, core::ErrorKind::integrity);
    auto good = sign_token(*signer, {{"a", 1}}).value();
    EXPECT_FALSE(check_token(good, other->public_key()).ok());
}

TEST(Jws, CheckTokenIgnoresTheValidityWindow) {
    auto signer = OpensslSigner::generate(Algorithm::EdDSA);
    EXPECT_TRUE(sign_token(*signer, {{"exp", 1}}).ok());
    EXPECT_TRUE(sign_token(*signer, {{"nbf", 4102444800}}).ok());
}

TEST(Jws, TokenSha256IsHexOfTheTokenText) {
    // SHA-256("abc") from FIPS 180-2.
    EXPECT_EQ(token_sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace licentra::token
