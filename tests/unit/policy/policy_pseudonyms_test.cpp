// The policy's pseudonym epochs: `pseudonyms: {epoch, retention}` at the top level, both
// required, durations in the policy's one syntax, every mistake reported with its place.
#include <gtest/gtest.h>

#include "policy/loader.hpp"
#include "unit/policy/policy_test_util.hpp"

namespace licentra::policy {
namespace {

using namespace std::chrono_literals;

std::string with(const std::string& section) {
    return test::mutate("keys:\n", section + "keys:\n");
}

TEST(PolicyPseudonyms, EpochAndRetentionAreRead) {
    auto engine = test::load_ok(with("pseudonyms:\n  epoch: 90d\n  retention: 730d\n"));
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->pseudonyms().has_value());
    EXPECT_EQ(engine->pseudonyms()->epoch, 90 * 24h);
    EXPECT_EQ(engine->pseudonyms()->retention, 730 * 24h);
}

TEST(PolicyPseudonyms, WithoutTheSectionOneKeyMakesEveryPseudonym) {
    auto engine = test::load_ok(test::kBasePolicy);
    ASSERT_NE(engine, nullptr);
    EXPECT_FALSE(engine->pseudonyms().has_value());
}

TEST(PolicyPseudonyms, MistakesAreRefusedWithTheirPlace) {
    struct Case {
        const char* section;
        const char* message;
    };
    for (const Case& c : {
             Case{"pseudonyms:\n  epoch: 90d\n", "missing required key \"retention\""},
             Case{"pseudonyms:\n  retention: 1d\n", "missing required key \"epoch\""},
             Case{"pseudonyms:\n  epoch: 0s\n  retention: 1d\n", "must be at least 1s"},
             Case{"pseudonyms:\n  epoch: 90d\n  retention: soon\n", "invalid duration"},
             Case{"pseudonyms:\n  epoch: 90d\n  retention: 1d\n  keep: 1d\n",
                  "unknown key \"keep\""},
             Case{"pseudonyms: 90d\n", "expected a mapping"},
         }) {
        PolicyLoad l = load_policy_text(with(c.section), "policy.yaml");
        EXPECT_FALSE(l.ok()) << c.section;
        const std::string all = test::all_errors(l);
        EXPECT_NE(all.find(c.message), std::string::npos) << c.section << "\n" << all;
        EXPECT_NE(all.find("pseudonyms"), std::string::npos) << all;
    }
}

}  // namespace
}  // namespace licentra::policy
