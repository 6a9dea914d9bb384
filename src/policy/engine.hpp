// The policy engine: an immutable, validated policy and the decisions made from it.
//
// An Engine is only created by the loader (loader.hpp, through compile.hpp), so every Engine in
// the process has passed validation, and never changes afterwards: all const member functions are
// thread-safe and lock-free. Replace a policy by swapping the whole Engine (holder.hpp).
//
// Decisions default to deny. A denial is a core::Error of kind ErrorKind::denied with a stable
// code:
//   policy.unknown_principal   the name or certificate maps to no principal
//   policy.ambiguous_identity  a certificate matches more than one principal
//   policy.unknown_key         the key name is not declared in the policy
//   policy.key_required        a key-scoped action was asked without a key
//   policy.key_not_applicable  a global action (jwks.read, audit.read) was asked with a key
//   policy.action_not_granted  no role of the principal grants the action
//   policy.key_out_of_scope    the principal has the action, but not on this key
//   policy.approval_required   scheduled rotation of a key whose rotation needs approvals
//   policy.request_*           approval request refusals (approval.hpp)
// A Principal reference from another Engine (an older policy) yields ErrorKind::internal
// "policy.foreign_principal": resolve the principal and decide with the same snapshot.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/grant.hpp"
#include "core/identity.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "policy/model.hpp"

namespace licentra::policy {

class ApprovalRequest;
class Engine;
class ValidatedPolicy;

// What an Engine holds: a validated policy with its permissions compiled.
struct CompiledPolicy {
    int version = 0;
    std::optional<PseudonymRules> pseudonyms;
    crypto::Sha256Digest sha256{};      // of the policy file's bytes
    std::vector<Role> roles;            // sorted by name
    std::vector<Principal> principals;  // sorted by name, global_actions and key_actions set
    std::vector<KeyRules> keys;         // sorted by name
};

// Only compile() (compile.hpp) can mint one, so only a policy that passed validate() becomes an
// Engine.
class EngineKey {
  private:
    EngineKey() = default;
    friend std::shared_ptr<const Engine> compile(ValidatedPolicy policy,
                                                 const crypto::Sha256Digest& sha256);
};

// One violated claim rule (core::Violation). Never contains the claim's value, only its name.
using Violation = core::Violation;

class Engine {
  public:
    Engine(EngineKey key, CompiledPolicy policy);
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // ---- principals -------------------------------------------------------------------
    // Maps a verified client certificate to its principal. Errors (denied):
    // policy.unknown_principal (a CA-signed certificate the policy does not name),
    // policy.ambiguous_identity. The pointer lives as long as this Engine.
    [[nodiscard]] core::Result<const Principal*> identify(const core::ClientIdentity& id) const;
    [[nodiscard]] const Principal* find_principal(std::string_view name) const noexcept;

    // ---- decisions --------------------------------------------------------------------
    // Authorizes principal p for the action Tag on `key` (empty for jwks.read and
    // audit.read). Returns a Grant only this engine can mint, or a denial (see top of file).
    template <class Tag>
    [[nodiscard]] core::Result<core::Grant<Tag>> authorize(const Principal& p,
                                                           std::string_view key = {}) const {
        const Deny d = decide(p, action_for<Tag>(), key);
        if (d != Deny::none) return deny_error(d, p.name, action_for<Tag>(), key);
        return core::Grant<Tag>(p.name, std::string(key));
    }
    // Same, by principal name (unknown names are denied with policy.unknown_principal).
    template <class Tag>
    [[nodiscard]] core::Result<core::Grant<Tag>> authorize(std::string_view principal,
                                                           std::string_view key = {}) const {
        const Principal* p = find_principal(principal);
        if (p == nullptr)
            return deny_error(Deny::unknown_principal, principal, action_for<Tag>(), key);
        return authorize<Tag>(*p, key);
    }
    // The same decision without minting a grant (list filtering, approval checks).
    [[nodiscard]] core::Status check(std::string_view principal, Action action,
                                     std::string_view key = {}) const;
    [[nodiscard]] bool permits(const Principal& p, Action action,
                               std::string_view key) const noexcept {
        return decide(p, action, key) == Deny::none;
    }

    // Grants for the daemon itself (principal "system"). bootstrap: create the first version
    // of a declared key. scheduled_rotation: rotate on the policy's schedule; denied with
    // policy.approval_required if the key's rotation.requires_approval is set (open a request
    // with ApprovalRequest::open_scheduled instead). Unknown key: policy.unknown_key.
    enum class SystemPurpose { bootstrap, scheduled_rotation };
    [[nodiscard]] core::Result<core::Grant<core::action::KeyLifecycleExecute>> system_grant(
        std::string_view key, SystemPurpose purpose) const;

    // Grant for the daemon to sign its audit log's checkpoints (principal "system"): not a
    // policy decision, since every daemon must, but the one way to reach that key's capability.
    [[nodiscard]] core::Grant<core::action::AuditCheckpointSign> checkpoint_grant() const;

    // Grant to execute a request that reached its quorum under this policy: the request must
    // be pending, unexpired at `now`, opened under this policy (same SHA-256), carry an intact
    // digest, and hold at least `quorum` distinct approvals from principals that may approve
    // on its key and are not the requester. The grant's principal is the requester.
    [[nodiscard]] core::Result<core::Grant<core::action::KeyLifecycleExecute>> execution_grant(
        const ApprovalRequest& request, core::TimePoint now) const;

    // ---- claims -----------------------------------------------------------------------
    // Checks the caller-supplied claims for `key` at time `now` and returns every violated
    // rule (empty = valid). Codes: policy.unknown_key, policy.claims_not_object,
    // policy.claim_reserved (iss, iat, jti: the daemon sets them), policy.claim_forbidden,
    // policy.claim_not_allowed, policy.claim_missing, policy.claim_type,
    // policy.claim_too_short, policy.claim_too_long, policy.claim_below_min,
    // policy.claim_above_max, policy.claim_not_in_set, policy.claim_too_many_items,
    // policy.exp_not_in_future, policy.exp_beyond_max_validity, policy.nbf_after_exp.
    // `exp` is required (NumericDate, integer seconds) and must satisfy
    // now < exp <= now + max_validity; `nbf` is optional and must be < exp.
    [[nodiscard]] std::vector<Violation> validate_claims(std::string_view key,
                                                         const nlohmann::json& claims,
                                                         core::TimePoint now) const;

    // ---- model ------------------------------------------------------------------------
    [[nodiscard]] const KeyRules* key_rules(std::string_view key) const noexcept;
    [[nodiscard]] const std::vector<KeyRules>& keys() const noexcept { return keys_; }
    [[nodiscard]] const std::vector<Principal>& principals() const noexcept { return principals_; }
    [[nodiscard]] const std::vector<Role>& roles() const noexcept { return roles_; }
    [[nodiscard]] int version() const noexcept { return version_; }
    // The policy's pseudonym epochs; none: one key for every pseudonym (licentra/pseudonym/v1).
    [[nodiscard]] const std::optional<PseudonymRules>& pseudonyms() const noexcept {
        return pseudonyms_;
    }
    // SHA-256 of the policy file's bytes, as loaded.
    [[nodiscard]] const crypto::Sha256Digest& sha256() const noexcept { return sha256_; }
    [[nodiscard]] std::string sha256_hex() const;
    // Principals that may approve (request.approve) requests on `key`, sorted by name.
    [[nodiscard]] std::vector<const Principal*> approvers(std::string_view key) const;

    // The effective permission matrix, deterministic (principals, actions, keys sorted), and
    // the approval rules per key. Printed by `licentra policy check`; pinned by a golden file.
    [[nodiscard]] std::string render_matrix() const;

  private:
    enum class Deny : std::uint8_t {
        none,
        unknown_principal,
        foreign_principal,
        unknown_key,
        key_required,
        key_not_applicable,
        action_not_granted,
        key_out_of_scope,
    };
    [[nodiscard]] Deny decide(const Principal& p, Action action,
                              std::string_view key) const noexcept;
    [[nodiscard]] static core::Error deny_error(Deny d, std::string_view principal, Action action,
                                                std::string_view key);
    [[nodiscard]] std::ptrdiff_t key_index(std::string_view key) const noexcept;

    int version_ = 0;
    std::optional<PseudonymRules> pseudonyms_;
    crypto::Sha256Digest sha256_{};
    std::vector<Role> roles_;            // sorted by name
    std::vector<Principal> principals_;  // sorted by name
    std::vector<KeyRules> keys_;         // sorted by name
};

}  // namespace licentra::policy
