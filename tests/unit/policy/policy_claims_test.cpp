#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "policy/engine.hpp"
#include "policy_test_util.hpp"

namespace licentra::policy {
namespace {

using nlohmann::json;

class PolicyClaims : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = test::load_ok(test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
        now_ = core::from_unix_millis(1'800'000'000'000);
    }
    std::int64_t now_s() const { return core::unix_seconds(now_); }
    json valid() const {
        return json{{"sub", "cust42"},        {"seats", 3},     {"tier", "pro"},
                    {"features", {"a", "b"}}, {"trial", false}, {"exp", now_s() + 86400}};
    }
    std::vector<Violation> check(const json& c) const {
        return engine_->validate_claims("product-a", c, now_);
    }
    static std::vector<std::string> codes(const std::vector<Violation>& v) {
        std::vector<std::string> out;
        for (const auto& x : v) out.push_back(x.claim + ":" + x.code);
        return out;
    }
    std::shared_ptr<const Engine> engine_;
    core::TimePoint now_;
};

TEST_F(PolicyClaims, ValidClaimsPass) {
    EXPECT_TRUE(check(valid()).empty()) << ::testing::PrintToString(codes(check(valid())));
    json minimal{{"sub", "ab"}, {"exp", now_s() + 1}};
    EXPECT_TRUE(check(minimal).empty());
    json with_nbf = minimal;
    with_nbf["nbf"] = now_s() - 100;
    EXPECT_TRUE(check(with_nbf).empty());
    json at_limit{{"sub", "ab"}, {"exp", now_s() + 30 * 86400}};
    EXPECT_TRUE(check(at_limit).empty());
}

struct ClaimCase {
    const char* name;
    std::function<void(json&, std::int64_t now)> edit;
    std::string expect;  // "claim:code"
};

void PrintTo(const ClaimCase& c, std::ostream* os) { *os << c.name; }

class PolicyClaimRule : public PolicyClaims, public ::testing::WithParamInterface<ClaimCase> {};

TEST_P(PolicyClaimRule, IsEnforced) {
    json c = valid();
    GetParam().edit(c, now_s());
    const auto v = check(c);
    const auto got = codes(v);
    EXPECT_NE(std::find(got.begin(), got.end(), GetParam().expect), got.end())
        << ::testing::PrintToString(got);
    for (const Violation& x : v) {
        EXPECT_FALSE(x.message.empty());
        EXPECT_EQ(x.message.find("s3cr3t"), std::string::npos) << "claim value leaked";
    }
}

const ClaimCase kClaimCases[] = {
    {"iss_reserved", [](json& c, auto) { c["iss"] = "s3cr3t"; }, "iss:policy.claim_reserved"},
    {"iat_reserved", [](json& c, auto n) { c["iat"] = n; }, "iat:policy.claim_reserved"},
    {"jti_reserved", [](json& c, auto) { c["jti"] = "s3cr3t"; }, "jti:policy.claim_reserved"},
    {"email_forbidden", [](json& c, auto) { c["email"] = "s3cr3t@example.org"; },
     "email:policy.claim_forbidden"},
    {"forbidden_any_case", [](json& c, auto) { c["IP_Address"] = "s3cr3t"; },
     "IP_Address:policy.claim_forbidden"},
    {"not_allowed", [](json& c, auto) { c["colour"] = "s3cr3t"; },
     "colour:policy.claim_not_allowed"},
    {"missing_required", [](json& c, auto) { c.erase("sub"); }, "sub:policy.claim_missing"},
    {"string_type", [](json& c, auto) { c["sub"] = 42; }, "sub:policy.claim_type"},
    {"string_too_short", [](json& c, auto) { c["sub"] = "s"; }, "sub:policy.claim_too_short"},
    {"string_too_long", [](json& c, auto) { c["sub"] = "s3cr3t-and-more"; },
     "sub:policy.claim_too_long"},
    {"length_counts_code_points",
     [](json& c, auto) {
         c["sub"] = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
     },
     "sub:policy.claim_too_long"},
    {"integer_type", [](json& c, auto) { c["seats"] = "3"; }, "seats:policy.claim_type"},
    {"integer_not_float", [](json& c, auto) { c["seats"] = 3.5; }, "seats:policy.claim_type"},
    {"integer_below_min", [](json& c, auto) { c["seats"] = 0; }, "seats:policy.claim_below_min"},
    {"integer_above_max", [](json& c, auto) { c["seats"] = 11; }, "seats:policy.claim_above_max"},
    {"integer_huge", [](json& c, auto) { c["seats"] = 18446744073709551615ULL; },
     "seats:policy.claim_above_max"},
    {"one_of", [](json& c, auto) { c["tier"] = "s3cr3t"; }, "tier:policy.claim_not_in_set"},
    {"boolean_type", [](json& c, auto) { c["trial"] = "yes"; }, "trial:policy.claim_type"},
    {"list_type", [](json& c, auto) { c["features"] = "a"; }, "features:policy.claim_type"},
    {"list_item_type", [](json& c, auto) { c["features"] = json::array({1}); },
     "features:policy.claim_type"},
    {"list_too_many",
     [](json& c, auto) {
         c["features"] = {"a", "b", "c"};
     },
     "features:policy.claim_too_many_items"},
    {"list_item_too_long", [](json& c, auto) { c["features"] = {"s3cr3t"}; },
     "features:policy.claim_too_long"},
    {"exp_missing", [](json& c, auto) { c.erase("exp"); }, "exp:policy.claim_missing"},
    {"exp_not_integer", [](json& c, auto n) { c["exp"] = std::to_string(n + 10); },
     "exp:policy.claim_type"},
    {"exp_float", [](json& c, auto n) { c["exp"] = static_cast<double>(n) + 10.5; },
     "exp:policy.claim_type"},
    {"exp_in_past", [](json& c, auto n) { c["exp"] = n - 1; }, "exp:policy.exp_not_in_future"},
    {"exp_now", [](json& c, auto n) { c["exp"] = n; }, "exp:policy.exp_not_in_future"},
    {"exp_beyond_max_validity", [](json& c, auto n) { c["exp"] = n + 30 * 86400 + 1; },
     "exp:policy.exp_beyond_max_validity"},
    {"nbf_not_integer", [](json& c, auto) { c["nbf"] = "soon"; }, "nbf:policy.claim_type"},
    {"nbf_after_exp", [](json& c, auto n) { c["nbf"] = n + 86400; }, "nbf:policy.nbf_after_exp"},
    {"control_newline", [](json& c, auto) { c["sub"] = "s3\ncr"; },
     "sub:policy.claim_control_character"},
    {"control_escape", [](json& c, auto) { c["sub"] = "\x1b[2J"; },
     "sub:policy.claim_control_character"},
    {"control_del", [](json& c, auto) { c["sub"] = "ab\x7f"; },
     "sub:policy.claim_control_character"},
    {"control_c1", [](json& c, auto) { c["sub"] = "ab\xc2\x85"; },  // U+0085 NEL
     "sub:policy.claim_control_character"},
    {"control_in_list_item",
     [](json& c, auto) {
         c["features"] = {"a", "b\tc"};
     },
     "features:policy.claim_control_character"},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, PolicyClaimRule, ::testing::ValuesIn(kClaimCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(PolicyClaims, PrintableUnicodeIsNotAControlCharacter) {
    json c = valid();
    c["sub"] = "caf\xc3\xa9 \xc2\xa0x";  // é and U+00A0 (C2 A0 is not a C1 control)
    EXPECT_TRUE(check(c).empty()) << ::testing::PrintToString(codes(check(c)));
}

TEST_F(PolicyClaims, ARuleMayAllowControlCharacters) {
    auto e = test::load_ok(test::mutate(
        "sub: {type: string, min_length: 2, max_length: 8}",
        "sub: {type: string, min_length: 2, max_length: 8, allow_control_characters: true}"));
    ASSERT_NE(e, nullptr);
    json c = valid();
    c["sub"] = "a\tb";
    EXPECT_TRUE(e->validate_claims("product-a", c, now_).empty());
    c["tier"] = "pro\n";  // its rule does not allow them
    const auto got = codes(e->validate_claims("product-a", c, now_));
    EXPECT_NE(std::find(got.begin(), got.end(), "tier:policy.claim_control_character"), got.end());
}

TEST_F(PolicyClaims, EveryViolationIsReported) {
    json c{{"iss", "x"}, {"email", "a@b"}, {"colour", "red"}, {"seats", 99}, {"tier", "gold"}};
    const auto got = codes(check(c));
    const std::vector<std::string> want = {
        "colour:policy.claim_not_allowed", "email:policy.claim_forbidden",
        "iss:policy.claim_reserved",       "seats:policy.claim_above_max",
        "tier:policy.claim_not_in_set",    "sub:policy.claim_missing",
        "exp:policy.claim_missing"};
    EXPECT_EQ(got, want);
}

TEST_F(PolicyClaims, NonObjectAndUnknownKey) {
    auto v = check(json::array());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].code, "policy.claims_not_object");
    v = engine_->validate_claims("nope", valid(), now_);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].code, "policy.unknown_key");
}

TEST_F(PolicyClaims, KeyWithoutClaimRulesAllowsOnlyExpAndNbf) {
    auto v = engine_->validate_claims("other", json{{"exp", now_s() + 60}, {"nbf", now_s()}}, now_);
    EXPECT_TRUE(v.empty());
    v = engine_->validate_claims("other", json{{"exp", now_s() + 60}, {"sub", "x"}}, now_);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].code, "policy.claim_not_allowed");
}

}  // namespace
}  // namespace licentra::policy
