// Hostile YAML is refused quickly, with a clear, located error, before any policy rule runs.
#include <gtest/gtest.h>

#include <chrono>

#include "policy/loader.hpp"
#include "policy_test_util.hpp"

namespace licentra::policy {
namespace {

// Loads text and checks it is rejected within a second with a message containing `expect`.
void expect_rejected_quickly(const std::string& text, const std::string& expect) {
    const auto start = std::chrono::steady_clock::now();
    PolicyLoad l = load_policy_text(text, "hostile.yaml");
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(1));
    ASSERT_FALSE(l.ok());
    ASSERT_FALSE(l.diagnostics.empty());
    EXPECT_NE(test::all_errors(l).find(expect), std::string::npos) << test::all_errors(l);
    for (const auto& d : l.diagnostics) {
        EXPECT_EQ(d.file, "hostile.yaml");
        EXPECT_GE(d.line, 1);
        EXPECT_GE(d.column, 1);
    }
}

TEST(PolicyHostileYaml, AliasBombIsRejectedAtTheFirstAnchor) {
    std::string bomb =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'j'; ++c, ++prev) {
        bomb += std::string(1, c) + ": &" + c + " [";
        for (int i = 0; i < 9; ++i) bomb += std::string(i ? ",*" : "*") + prev;
        bomb += "]\n";
    }
    expect_rejected_quickly(bomb, "hostile.yaml:1:4: a: YAML anchors (&name) are not allowed");
}

TEST(PolicyHostileYaml, AnchorsAndAliasesAreRejectedEvenWhenHarmless) {
    expect_rejected_quickly(test::mutate("roles: [signer]", "roles: &r [signer]"),
                            "anchors (&name) are not allowed");
    expect_rejected_quickly("version: 1\nx: *nothing\n", "anchor");
}

TEST(PolicyHostileYaml, MergeKeysAreRejected) {
    expect_rejected_quickly("version: 1\nkeys:\n  <<: {a: 1}\n",
                            "hostile.yaml:3:3: keys.<<: YAML merge keys (<<) are not allowed");
}

TEST(PolicyHostileYaml, ATokenThatCannotStartADocumentIsASyntaxError) {
    expect_rejected_quickly(",[ a:!", "hostile.yaml:1:1: YAML syntax error: unexpected \",\"");
}

TEST(PolicyHostileYaml, DeepFlowNestingIsRejected) {
    const std::string deep =
        "version: 1\nx: " + std::string(100000, '[') + std::string(100000, ']') + "\n";
    expect_rejected_quickly(deep, "nesting deeper than 24 levels");
}

TEST(PolicyHostileYaml, DeepBlockNestingIsRejected) {
    std::string deep = "version: 1\n";
    for (int i = 0; i < 200; ++i)
        deep += std::string(static_cast<std::size_t>(i) * 2, ' ') + "a:\n";
    expect_rejected_quickly(deep, "nesting deeper than 24 levels");
}

TEST(PolicyHostileYaml, HugeScalarIsRejected) {
    expect_rejected_quickly("version: 1\nx: " + std::string(100000, 'x') + "\n",
                            "exceeds the limit of 4096");
}

TEST(PolicyHostileYaml, HugeFileIsRejectedBeforeParsing) {
    expect_rejected_quickly("version: 1\n#" + std::string(2 * 1024 * 1024, 'x') + "\n",
                            "exceeds the limit of 1048576 bytes");
}

TEST(PolicyHostileYaml, TooManyNodesAreRejected) {
    std::string many = "version: 1\nx: [";
    for (int i = 0; i < 60000; ++i) many += i ? ",1" : "1";
    many += "]\n";
    expect_rejected_quickly(many, "more than 50000 YAML nodes");
}

TEST(PolicyHostileYaml, DuplicateKeysAreAllReported) {
    std::string text = test::mutate("version: 1\n", "version: 1\nversion: 1\n");
    text = test::mutate("    issuer: x\n", "    issuer: x\n    issuer: y\n", text);
    PolicyLoad l = load_policy_text(text, "dup.yaml");
    ASSERT_FALSE(l.ok());
    const std::string errors = test::all_errors(l);
    EXPECT_NE(errors.find("dup.yaml:2:1: version: duplicate key \"version\""), std::string::npos)
        << errors;
    EXPECT_NE(errors.find("keys.other.issuer: duplicate key \"issuer\""), std::string::npos)
        << errors;
}

TEST(PolicyHostileYaml, InvalidUtf8IsRejectedWithItsPosition) {
    expect_rejected_quickly("version: 1\nx: \xff\n", "hostile.yaml:2:4: invalid UTF-8");
    expect_rejected_quickly("version: 1\nx: \xc0\xaf\n", "invalid UTF-8");          // overlong '/'
    expect_rejected_quickly("version: 1\nx: \xed\xa0\x80\n", "invalid UTF-8");      // surrogate
    expect_rejected_quickly("version: 1\nx: \xf4\x90\x80\x80\n", "invalid UTF-8");  // > U+10FFFF
    expect_rejected_quickly("version: 1\nx: \xe2\x82\n", "invalid UTF-8");          // truncated
}

TEST(PolicyHostileYaml, ControlCharactersAreRejected) {
    expect_rejected_quickly(std::string("version: 1\nx: a\0b\n", 17), "control character U+0000");
    expect_rejected_quickly("version: 1\nx: \x1b[31m\n", "control character U+001B");
}

TEST(PolicyHostileYaml, MultipleDocumentsAreRejected) {
    expect_rejected_quickly(test::kBasePolicy + "---\nversion: 1\n", "more than one YAML document");
    expect_rejected_quickly("---\nversion: 1\n...\n---\nversion: 1\n",
                            "more than one YAML document");
}

TEST(PolicyHostileYaml, ExplicitTagsAreRejected) {
    expect_rejected_quickly("version: !!int 1\n", "explicit YAML tags are not allowed");
    expect_rejected_quickly("version: !custom 1\n", "explicit YAML tags are not allowed");
}

TEST(PolicyHostileYaml, ComplexKeysAreRejected) {
    expect_rejected_quickly("? [a, b]\n: 1\n", "mapping keys must be plain strings");
}

TEST(PolicyHostileYaml, SyntaxErrorsAreLocated) {
    expect_rejected_quickly("version: 1\nroles: [signer\n", "YAML syntax error");
    expect_rejected_quickly("version: 1\n  bad: indent\n", "YAML syntax error");
}

TEST(PolicyHostileYaml, EmptyAndNonMappingDocumentsAreRejected) {
    expect_rejected_quickly("", "the file is empty");
    expect_rejected_quickly("# only a comment\n", "the file is empty");
    expect_rejected_quickly("- a\n- b\n", "expected a mapping, found a list");
    expect_rejected_quickly("just a string\n", "expected a mapping, found a scalar");
}

}  // namespace
}  // namespace licentra::policy
