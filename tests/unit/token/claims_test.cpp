#include "token/claims.hpp"

#include <gtest/gtest.h>

#include <set>

#include "core/bytes.hpp"

namespace licentra::token {
namespace {

const core::TimePoint kNow = core::from_unix_millis(1'800'000'000'123);

TEST(Claims, DaemonSetsIssIatAndJti) {
    auto c = make_claims({{"sub", "acme"}, {"exp", 1'800'086'400}}, "https://signer.example", kNow,
                         "abc");
    ASSERT_TRUE(c.ok()) << c.error().to_string();
    EXPECT_EQ((*c)["iss"], "https://signer.example");
    EXPECT_EQ((*c)["iat"], 1'800'000'000);
    EXPECT_TRUE((*c)["iat"].is_number_integer());
    EXPECT_EQ((*c)["jti"], "abc");
    EXPECT_EQ((*c)["sub"], "acme");
    EXPECT_EQ((*c)["exp"], 1'800'086'400);
}

TEST(Claims, RefusesEveryCallerSuppliedReservedClaim) {
    for (const char* name : {"iss", "iat", "jti"}) {
        auto c = make_claims({{"sub", "x"}, {name, "forged"}}, "iss", kNow, "j");
        ASSERT_FALSE(c.ok()) << name;
        EXPECT_EQ(c.error().code, "token.reserved_claim");
        EXPECT_EQ(c.error().kind, core::ErrorKind::usage);
        EXPECT_NE(c.error().message.find(name), std::string::npos);
    }
    auto all = make_claims({{"iss", 1}, {"iat", 2}, {"jti", 3}}, "iss", kNow, "j");
    ASSERT_FALSE(all.ok());
    EXPECT_NE(all.error().message.find("iss, iat, jti"), std::string::npos);
}

TEST(Claims, RefusesNonObjectsNonNumericDatesAndEmptyIssuerOrId) {
    EXPECT_EQ(make_claims(nlohmann::json::array(), "i", kNow, "j").error().code,
              "token.bad_claims");
    EXPECT_EQ(make_claims("text", "i", kNow, "j").error().code, "token.bad_claims");
    EXPECT_EQ(make_claims({{"exp", "tomorrow"}}, "i", kNow, "j").error().code, "token.bad_claims");
    EXPECT_EQ(make_claims({{"nbf", true}}, "i", kNow, "j").error().code, "token.bad_claims");
    EXPECT_EQ(make_claims(nlohmann::json::object(), "", kNow, "j").error().code,
              "token.bad_issuer");
    EXPECT_EQ(make_claims(nlohmann::json::object(), "i", kNow, "").error().code, "token.bad_jti");
}

TEST(Claims, JtiIsSixteenRandomBytesInBase64url) {
    std::set<std::string> seen;
    for (int i = 0; i < 64; ++i) {
        auto j = new_jti();
        ASSERT_TRUE(j.ok());
        EXPECT_EQ(j->size(), 22u);
        EXPECT_EQ(core::base64url_decode(*j)->size(), 16u);
        seen.insert(*j);
    }
    EXPECT_EQ(seen.size(), 64u);
}

}  // namespace
}  // namespace licentra::token
