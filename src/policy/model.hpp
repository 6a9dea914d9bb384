// The policy model: plain data the loader fills in and validates, and the engine consults.
// Every value here has already passed validation when an Engine holds it. See docs/policy.md
// for the YAML form of each field.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/grant.hpp"
#include "crypto/algorithm.hpp"

namespace licentra::policy {

using Seconds = std::chrono::seconds;

// The actions a role can grant. Names match core::action tags and the policy's strings.
enum class Action : std::uint8_t {
    token_sign,
    keys_read,
    jwks_read,
    key_rotate_request,
    key_retire_request,
    key_destroy_request,
    request_approve,
    request_reject,
    audit_read,
};
inline constexpr std::size_t kActionCount = 9;
inline constexpr std::array<Action, kActionCount> kAllActions = {
    Action::token_sign,         Action::keys_read,          Action::jwks_read,
    Action::key_rotate_request, Action::key_retire_request, Action::key_destroy_request,
    Action::request_approve,    Action::request_reject,     Action::audit_read,
};

[[nodiscard]] std::string_view action_name(Action a) noexcept;
[[nodiscard]] std::optional<Action> action_from_name(std::string_view name) noexcept;
// Key-scoped actions are granted per key name (glob); jwks.read and audit.read are global.
[[nodiscard]] bool action_is_key_scoped(Action a) noexcept;

// Maps a core::action tag to the policy action. KeyLifecycleExecute is deliberately absent: no
// role can grant it; only Engine::system_grant and Engine::execution_grant mint it.
template <class Tag>
constexpr Action action_for() noexcept {
    namespace ca = core::action;
    if constexpr (std::is_same_v<Tag, ca::TokenSign>)
        return Action::token_sign;
    else if constexpr (std::is_same_v<Tag, ca::KeysRead>)
        return Action::keys_read;
    else if constexpr (std::is_same_v<Tag, ca::JwksRead>)
        return Action::jwks_read;
    else if constexpr (std::is_same_v<Tag, ca::KeyRotateRequest>)
        return Action::key_rotate_request;
    else if constexpr (std::is_same_v<Tag, ca::KeyRetireRequest>)
        return Action::key_retire_request;
    else if constexpr (std::is_same_v<Tag, ca::KeyDestroyRequest>)
        return Action::key_destroy_request;
    else if constexpr (std::is_same_v<Tag, ca::RequestApprove>)
        return Action::request_approve;
    else if constexpr (std::is_same_v<Tag, ca::RequestReject>)
        return Action::request_reject;
    else if constexpr (std::is_same_v<Tag, ca::AuditRead>)
        return Action::audit_read;
    else
        static_assert(sizeof(Tag) == 0, "this action cannot be granted by a role");
}

// Key lifecycle operations that go through dual control.
enum class Operation : std::uint8_t { rotate, retire, destroy };
inline constexpr std::array<Operation, 3> kAllOperations = {Operation::rotate, Operation::retire,
                                                            Operation::destroy};
[[nodiscard]] std::string_view operation_name(Operation op) noexcept;
[[nodiscard]] std::optional<Operation> operation_from_name(std::string_view name) noexcept;
// The action a principal needs to open a request for op (key.<op>.request).
[[nodiscard]] Action request_action(Operation op) noexcept;

// How a principal is recognised from its verified client certificate. Exactly one form.
struct IdentitySpec {
    enum class Kind : std::uint8_t { spki_sha256, san_uri, san_dns, subject_cn_issuer };
    Kind kind = Kind::spki_sha256;
    std::array<std::uint8_t, 32> spki_sha256{};  // kind == spki_sha256
    std::string value;                           // san_uri, san_dns, or the subject CN
    std::string issuer;  // subject_cn_issuer: issuer DN in RFC 2253 form, compared exactly
};

// Token bucket: `per_second` tokens refill per second, at most `burst` stored.
struct RateLimit {
    double per_second = 0;
    std::uint32_t burst = 0;
};

struct Principal {
    std::string name;
    IdentitySpec identity;
    std::vector<std::string> roles;
    std::optional<RateLimit> signing_rate_limit;  // only on principals that may sign

    // Compiled permissions (filled by the loader): a bit per Action, for global actions and
    // per key index (Engine::keys() order).
    std::uint16_t global_actions = 0;
    std::vector<std::uint16_t> key_actions;
};

struct RoleGrant {  // one line of a role: actions on key-name patterns
    std::vector<Action> actions;
    std::vector<std::string> keys;  // glob patterns (* and ?); empty for global actions
};

struct Role {
    std::string name;
    std::vector<RoleGrant> grants;
};

enum class ValueType : std::uint8_t { string, integer, boolean, string_list };
[[nodiscard]] std::string_view value_type_name(ValueType t) noexcept;

// Rule for one claim's value. Lengths count Unicode code points.
struct ValueRule {
    ValueType type = ValueType::string;
    std::optional<std::uint64_t> min_length;  // string, string_list items
    std::optional<std::uint64_t> max_length;  // string, string_list items
    std::optional<std::int64_t> min;          // integer
    std::optional<std::int64_t> max;          // integer
    std::optional<std::uint64_t> max_items;   // string_list
    std::vector<std::string> one_of;          // string, string_list items: allowed values
    // string, string_list items: control characters (U+0000-U+001F, U+007F-U+009F) allowed.
    // Without it a claim string holding one is refused (policy.claim_control_character).
    bool allow_control_characters = false;
};

struct ClaimRules {
    std::vector<std::string> required;      // sorted; caller must supply each
    std::vector<std::string> allowed;       // sorted; caller may supply each
    std::vector<std::string> forbidden;     // sorted, lower case: built-in + policy-wide + per key
    std::vector<std::string> pseudonymize;  // sorted; recorded in the audit log as HMAC pseudonyms
    std::map<std::string, ValueRule, std::less<>> rules;
};

struct ApprovalRule {
    std::uint32_t quorum = 2;     // approvals needed from principals other than the requester
    Seconds lifetime{24 * 3600};  // a request expires this long after it is opened
};

struct RotationRules {
    std::optional<Seconds> period;   // scheduled rotation; none = rotate on request only
    Seconds publish_ahead{0};        // a new version is in the JWKS this long before it signs
    Seconds verify_grace{0};         // a retired version stays in the JWKS this long
    bool requires_approval = false;  // scheduled rotation opens a request instead of executing
};

struct KeyRules {
    std::string name;
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
    std::string issuer;  // the `iss` the daemon sets
    Seconds max_validity{0};
    ClaimRules claims;
    RotationRules rotation;
    std::array<ApprovalRule, 3> approvals{};  // indexed by Operation
    // A destroy request may say "force" (destroy an active version, or a retired one whose
    // tokens can still be valid) only if this is set (keys.<k>.allow_forced_destroy).
    bool allow_forced_destroy = false;

    [[nodiscard]] const ApprovalRule& approval(Operation op) const noexcept {
        return approvals[static_cast<std::size_t>(op)];
    }
};

// Pseudonym epochs (docs/privacy.md): the claims a key records under `pseudonymize` are
// pseudonymized with a key of the epoch the entry falls in; an epoch's key is destroyed
// `retention` after the epoch ends, after which its pseudonyms link to no one.
struct PseudonymRules {
    Seconds epoch{0};      // length of one epoch (epochs start at multiples of it since 1970)
    Seconds retention{0};  // kept this long after the epoch ends
};

// Claim names no policy may allow: personal data never belongs in a license token. A policy can
// add names (forbidden_claims, keys.<k>.claims.forbidden) but not remove these. Compared
// case-insensitively.
[[nodiscard]] const std::vector<std::string>& builtin_forbidden_claims();

// Claims the daemon sets itself; a caller supplying one is a violation.
inline constexpr std::array<std::string_view, 3> kDaemonClaims = {"iss", "iat", "jti"};

// Role pairs that are always exclusive, in addition to those the policy declares.
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 3>
    kDefaultExclusiveRoles = {
        {{"signer", "officer"}, {"officer", "auditor"}, {"signer", "auditor"}}};

// Names of roles, principals and keys: 1-64 of [a-z0-9._-], starting with a letter or digit.
[[nodiscard]] bool valid_name(std::string_view n) noexcept;

// The reserved principal name used for grants the daemon mints for itself.
inline constexpr std::string_view kSystemPrincipal = "system";

}  // namespace licentra::policy
