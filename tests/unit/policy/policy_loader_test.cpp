#include <gtest/gtest.h>

#include <filesystem>

#include "policy/duration.hpp"
#include "policy/loader.hpp"
#include "policy_test_util.hpp"
#include "support/test_support.hpp"

namespace licentra::policy {
namespace {

using test::kBasePolicy;
using test::mutate;

TEST(PolicyLoader, AcceptsTheBasePolicy) {
    auto e = test::load_ok(kBasePolicy);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->version(), 1);
    EXPECT_EQ(e->principals().size(), 5u);
    EXPECT_EQ(e->keys().size(), 2u);
    const KeyRules* k = e->key_rules("product-a");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->algorithm, crypto::Algorithm::EdDSA);
    EXPECT_EQ(k->max_validity, std::chrono::hours(24 * 30));
    EXPECT_EQ(k->approval(Operation::rotate).quorum, 2u);
    EXPECT_EQ(k->approval(Operation::rotate).lifetime, std::chrono::hours(1));
    EXPECT_EQ(k->approval(Operation::destroy).quorum, 2u);  // default
    EXPECT_EQ(k->claims.pseudonymize, std::vector<std::string>{"sub"});
    // Defaults: verify_grace = max_validity, algorithm EdDSA.
    const KeyRules* o = e->key_rules("other");
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->rotation.verify_grace, std::chrono::hours(24));
    EXPECT_FALSE(o->rotation.period.has_value());
    // Built-in forbidden claims are always present.
    EXPECT_TRUE(std::binary_search(o->claims.forbidden.begin(), o->claims.forbidden.end(),
                                   std::string("email")));
}

TEST(PolicyLoader, ExamplePolicyLoads) {
    PolicyLoad l =
        load_policy_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy/policy.example.yaml");
    ASSERT_TRUE(l.ok()) << test::all_errors(l);
    EXPECT_EQ(l.engine->principals().size(), 5u);
    EXPECT_EQ(l.engine->keys().size(), 2u);
    EXPECT_EQ(l.engine->key_rules("product-b")->algorithm, crypto::Algorithm::ES256);
}

TEST(PolicyLoader, Sha256IsTheDigestOfTheFileBytes) {
    auto a = test::load_ok(kBasePolicy);
    auto b = test::load_ok(kBasePolicy + "# comment\n");
    ASSERT_TRUE(a && b);
    EXPECT_NE(a->sha256(), b->sha256());
    EXPECT_EQ(a->sha256_hex().size(), 64u);
}

struct BadCase {
    const char* name;
    std::string from;
    std::string to;
    std::string expect_message;  // substring of some diagnostic's message
    std::string expect_path;     // that diagnostic's path (exact), or "*" for any
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class PolicyRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(PolicyRejects, WithALocatedError) {
    const BadCase& c = GetParam();
    PolicyLoad l = load_policy_text(mutate(c.from, c.to), "policy.yaml");
    ASSERT_FALSE(l.ok()) << c.name;
    ASSERT_FALSE(l.diagnostics.empty());
    bool found = false;
    for (const Diagnostic& d : l.diagnostics) {
        EXPECT_EQ(d.file, "policy.yaml");
        EXPECT_GE(d.line, 1);
        EXPECT_GE(d.column, 1);
        if (d.message.find(c.expect_message) != std::string::npos &&
            (c.expect_path == "*" || d.path == c.expect_path)) {
            found = true;
        }
    }
    EXPECT_TRUE(found) << c.name << ": expected \"" << c.expect_message << "\" at " << c.expect_path
                       << ", got:\n"
                       << test::all_errors(l);
}

const BadCase kBadCases[] = {
    {"version_unsupported", "version: 1", "version: 2", "unsupported policy version", "version"},
    {"version_quoted", "version: 1", "version: \"1\"", "expected an integer", "version"},
    {"version_missing", "version: 1\n", "", "missing required key \"version\"", "version"},
    {"unknown_top_level_key", "version: 1\n", "version: 1\ncolour: blue\n",
     "unknown key \"colour\"", "colour"},
    {"unknown_action", "[audit.read]", "[audit.reed]", "unknown action \"audit.reed\"",
     "roles.auditor[0].actions[0]"},
    {"execute_not_grantable", "[audit.read]", "[audit.read, key.lifecycle.execute]", "reserved",
     "roles.auditor[0].actions[1]"},
    {"duplicate_action", "[audit.read]", "[audit.read, audit.read]", "duplicate action",
     "roles.auditor[0].actions[1]"},
    {"keyed_action_without_keys", "- actions: [jwks.read]", "- actions: [jwks.read, keys.read]",
     "key-scoped actions need", "roles.signer[1].keys"},
    {"global_action_with_keys", "- actions: [keys.read]\n      keys: [\"*\"]",
     "- actions: [keys.read, jwks.read]\n      keys: [\"*\"]", "not scoped to keys",
     "roles.reader[0].keys"},
    {"pattern_matches_nothing", "[\"product-*\"]", "[\"prod-*\"]", "matches no declared key",
     "roles.signer[0].keys[0]"},
    {"unknown_key_name_in_grant", "[\"product-*\"]", "[\"product-z\"]", "unknown key \"product-z\"",
     "roles.signer[0].keys[0]"},
    {"invalid_key_pattern", "[\"product-*\"]", "[\"Product/*\"]", "invalid key name or pattern",
     "roles.signer[0].keys[0]"},
    {"role_combines_sign_and_manage", "request.approve, request.reject]",
     "request.approve, request.reject, token.sign]", "combines signing", "roles.officer"},
    {"role_combines_manage_and_audit", "      keys: [\"*\"]\n  auditor:",
     "      keys: [\"*\"]\n    - actions: [audit.read]\n  auditor:", "auditing", "roles.officer"},
    {"role_without_grants", "  reader:\n    - actions: [keys.read]\n      keys: [\"*\"]\n",
     "  reader: []\n", "non-empty list of grants", "roles.reader"},
    {"unknown_grant_field", "- actions: [audit.read]",
     "- actions: [audit.read]\n      when: always", "unknown key \"when\"",
     "roles.auditor[0].when"},
    {"unknown_role", "roles: [signer]", "roles: [sigher]", "unknown role \"sigher\"",
     "principals[0].roles[0]"},
    {"roles_not_a_list", "roles: [signer]", "roles: signer", "expected a list",
     "principals[0].roles"},
    {"principal_without_roles", "roles: [signer]", "roles: []", "at least one role",
     "principals[0].roles"},
    {"default_exclusive_pair", "roles: [auditor]", "roles: [auditor, officer]",
     "roles \"officer\" and \"auditor\" are exclusive", "principals[4].roles"},
    {"duty_conflict_across_roles", "roles: [auditor]", "roles: [auditor, signer]",
     "signing (token.sign) and auditing", "principals[4].roles"},
    {"declared_exclusive_pair", "roles: [auditor]",
     "roles: [auditor, reader]\nexclusive_roles: [[auditor, reader]]",
     "roles \"auditor\" and \"reader\" are exclusive", "principals[4].roles"},
    {"exclusive_unknown_role", "version: 1\n", "version: 1\nexclusive_roles: [[auditor, nobody]]\n",
     "unknown role \"nobody\"", "exclusive_roles[0][1]"},
    {"exclusive_not_a_pair", "version: 1\n", "version: 1\nexclusive_roles: [[auditor]]\n",
     "pair of role names", "exclusive_roles[0]"},
    {"exclusive_with_itself", "version: 1\n", "version: 1\nexclusive_roles: [[auditor, auditor]]\n",
     "exclusive with itself", "exclusive_roles[0]"},
    {"duplicate_principal", "- name: off-b", "- name: off-a", "duplicate principal name",
     "principals[2].name"},
    {"reserved_system_principal", "- name: aud", "- name: system", "reserved",
     "principals[4].name"},
    {"invalid_principal_name", "- name: aud", "- name: Aud Itor", "invalid principal name",
     "principals[4].name"},
    {"principal_unknown_field", "- name: aud", "- name: aud\n    email: a@b",
     "unknown key \"email\"", "principals[4].email"},
    {"identity_two_forms", "{subject_cn: ls, issuer: \"CN=Licentra Dev CA\"}",
     "{subject_cn: ls, issuer: \"CN=Licentra Dev CA\", san_dns: ls.example}", "exactly one form",
     "principals[0].identity"},
    {"identity_missing", "    identity: {subject_cn: aud, issuer: \"CN=Licentra Dev CA\"}\n", "",
     "missing required key \"identity\"", "principals[4].identity"},
    {"identity_cn_without_issuer", "{subject_cn: aud, issuer: \"CN=Licentra Dev CA\"}",
     "{subject_cn: aud}", "subject_cn and issuer must be given together", "principals[4].identity"},
    {"identity_issuer_not_dn", "{subject_cn: aud, issuer: \"CN=Licentra Dev CA\"}",
     "{subject_cn: aud, issuer: \"Licentra Dev CA\"}", "RFC 2253", "principals[4].identity.issuer"},
    {"identity_bad_spki", "{spki_sha256: aaaa", "{spki_sha256: zzzz", "64 hex digits",
     "principals[1].identity.spki_sha256"},
    {"identity_relative_uri", "spiffe://example.org/off-b", "off-b", "absolute URI",
     "principals[2].identity.san_uri"},
    {"duplicate_identity", "{san_dns: off-c.example.org}",
     "{san_uri: \"spiffe://example.org/off-b\"}", "same identity as principal \"off-b\"",
     "principals[3].identity"},
    {"rate_limit_on_non_signer", "roles: [auditor]",
     "roles: [auditor]\n    signing_rate_limit: {per_second: 1, burst: 1}", "cannot sign",
     "principals[4].signing_rate_limit"},
    {"rate_limit_zero", "per_second: 10", "per_second: 0", "greater than 0",
     "principals[0].signing_rate_limit.per_second"},
    {"rate_limit_not_a_number", "per_second: 10", "per_second: ten", "positive number",
     "principals[0].signing_rate_limit.per_second"},
    {"rate_limit_missing_burst", ", burst: 2}", "}", "missing required key \"burst\"",
     "principals[0].signing_rate_limit.burst"},
    {"principals_not_a_list", "principals:\n  - name: ls", "principals: {}\nunused:\n  - name: ls",
     "expected a list of principals", "principals"},
    {"invalid_key_name", "  other:", "  Other:", "invalid key name", "keys.Other"},
    {"unknown_algorithm", "algorithm: EdDSA", "algorithm: RS256", "unknown algorithm",
     "keys.product-a.algorithm"},
    {"issuer_missing", "    issuer: x\n", "", "missing required key \"issuer\"",
     "keys.other.issuer"},
    {"issuer_empty", "    issuer: x\n", "    issuer: \"\"\n", "must not be empty",
     "keys.other.issuer"},
    {"max_validity_missing", "    max_validity: 1d\n", "", "missing required key \"max_validity\"",
     "keys.other.max_validity"},
    {"max_validity_bad_syntax", "max_validity: 1d", "max_validity: 1 day", "invalid duration",
     "keys.other.max_validity"},
    {"max_validity_fraction", "max_validity: 1d", "max_validity: 1.5d", "invalid duration",
     "keys.other.max_validity"},
    {"max_validity_too_short", "max_validity: 1d", "max_validity: 30s", "at least 1m",
     "keys.other.max_validity"},
    {"unknown_key_field", "    max_validity: 1d\n", "    max_validity: 1d\n    colour: red\n",
     "unknown key \"colour\"", "keys.other.colour"},
    {"required_daemon_claim", "required: [sub]", "required: [sub, iss]", "set by the signer",
     "keys.product-a.claims.required[1]"},
    {"allowed_daemon_claim", "allowed: [seats,", "allowed: [jti, seats,", "set by the signer",
     "keys.product-a.claims.allowed[0]"},
    {"builtin_exp_listed", "required: [sub]", "required: [sub, exp]", "built in",
     "keys.product-a.claims.required[1]"},
    {"allowed_forbidden_claim", "allowed: [seats,", "allowed: [Email, seats,", "forbidden claim",
     "keys.product-a.claims.allowed[0]"},
    {"required_and_allowed", "allowed: [seats,", "allowed: [sub, seats,",
     "both as required and as allowed", "keys.product-a.claims.allowed[0]"},
    {"duplicate_claim", "allowed: [seats,", "allowed: [seats, seats,", "duplicate claim name",
     "keys.product-a.claims.allowed[1]"},
    {"invalid_claim_name", "allowed: [seats,", "allowed: [\"se ats\", seats,", "invalid claim name",
     "keys.product-a.claims.allowed[0]"},
    {"pseudonymize_undeclared", "pseudonymize: [sub]", "pseudonymize: [sub, zip]",
     "neither a required nor an allowed claim", "keys.product-a.claims.pseudonymize[1]"},
    {"rule_for_undeclared_claim", "        trial: {type: boolean}",
     "        trial: {type: boolean}\n        zip: {type: string}", "rule for \"zip\"",
     "keys.product-a.claims.rules.zip"},
    {"rule_unknown_type", "trial: {type: boolean}", "trial: {type: bool}", "unknown type",
     "keys.product-a.claims.rules.trial.type"},
    {"rule_missing_type", "trial: {type: boolean}", "trial: {max: 1}",
     "missing required key \"type\"", "keys.product-a.claims.rules.trial.type"},
    {"rule_field_not_applicable", "trial: {type: boolean}", "trial: {type: boolean, min: 1}",
     "does not apply to type boolean", "keys.product-a.claims.rules.trial.min"},
    {"rule_length_on_integer", "seats: {type: integer, min: 1, max: 10}",
     "seats: {type: integer, max_length: 3}", "does not apply to type integer",
     "keys.product-a.claims.rules.seats.max_length"},
    {"rule_min_above_max", "min: 1, max: 10", "min: 11, max: 10", "min is greater than max",
     "keys.product-a.claims.rules.seats.min"},
    {"rule_min_length_above_max_length", "min_length: 2, max_length: 8",
     "min_length: 9, max_length: 8", "min_length is greater than max_length",
     "keys.product-a.claims.rules.sub.min_length"},
    {"rule_empty_one_of", "one_of: [basic, pro]", "one_of: []", "non-empty list",
     "keys.product-a.claims.rules.tier.one_of"},
    {"global_forbidden_conflicts", "version: 1\n", "version: 1\nforbidden_claims: [seats]\n",
     "forbidden claim", "keys.product-a.claims.allowed[0]"},
    {"key_forbidden_conflicts", "      pseudonymize: [sub]",
     "      pseudonymize: [sub]\n      forbidden: [tier]", "forbidden claim",
     "keys.product-a.claims.allowed[1]"},
    {"publish_ahead_not_shorter_than_period", "publish_ahead: 7d", "publish_ahead: 90d",
     "shorter than the rotation period", "keys.product-a.rotation.publish_ahead"},
    {"verify_grace_shorter_than_validity", "verify_grace: 30d", "verify_grace: 29d",
     "tokens would outlive their verification key", "keys.product-a.rotation.verify_grace"},
    {"requires_approval_without_period", "    max_validity: 1d\n",
     "    max_validity: 1d\n    rotation: {requires_approval: true}\n", "set a period",
     "keys.other.rotation.requires_approval"},
    {"requires_approval_not_boolean", "verify_grace: 30d}",
     "verify_grace: 30d, requires_approval: yes}", "expected true or false",
     "keys.product-a.rotation.requires_approval"},
    {"rotation_period_too_short", "period: 90d", "period: 5s", "at least 10s",
     "keys.product-a.rotation.period"},
    {"quorum_larger_than_approvers", "quorum: 2", "quorum: 4", "larger than the 3 principal(s)",
     "keys.product-a.approvals.rotate.quorum"},
    {"quorum_unreachable_without_requester", "quorum: 2", "quorum: 3", "cannot be reached when",
     "keys.product-a.approvals.rotate.quorum"},
    {"quorum_not_integer", "quorum: 2", "quorum: two", "expected an integer",
     "keys.product-a.approvals.rotate.quorum"},
    {"approval_lifetime_too_long", "lifetime: 1h", "lifetime: 31d", "longer than 30d",
     "keys.product-a.approvals.rotate.lifetime"},
    {"unknown_operation", "      rotate: {quorum", "      rotaet: {quorum",
     "unknown key \"rotaet\"", "keys.product-a.approvals.rotaet"},
    {"keys_not_a_mapping",
     "keys:\n  product-a:", "keys: []\nx:\n  product-a:", "expected a mapping", "keys"},
};

INSTANTIATE_TEST_SUITE_P(EveryRule, PolicyRejects, ::testing::ValuesIn(kBadCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(PolicyLoader, DefaultQuorumThatCannotBeReachedIsAnError) {
    // Only two officers: the default destroy quorum (2) cannot be met when one of them asks.
    const std::string text = mutate(
        "  - name: off-c\n    identity: {san_dns: off-c.example.org}\n    roles: [officer]\n", "");
    PolicyLoad l = load_policy_text(text, "p.yaml");
    ASSERT_FALSE(l.ok());
    EXPECT_NE(test::all_errors(l).find("quorum 2 for retire on key \"other\""), std::string::npos)
        << test::all_errors(l);
}

TEST(PolicyLoader, ReportsEveryErrorWithFileLineColumnAndPath) {
    std::string text = mutate("roles: [signer]", "roles: [sigher]");
    text = mutate("algorithm: EdDSA", "algorithm: RS256", text);
    text = mutate("max_validity: 1d", "max_validity: forever", text);
    text = mutate("version: 1\n", "version: 1\ncolour: blue\n", text);
    PolicyLoad l = load_policy_text(text, "policy.yaml");
    ASSERT_FALSE(l.ok());
    ASSERT_EQ(l.diagnostics.size(), 4u) << test::all_errors(l);
    // Ordered by position in the file.
    EXPECT_EQ(l.diagnostics[0].to_string(),
              "policy.yaml:2:1: colour: unknown key \"colour\" (expected one of: version, "
              "forbidden_claims, exclusive_roles, roles, principals, keys, pseudonyms)");
    EXPECT_EQ(l.diagnostics[1].path, "principals[0].roles[0]");
    EXPECT_EQ(l.diagnostics[1].line, 19);
    EXPECT_EQ(l.diagnostics[1].column, 13);
    EXPECT_EQ(l.diagnostics[1].message, "unknown role \"sigher\"");
    EXPECT_EQ(l.diagnostics[2].path, "keys.product-a.algorithm");
    EXPECT_EQ(l.diagnostics[3].path, "keys.other.max_validity");
    const core::Error e = l.error();
    EXPECT_EQ(e.kind, core::ErrorKind::usage);
    EXPECT_EQ(e.code, "policy.invalid");
    EXPECT_NE(e.message.find("policy.yaml:19:13: principals[0].roles[0]: unknown role \"sigher\""),
              std::string::npos);
}

TEST(PolicyLoader, MissingFileIsAnError) {
    PolicyLoad l = load_policy_file("/nonexistent/policy.yaml");
    ASSERT_FALSE(l.ok());
    ASSERT_EQ(l.diagnostics.size(), 1u);
    EXPECT_NE(l.diagnostics[0].message.find("cannot read"), std::string::npos);
}

TEST(PolicyLoader, OversizedFileIsRejectedBeforeReading) {
    licentra::test::TempDir dir;
    const auto path = dir.path() / "big.yaml";
    licentra::test::write_file(path, "version: 1\n# " + std::string(2 * 1024 * 1024, 'x') + "\n");
    PolicyLoad l = load_policy_file(path);
    ASSERT_FALSE(l.ok());
    EXPECT_NE(l.diagnostics.at(0).message.find("exceeds the limit"), std::string::npos);
}

TEST(PolicyDuration, ParsesTheDocumentedSyntax) {
    EXPECT_EQ(parse_duration("90d"), std::chrono::seconds(90 * 86400));
    EXPECT_EQ(parse_duration("12h"), std::chrono::seconds(12 * 3600));
    EXPECT_EQ(parse_duration("30m"), std::chrono::seconds(1800));
    EXPECT_EQ(parse_duration("45s"), std::chrono::seconds(45));
    EXPECT_EQ(parse_duration("0s"), std::chrono::seconds(0));
    EXPECT_EQ(parse_duration("36500d"), std::chrono::seconds(36500LL * 86400));
    for (const char* bad : {"", "d", "1", "1w", "-1d", "1.5h", "01d", " 1d", "1d ", "1h30m",
                            "36501d", "99999999999s"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    }
    EXPECT_EQ(format_duration(std::chrono::seconds(86400)), "1d");
    EXPECT_EQ(format_duration(std::chrono::seconds(90)), "90s");
    EXPECT_EQ(format_duration(std::chrono::seconds(7200)), "2h");
    EXPECT_EQ(format_duration(std::chrono::seconds(0)), "0s");
}

}  // namespace
}  // namespace licentra::policy
