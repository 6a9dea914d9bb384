// The loader's stages on their own: parse_policy leaves the checks across the policy to
// validate(), which reports all of them at once.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "policy/document.hpp"
#include "policy/validate.hpp"
#include "policy_test_util.hpp"

namespace licentra::policy {
namespace {

using test::kBasePolicy;
using test::mutate;

std::vector<std::string> located(const std::vector<Diagnostic>& diagnostics) {
    std::vector<std::string> out;
    for (const Diagnostic& d : diagnostics) out.push_back(d.to_string());
    return out;
}

PolicyDocument parse_clean(const std::string& text) {
    ParsedPolicy parsed = parse_policy(text, "p.yaml");
    EXPECT_TRUE(parsed.diagnostics.empty()) << located(parsed.diagnostics).front();
    EXPECT_TRUE(parsed.document.has_value());
    return parsed.document ? std::move(*parsed.document) : PolicyDocument{};
}

TEST(PolicyValidate, ReportsEveryCrossReferenceErrorInCheckOrder) {
    std::string text = mutate("roles: [signer]", "roles: [sigher]");
    text = mutate("allowed: [seats,", "allowed: [email, seats,", text);
    text = mutate("[\"product-*\"]", "[\"prod-*\"]", text);
    text = mutate("- name: off-b", "- name: off-a", text);
    const PolicyDocument doc = parse_clean(text);
    ASSERT_TRUE(doc.complete);

    const Validation v = validate(doc);
    EXPECT_FALSE(v.policy.has_value());
    // Keys, then roles, then principals: the order validate() checks the sections in.
    EXPECT_EQ(located(v.diagnostics),
              (std::vector<std::string>{
                  "p.yaml:39:17: keys.product-a.claims.allowed[0]: \"email\" is a forbidden "
                  "claim (personal data)",
                  "p.yaml:5:14: roles.signer[0].keys[0]: pattern \"prod-*\" matches no declared "
                  "key",
                  "p.yaml:18:13: principals[0].roles[0]: unknown role \"sigher\"",
                  "p.yaml:23:11: principals[2].name: duplicate principal name \"off-a\"",
              }));
}

TEST(PolicyValidate, ChecksQuorumsOnlyWhenEverythingElseIsValid) {
    const std::string text = mutate("quorum: 2", "quorum: 4");
    EXPECT_EQ(located(validate(parse_clean(text)).diagnostics),
              std::vector<std::string>{
                  "p.yaml:49:24: keys.product-a.approvals.rotate.quorum: quorum 4 for rotate on "
                  "key \"product-a\" is larger than the 3 principal(s) that may approve it"});
    // With another error the approvers are not known for sure; only that error is reported.
    const Validation v = validate(parse_clean(mutate("roles: [signer]", "roles: [sigher]", text)));
    EXPECT_EQ(
        located(v.diagnostics),
        std::vector<std::string>{"p.yaml:18:13: principals[0].roles[0]: unknown role \"sigher\""});
}

TEST(PolicyValidate, ChecksADocumentBuiltWithoutYaml) {
    PolicyDocument doc;
    doc.file = "built.yaml";
    doc.version = 1;
    KeyDoc key;
    key.name = Name{"license", Location{2, 3, "keys.license"}};
    key.issuer = "https://lic.example";
    key.max_validity = Seconds(3600);
    key.rotation.verify_grace = Located<Seconds>{Seconds(60), Location{3, 5, "keys.license.g"}};
    doc.keys.push_back(key);
    RoleDoc role;
    role.name = Name{"signer", Location{5, 3, "roles.signer"}};
    GrantDoc grant;
    grant.actions.push_back(Action::token_sign);
    grant.keys.push_back(Name{"other", Location{6, 7, "k"}});
    role.grants.push_back(grant);
    doc.roles.push_back(role);
    PrincipalDoc p;
    p.name = Name{"ls", Location{8, 5, "principals[0].name"}};
    p.roles_at = Location{9, 5, "principals[0].roles"};
    p.roles.push_back(Name{"reader", Location{9, 12, "principals[0].roles[0]"}});
    doc.principals.push_back(p);

    EXPECT_EQ(located(validate(doc).diagnostics),
              (std::vector<std::string>{
                  "built.yaml:3:5: keys.license.g: verify_grace (1m) is shorter than "
                  "max_validity (1h): tokens would outlive their verification key",
                  "built.yaml:6:7: k: unknown key \"other\"",
                  "built.yaml:9:12: principals[0].roles[0]: unknown role \"reader\"",
              }));
}

TEST(PolicyValidate, AValidDocumentYieldsTheModelSortedByName) {
    const Validation v = validate(parse_clean(kBasePolicy));
    EXPECT_TRUE(v.diagnostics.empty());
    ASSERT_TRUE(v.policy.has_value());
    ASSERT_EQ(v.policy->keys.size(), 2u);
    EXPECT_EQ(v.policy->keys[0].name, "other");
    EXPECT_EQ(v.policy->principals.front().name, "aud");
    EXPECT_EQ(v.policy->roles.front().name, "auditor");
}

}  // namespace
}  // namespace licentra::policy
