#include "token/jwk.hpp"

#include <gtest/gtest.h>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "token/canonical_json.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::token {
namespace {

using crypto::Algorithm;
using test::OpensslSigner;

std::set<std::string> member_names(const nlohmann::json& j) {
    std::set<std::string> names;
    for (const auto& [k, v] : j.items()) names.insert(k);
    return names;
}

TEST(Jwk, Ed25519ThumbprintMatchesRfc8037AppendixA3) {
    // RFC 8037 §A.2/§A.3: the example public key and its RFC 7638 thumbprint.
    auto x = core::base64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    ASSERT_TRUE(x.ok());
    auto key = crypto::PublicKey::from_ed25519(*x);
    ASSERT_TRUE(key.ok());
    auto members = jwk_required_members(*key);
    ASSERT_TRUE(members.ok());
    EXPECT_EQ(canonical_json(*members).value(),
              R"({"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
    EXPECT_EQ(jwk_thumbprint(*key).value(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

TEST(Jwk, ThumbprintProcedureMatchesRfc7638Section31) {
    // The RFC's RSA example key is 2048 bits, below what PublicKey accepts, so the procedure
    // (canonical JSON of the required members, SHA-256, base64url) is checked on its members.
    nlohmann::json members = {
        {"kty", "RSA"},
        {"e", "AQAB"},
        {"n",
         "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
         "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
         "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
         "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}};
    auto text = canonical_json(members);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(text->substr(0, 29), R"({"e":"AQAB","kty":"RSA","n":")");
    EXPECT_EQ(core::base64url_encode(crypto::sha256(core::as_bytes(*text))),
              "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST(Jwk, EachKeyTypeHasExactlyItsRequiredMembers) {
    struct Case {
        Algorithm alg;
        std::set<std::string> members;
        const char* crv;
    };
    for (const Case& c : {Case{Algorithm::EdDSA, {"crv", "kty", "x"}, "Ed25519"},
                          Case{Algorithm::ES256, {"crv", "kty", "x", "y"}, "P-256"},
                          Case{Algorithm::ES384, {"crv", "kty", "x", "y"}, "P-384"},
                          Case{Algorithm::PS256, {"e", "kty", "n"}, nullptr}}) {
        auto signer = OpensslSigner::generate(c.alg);
        auto members = jwk_required_members(signer->public_key());
        ASSERT_TRUE(members.ok());
        EXPECT_EQ(member_names(*members), c.members);
        if (c.crv) {
            EXPECT_EQ((*members)["crv"], c.crv);
        }
        if (c.alg == Algorithm::ES256 || c.alg == Algorithm::ES384) {
            const std::size_t field = c.alg == Algorithm::ES256 ? 32 : 48;
            EXPECT_EQ(core::base64url_decode((*members)["x"].get<std::string>())->size(), field);
            EXPECT_EQ(core::base64url_decode((*members)["y"].get<std::string>())->size(), field);
        }
        if (c.alg == Algorithm::PS256) {
            auto n = core::base64url_decode((*members)["n"].get<std::string>());
            EXPECT_EQ(n->size(), 384u);
            EXPECT_NE((*n)[0], 0);
            EXPECT_EQ((*members)["e"], "AQAB");
        }
        auto jwk = public_jwk(signer->public_key());
        ASSERT_TRUE(jwk.ok());
        auto all = c.members;
        all.insert({"alg", "kid", "use"});
        EXPECT_EQ(member_names(*jwk), all);
        EXPECT_EQ((*jwk)["alg"], std::string(crypto::jws_name(c.alg)));
        EXPECT_EQ((*jwk)["use"], "sig");
        EXPECT_EQ((*jwk)["kid"], jwk_thumbprint(signer->public_key()).value());
        EXPECT_EQ((*jwk)["kid"].get<std::string>().size(), 43u);
    }
}

TEST(Jwk, ThumbprintIsStableAndDistinctPerKey) {
    auto a = OpensslSigner::generate(Algorithm::ES256);
    auto b = OpensslSigner::generate(Algorithm::ES256);
    EXPECT_EQ(jwk_thumbprint(a->public_key()).value(), jwk_thumbprint(a->public_key()).value());
    EXPECT_NE(jwk_thumbprint(a->public_key()).value(), jwk_thumbprint(b->public_key()).value());
}

TEST(Jwks, DocumentIsSortedByKidWhateverTheInputOrder) {
    auto k1 = OpensslSigner::generate(Algorithm::EdDSA);
    auto k2 = OpensslSigner::generate(Algorithm::ES256);
    auto k3 = OpensslSigner::generate(Algorithm::ES384);
    std::vector<JwksKey> forward = {{&k1->public_key(), {{"licentra_key", "a"}}},
                                    {&k2->public_key(), {}},
                                    {&k3->public_key(), nlohmann::json::object()}};
    std::vector<JwksKey> backward = {forward[2], forward[1], forward[0]};
    auto a = jwks_json(forward);
    auto b = jwks_json(backward);
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(*a, *b);
    auto doc = nlohmann::json::parse(*a);
    ASSERT_EQ(doc["keys"].size(), 3u);
    std::vector<std::string> kids;
    for (const auto& k : doc["keys"]) kids.push_back(k["kid"]);
    EXPECT_TRUE(std::is_sorted(kids.begin(), kids.end()));
    bool found_meta = false;
    for (const auto& k : doc["keys"]) {
        if (k.contains("licentra_key")) {
            found_meta = true;
            EXPECT_EQ(k["kid"], jwk_thumbprint(k1->public_key()).value());
        }
    }
    EXPECT_TRUE(found_meta);
    EXPECT_EQ(a->find(' '), std::string::npos);
}

TEST(Jwks, EmptyKeyListGivesEmptyKeysArray) { EXPECT_EQ(jwks_json({}).value(), R"({"keys":[]})"); }

TEST(Jwks, RejectsSameKeyTwice) {
    auto k = OpensslSigner::generate(Algorithm::EdDSA);
    auto r = jwks_document({{&k->public_key(), {}}, {&k->public_key(), {}}});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "token.jwks");
}

TEST(Jwks, RejectsMetadataThatRedefinesJwkMembers) {
    auto k = OpensslSigner::generate(Algorithm::EdDSA);
    for (const char* name : {"kid", "alg", "x", "kty", "use", "key_ops"}) {
        auto r = jwks_document({{&k->public_key(), {{name, "evil"}}}});
        ASSERT_FALSE(r.ok()) << name;
        EXPECT_EQ(r.error().code, "token.jwks");
    }
    auto not_object = jwks_document({{&k->public_key(), nlohmann::json::array()}});
    EXPECT_FALSE(not_object.ok());
    auto null_key = jwks_document({{nullptr, {}}});
    EXPECT_FALSE(null_key.ok());
}

TEST(CanonicalJson, SortsMembersAndRefusesWhatJsonCannotCarry) {
    nlohmann::json j = {{"b", 1}, {"a", {{"z", true}, {"y", nullptr}}}, {"\xc3\xa9", "\xc3\xa9"}};
    EXPECT_EQ(canonical_json(j).value(),
              "{\"a\":{\"y\":null,\"z\":true},\"b\":1,\"\xc3\xa9\":\"\xc3\xa9\"}");
    EXPECT_FALSE(canonical_json(nlohmann::json("\xff\xfe")).ok());
    EXPECT_FALSE(canonical_json(nlohmann::json(std::numeric_limits<double>::infinity())).ok());
    nlohmann::json deep = 1;
    for (int i = 0; i < 100; ++i) deep = nlohmann::json::array({deep});
    auto r = canonical_json(deep);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "token.bad_json");
}

}  // namespace
}  // namespace licentra::token
