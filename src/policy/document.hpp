// Stage 1 of loading a policy: the YAML tree read into plain structs (loader.hpp runs all three
// stages: parse_policy, validate, compile).
//
// parse_policy reports what a single value shows to be wrong: YAML problems, unknown keys,
// missing keys, wrong types, malformed names, durations and numbers out of range. It keeps only
// the values that passed these checks, each with the location validate() reports against.
// Whatever needs another part of the policy (references, claim list conflicts, separation of
// duties, quorums) is left to validate(). Nothing throws but allocation.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.hpp"
#include "policy/model.hpp"

namespace licentra::policy {

struct Location {
    int line = 0;      // 1-based
    int column = 0;    // 1-based
    std::string path;  // key path, as in Diagnostic
};

template <class T>
struct Located {
    T value{};
    Location at;
};
using Name = Located<std::string>;

struct ValueRuleDoc {
    Name claim;  // located at the rule's key
    ValueRule rule;
    // The rule body's own errors. validate() reports them only when the claim is declared: a
    // rule for an undeclared claim is one error, whatever its body holds.
    std::vector<Diagnostic> problems;
};

struct ClaimsDoc {  // valid, distinct claim names in file order; nothing checked across lists
    std::vector<Name> forbidden;
    std::vector<Name> required;
    std::vector<Name> allowed;
    std::vector<Name> pseudonymize;
    std::vector<ValueRuleDoc> rules;
};

struct RotationDoc {
    std::optional<Seconds> period;
    std::optional<Located<Seconds>> publish_ahead;
    std::optional<Located<Seconds>> verify_grace;
    std::optional<Located<bool>> requires_approval;
};

struct ApprovalDoc {
    ApprovalRule rule;                  // defaults where a field is absent or invalid
    std::optional<Location> quorum_at;  // the quorum was written (even if invalid)
};

struct KeyDoc {
    Name name;    // located at the key's name
    Location at;  // the key's mapping
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
    std::string issuer;
    std::optional<Seconds> max_validity;  // none: missing or invalid
    ClaimsDoc claims;
    RotationDoc rotation;
    std::array<ApprovalDoc, 3> approvals{};  // indexed by Operation
    bool allow_forced_destroy = false;
};

struct GrantDoc {
    std::vector<Action> actions;
    std::vector<Name> keys;   // valid, distinct key names or patterns, not yet resolved
    bool well_formed = true;  // parsing reported no error inside the grant
};

struct RoleDoc {
    Name name;  // located at the role's name
    std::vector<GrantDoc> grants;
};

struct ExclusivePair {
    Location at;  // the pair
    std::array<Name, 2> roles;
};

struct IdentityDoc {
    IdentitySpec spec;
    std::string canonical;  // one string per distinct identity, to find duplicates
    Location at;
};

struct PrincipalDoc {
    std::optional<Name> name;  // none: missing, invalid or reserved (reported)
    std::optional<IdentityDoc> identity;
    std::optional<Location> roles_at;  // the roles key was given
    std::vector<Name> roles;           // valid, distinct role names, not yet resolved
    std::optional<Location> rate_limit_at;
    std::optional<RateLimit> signing_rate_limit;
};

struct PolicyDocument {
    std::string file;  // the label diagnostics name
    int version = 0;
    std::vector<Name> forbidden_claims;  // the policy's own, without the built-in ones
    std::optional<PseudonymRules> pseudonyms;
    std::vector<KeyDoc> keys;  // file order
    std::vector<RoleDoc> roles;
    std::vector<ExclusivePair> exclusive_roles;
    std::vector<PrincipalDoc> principals;
    // False when parsing reported an error: a value was dropped or defaulted, so the checks
    // over the whole policy (quorums) would only report consequences of that error.
    bool complete = true;
};

struct ParsedPolicy {
    std::optional<PolicyDocument> document;  // none when the YAML could not be read
    std::vector<Diagnostic> diagnostics;     // YAML problems first, then the policy's
};

// Reads policy text under the bounds of yaml/document.hpp; file_label names the source in
// diagnostics. Thread-safe.
[[nodiscard]] ParsedPolicy parse_policy(std::string_view text, std::string_view file_label);

}  // namespace licentra::policy
