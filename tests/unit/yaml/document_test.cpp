// The YAML tree both loaders read through: hostile input ends quickly with a located issue
// that names what the file holds.
#include "yaml/document.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

namespace licentra::yaml {
namespace {

// Parses text as a "configuration" and checks it is refused, fatally and within a second, with
// exactly one issue at line:column whose message contains `expect`.
void expect_refused(std::string_view text, int line, int column, std::string_view expect) {
    const auto start = std::chrono::steady_clock::now();
    const Document doc = parse(text, Options{"configuration", kMaxFileBytes});
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << text;
    EXPECT_TRUE(doc.fatal) << text;
    ASSERT_EQ(doc.issues.size(), 1u) << text;
    EXPECT_EQ(doc.issues[0].line, line) << text << ": " << doc.issues[0].message;
    EXPECT_EQ(doc.issues[0].column, column) << text << ": " << doc.issues[0].message;
    EXPECT_NE(doc.issues[0].message.find(expect), std::string::npos) << doc.issues[0].message;
}

TEST(YamlDocument, BuildsALocatedTreeOfPlainAndQuotedScalars) {
    const Document doc = parse("a:\n  b: [1, \"2\"]\n  c: ~\n");
    ASSERT_FALSE(doc.fatal);
    EXPECT_TRUE(doc.issues.empty());
    ASSERT_NE(doc.root, nullptr);
    ASSERT_TRUE(doc.root->is_map());
    const Node* a = doc.root->pairs.at(0).second;
    const Node* b = a->pairs.at(0).second;
    ASSERT_TRUE(b->is_seq());
    EXPECT_EQ(b->items.at(1)->path(), "a.b[1]");
    EXPECT_TRUE(b->items.at(0)->plain);
    EXPECT_FALSE(b->items.at(1)->plain);
    EXPECT_EQ(b->items.at(1)->line, 2);
    EXPECT_EQ(b->items.at(1)->column, 10);
    EXPECT_TRUE(a->pairs.at(1).second->is_null());
}

// YAML::LoadAll looped forever on these bytes: yaml-cpp reports a token that cannot start a
// node as an empty document, then starts the next document at the same token.
TEST(YamlDocument, ATokenThatCannotStartADocumentIsASyntaxErrorNotAnEndlessStream) {
    expect_refused(",[ a:!", 1, 1, "YAML syntax error: unexpected \",\"");
    expect_refused("]", 1, 1, "YAML syntax error");
    expect_refused("a: 1\n}\n", 2, 1, "YAML syntax error");
    // Real second documents are still reported as such.
    expect_refused("a: 1\n---\nb: 2\n", 2, 1, "more than one YAML document; a configuration is");
}

TEST(YamlDocument, AnchorsAliasesAndMergeKeysAreRefusedWithTheirPosition) {
    expect_refused("a:\n  b: &x 1\n", 2, 6,
                   "YAML anchors (&name) are not allowed in a configuration");
    expect_refused("a:\n  b: *x\n", 2, 6,
                   "YAML aliases (*name) are not allowed in a configuration");
    expect_refused("a:\n  <<: {b: 1}\n", 2, 3,
                   "YAML merge keys (<<) are not allowed in a configuration");
    const Document quoted = parse("a:\n  \"<<\": 1\n");
    EXPECT_FALSE(quoted.fatal);  // a quoted "<<" is an ordinary key
}

TEST(YamlDocument, TheSizeLimitIsTheCallers) {
    const Document doc = parse(std::string(101, '#'), Options{"configuration", 100});
    EXPECT_TRUE(doc.fatal);
    ASSERT_EQ(doc.issues.size(), 1u);
    EXPECT_EQ(doc.issues[0].message, "file of 101 bytes exceeds the limit of 100 bytes");
    EXPECT_FALSE(parse("a: 1\n", Options{"configuration", 5}).fatal);
}

}  // namespace
}  // namespace licentra::yaml
