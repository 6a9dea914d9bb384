#include "token/strict_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace licentra::token {
namespace {

TEST(StrictJson, AcceptsRfc8259TextWithUniqueNames) {
    auto p = parse_strict_json(R"({"a":1,"b":{"a":2,"c":[{"a":3}]}})", 8);
    ASSERT_EQ(p.problem, JsonProblem::none) << p.detail;
    EXPECT_EQ(p.value["b"]["c"][0]["a"], 3);
}

TEST(StrictJson, DuplicateNamesAreRefusedAtAnyDepthAndNamedButNotTheirValues) {
    for (const char* text :
         {R"({"a":1,"a":2})", R"({"x":{"sub":"v1","sub":"v2"}})", R"([{"k":1},{"k":2,"k":3}])"}) {
        auto p = parse_strict_json(text, 8);
        EXPECT_EQ(p.problem, JsonProblem::duplicate) << text;
        EXPECT_EQ(p.detail.find("v1"), std::string::npos) << p.detail;
        EXPECT_TRUE(p.value.is_null());
    }
    // The same name in sibling objects is not a duplicate.
    EXPECT_EQ(parse_strict_json(R"([{"k":1},{"k":2}])", 8).problem, JsonProblem::none);
}

TEST(StrictJson, NestingPastTheBoundAByteOrderMarkAndBadSyntaxAreRefused) {
    EXPECT_EQ(parse_strict_json("[[[1]]]", 3).problem, JsonProblem::none);
    EXPECT_EQ(parse_strict_json("[[[[1]]]]", 3).problem, JsonProblem::too_deep);
    EXPECT_EQ(parse_strict_json("\xEF\xBB\xBF{}", 8).problem, JsonProblem::syntax);
    for (const char* bad : {"", "{", "{'a':1}", "{\"a\":1,}", "[1] [2]", "\"\xC3\x28\""}) {
        EXPECT_EQ(parse_strict_json(bad, 8).problem, JsonProblem::syntax) << bad;
    }
}

}  // namespace
}  // namespace licentra::token
