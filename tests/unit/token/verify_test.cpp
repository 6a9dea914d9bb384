// Every rule of include/licentra/verify.hpp has a negative test here.
#include "licentra/verify.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/bytes.hpp"
#include "crypto/ecdsa.hpp"
#include "support/test_support.hpp"
#include "token/jwk.hpp"
#include "token/jws.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra {
namespace {

using crypto::Algorithm;
using test::OpensslSigner;

constexpr std::int64_t kNow = 1'800'000'000;

VerifyOptions at_now() {
    VerifyOptions o;
    o.now = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
    return o;
}

std::string b64(std::string_view s) { return core::base64url_encode(core::as_bytes(s)); }

class VerifyTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        ed_ = OpensslSigner::generate(Algorithm::EdDSA).release();
        p256_ = OpensslSigner::generate(Algorithm::ES256).release();
        p384_ = OpensslSigner::generate(Algorithm::ES384).release();
    }
    static void TearDownTestSuite() {
        delete ed_;
        delete p256_;
        delete p384_;
        delete rsa_;
        rsa_ = nullptr;
    }
    static std::string kid(const OpensslSigner& s) {
        return token::jwk_thumbprint(s.public_key()).value();
    }
    // RSA-3072 generation takes seconds and CTest runs each test in its own process, so the
    // RSA key is made only by the tests that use it; the JWKS lists it once it exists.
    static OpensslSigner* rsa() {
        if (rsa_ == nullptr) rsa_ = OpensslSigner::generate(Algorithm::PS256).release();
        return rsa_;
    }
    static std::string jwks() {
        std::vector<token::JwksKey> keys = {
            {&ed_->public_key(), {}}, {&p256_->public_key(), {}}, {&p384_->public_key(), {}}};
        if (rsa_ != nullptr) keys.push_back({&rsa_->public_key(), {}});
        return token::jwks_json(keys).value();
    }
    // A token with exactly this header and payload text, signed by signer.
    static std::string craft(OpensslSigner& signer, std::string_view header,
                             std::string_view payload) {
        std::string input = b64(header) + "." + b64(payload);
        auto sig = signer.sign(core::as_bytes(input)).value();
        return input + "." + core::base64url_encode(sig);
    }
    static std::string header_for(OpensslSigner& s, std::string_view alg = {}) {
        return R"({"alg":")" + std::string(alg.empty() ? crypto::jws_name(s.algorithm()) : alg) +
               R"(","kid":")" + kid(s) + R"(","typ":"license+jwt"})";
    }
    static std::string good(OpensslSigner& s, std::string_view payload = R"({"sub":"acme"})") {
        return craft(s, header_for(s), payload);
    }
    static VerifyResult check(std::string_view token, VerifyOptions o = at_now()) {
        return verify_token(jwks(), token, o);
    }

    static OpensslSigner* ed_;
    static OpensslSigner* p256_;
    static OpensslSigner* p384_;
    static OpensslSigner* rsa_;
};

OpensslSigner* VerifyTest::ed_ = nullptr;
OpensslSigner* VerifyTest::p256_ = nullptr;
OpensslSigner* VerifyTest::p384_ = nullptr;
OpensslSigner* VerifyTest::rsa_ = nullptr;

#define EXPECT_VERIFY_ERROR(result, code)                                                 \
    do {                                                                                  \
        const auto& r_ = (result);                                                        \
        EXPECT_EQ(r_.error, code) << "got " << to_string(r_.error) << ": " << r_.message; \
        EXPECT_FALSE(r_.ok());                                                            \
        EXPECT_TRUE(r_.claims.is_null());                                                 \
    } while (0)

TEST_F(VerifyTest, AcceptsEveryAlgorithmAndReturnsClaims) {
    for (OpensslSigner* s : {ed_, p256_, p384_, rsa()}) {
        auto r = check(good(*s, R"({"sub":"acme","seats":3})"));
        ASSERT_TRUE(r.ok()) << to_string(r.error) << ": " << r.message;
        EXPECT_EQ(r.claims["seats"], 3);
        EXPECT_EQ(r.claims_json, R"({"seats":3,"sub":"acme"})");
        EXPECT_EQ(r.kid, kid(*s));
        EXPECT_EQ(r.alg, crypto::jws_name(s->algorithm()));
        EXPECT_TRUE(r.message.empty());
    }
}

TEST_F(VerifyTest, VerifierParsesTheJwksOnceAndCountsUsableKeys) {
    rsa();
    auto v = Verifier::from_jwks(jwks());
    ASSERT_TRUE(v.ok()) << v.message();
    EXPECT_EQ(v->usable_key_count(), 4u);
    EXPECT_TRUE(v->verify(good(*ed_), at_now()).ok());
}

TEST_F(VerifyTest, RejectsOversizeTokens) {
    std::string big = good(*ed_, R"({"pad":")" + std::string(13000, 'x') + R"("})");
    ASSERT_GT(big.size(), kMaxTokenBytes);
    EXPECT_VERIFY_ERROR(check(big), VerifyErrc::token_too_large);
}

TEST_F(VerifyTest, RejectsWrongSegmentCounts) {
    std::string t = good(*ed_);
    EXPECT_VERIFY_ERROR(check(""), VerifyErrc::malformed_token);
    EXPECT_VERIFY_ERROR(check(t.substr(0, t.rfind('.'))), VerifyErrc::malformed_token);
    EXPECT_VERIFY_ERROR(check(t + ".AAAA"), VerifyErrc::malformed_token);
    EXPECT_VERIFY_ERROR(check(t.substr(0, t.rfind('.') + 1)), VerifyErrc::malformed_signature);
    EXPECT_VERIFY_ERROR(check("." + t.substr(t.find('.'))), VerifyErrc::malformed_token);
}

TEST_F(VerifyTest, RejectsMalformedBase64url) {
    std::string t = good(*ed_);
    auto d1 = t.find('.');
    auto d2 = t.rfind('.');
    // Padding, standard-alphabet characters, whitespace, non-canonical trailing bits.
    EXPECT_VERIFY_ERROR(check(t + "="), VerifyErrc::malformed_base64url);
    EXPECT_VERIFY_ERROR(check(t.substr(0, d2 + 1) + "+" + t.substr(d2 + 2)),
                        VerifyErrc::malformed_base64url);
    EXPECT_VERIFY_ERROR(check(t.substr(0, d1) + " " + t.substr(d1)),
                        VerifyErrc::malformed_base64url);
    EXPECT_VERIFY_ERROR(check(t.substr(0, d1 + 1) + "/" + t.substr(d1 + 2)),
                        VerifyErrc::malformed_base64url);
    // "eyJ" ... header text ending in a non-canonical last character: flip low bits.
    std::string sig = t.substr(d2 + 1);  // 64 bytes -> 86 chars, last char carries 2 spare bits
    char last = sig.back();
    std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    auto idx = alphabet.find(last);
    sig.back() = alphabet[(idx & ~std::size_t{3}) | ((idx & 3) ^ 1)];
    EXPECT_VERIFY_ERROR(check(t.substr(0, d2 + 1) + sig), VerifyErrc::malformed_base64url);
}

TEST_F(VerifyTest, RejectsHeadersThatAreNotJsonObjects) {
    EXPECT_VERIFY_ERROR(check(craft(*ed_, "[1]", "{}")), VerifyErrc::malformed_header);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, "{\"alg\":", "{}")), VerifyErrc::malformed_header);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, "\xef\xbb\xbf" + header_for(*ed_), "{}")),
                        VerifyErrc::malformed_header);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, header_for(*ed_) + "x", "{}")),
                        VerifyErrc::malformed_header);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, R"({"alg":1})", "{}")), VerifyErrc::malformed_header);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, R"({"alg":"EdDSA","kid":7,"typ":"license+jwt"})", "{}")),
                        VerifyErrc::malformed_header);
    std::string deep = R"({"alg":"EdDSA","x":[[[[[[[[[[1]]]]]]]]]]})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, deep, "{}")), VerifyErrc::malformed_header);
}

TEST_F(VerifyTest, RejectsDuplicateMembersInHeaderAndClaims) {
    std::string h =
        R"({"alg":"EdDSA","alg":"EdDSA","kid":")" + kid(*ed_) + R"(","typ":"license+jwt"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, h, "{}")), VerifyErrc::duplicate_member);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"sub":"a","sub":"b"})")),
                        VerifyErrc::duplicate_member);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"x":{"a":1,"a":2}})")), VerifyErrc::duplicate_member);
    // The same name in different objects is fine.
    EXPECT_TRUE(check(good(*ed_, R"({"a":{"a":1},"b":[{"a":1},{"a":2}]})")).ok());
}

TEST_F(VerifyTest, RejectsAlgNoneInAnySpelling) {
    for (const char* none : {"none", "None", "NONE", "nOnE"}) {
        std::string h = R"({"alg":")" + std::string(none) + R"(","kid":")" + kid(*ed_) +
                        R"(","typ":"license+jwt"})";
        EXPECT_VERIFY_ERROR(check(b64(h) + "." + b64("{}") + "."), VerifyErrc::alg_none);
        EXPECT_VERIFY_ERROR(check(craft(*ed_, h, "{}")), VerifyErrc::alg_none);
    }
}

TEST_F(VerifyTest, RejectsEveryOtherAlgorithmAndAMissingOne) {
    for (const char* alg :
         {"HS256", "RS256", "ES512", "PS384", "ES256K", "Ed25519", "eddsa", " EdDSA"}) {
        SCOPED_TRACE(alg);
        EXPECT_VERIFY_ERROR(check(craft(*ed_, header_for(*ed_, alg), "{}")),
                            VerifyErrc::unsupported_algorithm);
    }
    std::string empty_alg = R"({"alg":"","kid":")" + kid(*ed_) + R"(","typ":"license+jwt"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, empty_alg, "{}")), VerifyErrc::unsupported_algorithm);
    std::string no_alg = R"({"kid":")" + kid(*ed_) + R"(","typ":"license+jwt"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, no_alg, "{}")), VerifyErrc::unsupported_algorithm);
}

TEST_F(VerifyTest, RejectsAnyCrit) {
    for (const char* crit : {R"(["exp"])", R"(["b64"])", "[]", "\"x\""}) {
        std::string h = R"({"alg":"EdDSA","crit":)" + std::string(crit) + R"(,"kid":")" +
                        kid(*ed_) + R"(","typ":"license+jwt"})";
        SCOPED_TRACE(crit);
        EXPECT_VERIFY_ERROR(check(craft(*ed_, h, "{}")), VerifyErrc::crit_present);
    }
}

TEST_F(VerifyTest, RequiresTheLicenseType) {
    std::string no_typ = R"({"alg":"EdDSA","kid":")" + kid(*ed_) + R"("})";
    std::string jwt = R"({"alg":"EdDSA","kid":")" + kid(*ed_) + R"(","typ":"JWT"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, no_typ, "{}")), VerifyErrc::wrong_type);
    EXPECT_VERIFY_ERROR(check(craft(*ed_, jwt, "{}")), VerifyErrc::wrong_type);
    std::string full =
        R"({"alg":"EdDSA","kid":")" + kid(*ed_) + R"(","typ":"application/License+JWT"})";
    EXPECT_TRUE(check(craft(*ed_, full, "{}")).ok());
    auto o = at_now();
    o.expected_type.clear();
    EXPECT_TRUE(check(craft(*ed_, jwt, "{}"), o).ok());
}

TEST_F(VerifyTest, RequiresAKidThatNamesOneUsableKey) {
    std::string no_kid = R"({"alg":"EdDSA","typ":"license+jwt"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, no_kid, "{}")), VerifyErrc::missing_kid);
    std::string other = R"({"alg":"EdDSA","kid":"nope","typ":"license+jwt"})";
    EXPECT_VERIFY_ERROR(check(craft(*ed_, other, "{}")), VerifyErrc::unknown_kid);
    // A token from a key the JWKS does not list.
    auto stranger = OpensslSigner::generate(Algorithm::EdDSA);
    EXPECT_VERIFY_ERROR(check(good(*stranger)), VerifyErrc::unknown_kid);
}

TEST_F(VerifyTest, RejectsAKidListedTwice) {
    auto jwk = token::public_jwk(ed_->public_key()).value();
    nlohmann::json set = {{"keys", {jwk, jwk}}};
    EXPECT_VERIFY_ERROR(verify_token(set.dump(), good(*ed_), at_now()), VerifyErrc::ambiguous_kid);
}

TEST_F(VerifyTest, RejectsAlgorithmKeyMismatch) {
    // Header says ES256 but the kid names the Ed25519 key, and the other way round; each
    // signature is made by the named key so only the pinning can catch it.
    EXPECT_VERIFY_ERROR(check(craft(*ed_, header_for(*ed_, "ES256"), "{}")),
                        VerifyErrc::algorithm_key_mismatch);
    EXPECT_VERIFY_ERROR(check(craft(*p256_, header_for(*p256_, "ES384"), "{}")),
                        VerifyErrc::algorithm_key_mismatch);
    EXPECT_VERIFY_ERROR(check(craft(*p384_, header_for(*p384_, "ES256"), "{}")),
                        VerifyErrc::algorithm_key_mismatch);
    EXPECT_VERIFY_ERROR(check(craft(*rsa(), header_for(*rsa(), "EdDSA"), "{}")),
                        VerifyErrc::algorithm_key_mismatch);
    EXPECT_VERIFY_ERROR(check(craft(*p256_, header_for(*p256_, "PS256"), "{}")),
                        VerifyErrc::algorithm_key_mismatch);
}

TEST_F(VerifyTest, KeysWhoseJwkIsBadAreUnusable) {
    auto jwk = token::public_jwk(p256_->public_key()).value();
    auto with = [&](const char* name, nlohmann::json value) {
        auto j = jwk;
        if (value.is_null()) {
            j.erase(name);
        } else {
            j[name] = value;
        }
        return nlohmann::json{{"keys", {j}}}.dump();
    };
    std::string t = good(*p256_);
    const std::vector<std::string> bad_sets = {
        with("alg", "ES384"),       // declared alg contradicts the curve
        with("use", "enc"),         // not a signing key
        with("key_ops", {"sign"}),  // may not verify
        with("d", "AAAA"),          // private key published
        with("crv", "P-521"),       // unsupported curve
        with("kty", "oct"),         // unsupported type
        with("kty", nullptr),       // no type
        with("x", core::base64url_encode(core::Bytes(31, 1))),  // short coordinate
        with("y", "not base64url!"),
        with("x", core::base64url_encode(core::Bytes(32, 0))),  // not on the curve
    };
    for (const auto& set : bad_sets) {
        auto v = Verifier::from_jwks(set);
        ASSERT_TRUE(v.ok()) << set;
        EXPECT_EQ(v->usable_key_count(), 0u) << set;
        EXPECT_VERIFY_ERROR(v->verify(t, at_now()), VerifyErrc::unusable_key);
    }
}

TEST_F(VerifyTest, RsaKeysBelow3072BitsAndNonMinimalIntegersAreUnusable) {
    auto small = OpensslSigner::generate(Algorithm::PS256, 2048);
    // PublicKey refuses RSA-2048, so build the JWK from OpenSSL directly.
    BIGNUM* bn_n = nullptr;
    BIGNUM* bn_e = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(small->pkey(), "n", &bn_n), 1);
    ASSERT_EQ(EVP_PKEY_get_bn_param(small->pkey(), "e", &bn_e), 1);
    core::Bytes nb(static_cast<std::size_t>(BN_num_bytes(bn_n)));
    core::Bytes eb(static_cast<std::size_t>(BN_num_bytes(bn_e)));
    BN_bn2bin(bn_n, nb.data());
    BN_bn2bin(bn_e, eb.data());
    BN_free(bn_n);
    BN_free(bn_e);
    nlohmann::json jwk = {{"kty", "RSA"},
                          {"kid", "small"},
                          {"n", core::base64url_encode(nb)},
                          {"e", core::base64url_encode(eb)}};
    std::string h = R"({"alg":"PS256","kid":"small","typ":"license+jwt"})";
    std::string input = b64(h) + "." + b64("{}");
    std::string t = input + "." + core::base64url_encode(small->sign_der(core::as_bytes(input)));
    EXPECT_VERIFY_ERROR(verify_token(nlohmann::json{{"keys", {jwk}}}.dump(), t, at_now()),
                        VerifyErrc::unusable_key);

    auto big = token::public_jwk(rsa()->public_key()).value();
    auto padded = core::base64url_decode(big["n"].get<std::string>()).value();
    padded.insert(padded.begin(), 0);
    big["n"] = core::base64url_encode(padded);
    EXPECT_VERIFY_ERROR(
        verify_token(nlohmann::json{{"keys", {big}}}.dump(), good(*rsa()), at_now()),
        VerifyErrc::unusable_key);
}

TEST_F(VerifyTest, RejectsDerEcdsaSignatures) {
    for (OpensslSigner* s : {p256_, p384_}) {
        std::string input = b64(header_for(*s)) + "." + b64("{}");
        auto der = s->sign_der(core::as_bytes(input));
        auto r = check(input + "." + core::base64url_encode(der));
        EXPECT_VERIFY_ERROR(r, VerifyErrc::malformed_signature);
        EXPECT_NE(r.message.find("DER"), std::string::npos);
    }
}

TEST_F(VerifyTest, RejectsSignaturesOfTheWrongSize) {
    auto with_sig = [](const std::string& t, core::Bytes sig) {
        return t.substr(0, t.rfind('.') + 1) + core::base64url_encode(sig);
    };
    auto raw = [](const std::string& t) {
        return core::base64url_decode(t.substr(t.rfind('.') + 1)).value();
    };
    // ECDSA: one byte short, one byte long, and P-256 width on a P-384 key.
    for (OpensslSigner* s : {p256_, p384_}) {
        std::string t = good(*s);
        core::Bytes sig = raw(t);
        core::Bytes shorter(sig.begin(), sig.end() - 1);
        core::Bytes longer = sig;
        longer.insert(longer.begin(), 0);
        EXPECT_VERIFY_ERROR(check(with_sig(t, shorter)), VerifyErrc::malformed_signature);
        EXPECT_VERIFY_ERROR(check(with_sig(t, longer)), VerifyErrc::malformed_signature);
    }
    EXPECT_VERIFY_ERROR(check(with_sig(good(*p384_), core::Bytes(64, 1))),
                        VerifyErrc::malformed_signature);
    EXPECT_VERIFY_ERROR(check(with_sig(good(*ed_), core::Bytes(65, 1))),
                        VerifyErrc::malformed_signature);
    // RSA: a leading zero stripped (RFC 8017 I2OSP length) must not slip through.
    std::string t = good(*rsa());
    core::Bytes sig = raw(t);
    EXPECT_VERIFY_ERROR(check(with_sig(t, core::Bytes(sig.begin() + 1, sig.end()))),
                        VerifyErrc::malformed_signature);
}

TEST_F(VerifyTest, RejectsTamperedTokensForEveryAlgorithm) {
    for (OpensslSigner* s : {ed_, p256_, p384_, rsa()}) {
        std::string t = good(*s, R"({"seats":1})");
        std::string forged =
            b64(header_for(*s)) + "." + b64(R"({"seats":9})") + t.substr(t.rfind('.'));
        EXPECT_VERIFY_ERROR(check(forged), VerifyErrc::signature_invalid);
        // A valid signature by a different key of the same type, under the listed kid.
        auto other = OpensslSigner::generate(s->algorithm());
        EXPECT_VERIFY_ERROR(check(craft(*other, header_for(*s), "{}")),
                            VerifyErrc::signature_invalid);
    }
    // ECDSA r = 0, s = 0 (the "psychic signature" shape) must never verify.
    std::string t = good(*p256_);
    EXPECT_VERIFY_ERROR(
        check(t.substr(0, t.rfind('.') + 1) + core::base64url_encode(core::Bytes(64))),
        VerifyErrc::signature_invalid);
}

TEST_F(VerifyTest, RejectsPayloadsThatAreNotClaimObjects) {
    EXPECT_VERIFY_ERROR(check(good(*ed_, "[]")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, "\"x\"")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, "{")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, "{\"a\":\"\xff\"}")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"exp":"soon"})")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"nbf":null})")), VerifyErrc::malformed_claims);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"iat":[1]})")), VerifyErrc::malformed_claims);
    std::string deep(40, '[');
    deep += std::string(40, ']');
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"a":)" + deep + "}")), VerifyErrc::malformed_claims);
}

TEST_F(VerifyTest, EnforcesExpWithLeeway) {
    auto at = [&](std::int64_t exp) {
        return check(good(*ed_, R"({"exp":)" + std::to_string(exp) + "}"));
    };
    // Default leeway 60 s: expired when exp <= now - 60.
    EXPECT_VERIFY_ERROR(at(kNow - 60), VerifyErrc::expired);
    EXPECT_VERIFY_ERROR(at(kNow - 86400), VerifyErrc::expired);
    EXPECT_TRUE(at(kNow - 59).ok());
    EXPECT_TRUE(at(kNow + 3600).ok());
    auto strict = at_now();
    strict.leeway = std::chrono::seconds(0);
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"exp":)" + std::to_string(kNow) + "}"), strict),
                        VerifyErrc::expired);
    EXPECT_TRUE(check(good(*ed_, R"({"exp":1800000000.5})"), strict).ok());
}

TEST_F(VerifyTest, EnforcesNbfAndIatWithLeeway) {
    auto with = [&](const char* claim, std::int64_t t) {
        return check(good(*ed_, "{\"" + std::string(claim) + "\":" + std::to_string(t) + "}"));
    };
    for (const char* claim : {"nbf", "iat"}) {
        EXPECT_VERIFY_ERROR(with(claim, kNow + 61), VerifyErrc::not_yet_valid);
        EXPECT_TRUE(with(claim, kNow + 60).ok()) << claim;
        EXPECT_TRUE(with(claim, kNow - 3600).ok()) << claim;
    }
}

TEST_F(VerifyTest, OptionalIssuerAndExpiryRequirements) {
    auto o = at_now();
    o.require_exp = true;
    EXPECT_VERIFY_ERROR(check(good(*ed_, "{}"), o), VerifyErrc::missing_expiry);
    o = at_now();
    o.expected_issuer = "https://signer.example";
    EXPECT_VERIFY_ERROR(check(good(*ed_, R"({"iss":"https://evil.example"})"), o),
                        VerifyErrc::wrong_issuer);
    EXPECT_VERIFY_ERROR(check(good(*ed_, "{}"), o), VerifyErrc::wrong_issuer);
    EXPECT_TRUE(check(good(*ed_, R"({"iss":"https://signer.example"})"), o).ok());
}

TEST_F(VerifyTest, IgnoresKeysCarriedInTheHeader) {
    // A header-embedded key (CVE-2018-0114 style) must not be trusted: kid still decides.
    auto attacker = OpensslSigner::generate(Algorithm::EdDSA);
    auto jwk = token::public_jwk(attacker->public_key()).value();
    nlohmann::json h = {{"alg", "EdDSA"}, {"kid", kid(*ed_)}, {"typ", "license+jwt"}, {"jwk", jwk}};
    EXPECT_VERIFY_ERROR(check(craft(*attacker, h.dump(), "{}")), VerifyErrc::signature_invalid);
}

TEST(VerifyJwks, RejectsMalformedSets) {
    for (const char* text :
         {"", "[]", "{}", R"({"keys":{}})", R"({"keys":[1]})", R"({"keys":[],"keys":[]})",
          "{\"keys\":[]", "\xef\xbb\xbf{\"keys\":[]}"}) {
        auto v = Verifier::from_jwks(text);
        EXPECT_FALSE(v.ok()) << text;
        EXPECT_EQ(v.error(), VerifyErrc::malformed_jwks) << text;
        EXPECT_FALSE(v.message().empty());
        auto r = verify_token(text, "a.b.c");
        EXPECT_EQ(r.error, VerifyErrc::malformed_jwks);
    }
    std::string huge = R"({"keys":[],"pad":")" + std::string(kMaxJwksBytes, 'x') + "\"}";
    EXPECT_EQ(Verifier::from_jwks(huge).error(), VerifyErrc::malformed_jwks);
}

TEST(VerifyJwks, IgnoresUnsupportedAndKidlessKeys) {
    auto v = Verifier::from_jwks(
        R"({"keys":[{"kty":"oct","k":"AAAA"},{"kty":"EC","kid":"x","crv":"secp256k1"}]})");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->usable_key_count(), 0u);
}

TEST(VerifyCorpus, TokensSignedByJwcryptoVerify) {
    // The fuzz seeds were signed by python3-jwcrypto: the reverse direction of the interop test.
    const std::filesystem::path corpus =
        std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
    const std::string jwks = test::read_file(corpus / "token_jwks" / "valid");
    for (const char* alg : {"eddsa", "es256", "es384", "ps256"}) {
        auto r = verify_token(
            jwks, test::read_file(corpus / "token_verify" / ("valid_" + std::string(alg))),
            at_now());
        ASSERT_TRUE(r.ok()) << alg << ": " << to_string(r.error) << " " << r.message;
        EXPECT_EQ(r.claims["seats"], 5);
    }
}

TEST(VerifyErrcNames, AreStableSnakeCase) {
    EXPECT_EQ(to_string(VerifyErrc::ok), "ok");
    EXPECT_EQ(to_string(VerifyErrc::alg_none), "alg_none");
    EXPECT_EQ(to_string(VerifyErrc::algorithm_key_mismatch), "algorithm_key_mismatch");
    EXPECT_EQ(to_string(VerifyErrc::malformed_signature), "malformed_signature");
}

}  // namespace
}  // namespace licentra
