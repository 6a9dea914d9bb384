// Dual control: an approval request for a key lifecycle operation (pure logic, no storage).
//
// A request names the operation (rotate, retire, destroy), the key, the version (retire and
// destroy), parameters (e.g. {"force": true}), the requester, the SHA-256 of the policy it was
// opened under, a 16-byte random nonce, and its creation and expiry times. Its digest binds
// all of these (canonical encoding in docs/policy.md):
//   SHA-256("licentra-approval-request-v1\n" || canonical JSON of those fields)
// and its id is the first 16 bytes of the digest in hex.
//
// approve() refuses (in this order): a request that is not pending (policy.request_closed), an
// expired one (policy.request_expired), a request opened under another policy
// (policy.request_policy_changed: a reload invalidates open requests, because separation of
// duties was checked against the old policy), a digest the approver did not see
// (policy.request_digest_mismatch), a principal without request.approve on the key (the
// engine's denial codes), the requester (policy.requester_cannot_approve) and a repeat approver
// (policy.duplicate_approval). The request is executable at `quorum` distinct approvals;
// Engine::execution_grant then mints the Grant that executes it. reject() by any principal with
// request.reject on the key (the requester included: withdrawing is always safe) closes it.
//
// Not thread-safe: callers serialize access to one request (it lives on the HSM token).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/grant.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "policy/model.hpp"

namespace licentra::policy {

class Engine;

// pending until a closing decision: executed, rejected, expired, or failed (the operation
// was tried and failed, or its execution was interrupted).
enum class RequestState : std::uint8_t { pending, rejected, executed, expired, failed };
[[nodiscard]] std::string_view request_state_name(RequestState s) noexcept;

struct ApprovalRecord {
    std::string principal;
    core::TimePoint at;
};

class ApprovalRequest {
  public:
    // Opens a request; the grant proves the requester may request `op` on the grant's key.
    // version: required for retire and destroy, must be absent for rotate (policy.usage codes,
    // ErrorKind::usage). params: a JSON object of string, boolean or integer values.
    template <class Tag>
    [[nodiscard]] static core::Result<ApprovalRequest> open(const Engine& engine,
                                                            const core::Grant<Tag>& grant,
                                                            std::optional<std::uint32_t> version,
                                                            nlohmann::json params,
                                                            core::TimePoint now) {
        return open_impl(engine, operation_for<Tag>(), grant.principal(), grant.key(), version,
                         std::move(params), now);
    }
    // Opens a scheduled rotation request on behalf of the daemon (requester "system") for a
    // key whose rotation.requires_approval is set; otherwise policy.approval_not_required.
    [[nodiscard]] static core::Result<ApprovalRequest> open_scheduled(const Engine& engine,
                                                                      std::string_view key,
                                                                      core::TimePoint now);

    // Records principal's approval. `expected_digest`, when given, must equal digest(): the
    // approver confirms the exact request they reviewed.
    [[nodiscard]] core::Status approve(const Engine& engine, std::string_view principal,
                                       core::TimePoint now,
                                       const crypto::Sha256Digest* expected_digest = nullptr);
    // Closes the request as rejected.
    [[nodiscard]] core::Status reject(const Engine& engine, std::string_view principal,
                                      core::TimePoint now);
    // Marks the request executed after the operation ran; the grant must be for this key.
    [[nodiscard]] core::Status mark_executed(
        const core::Grant<core::action::KeyLifecycleExecute>& grant);

    // ---- folding the records stored on the token (docs/adr/0004) ----
    // Adds an approval that was checked by approve() when it was recorded. Ignored if it is
    // the requester's, a repeat, or made at or after expiry (every replica folds alike).
    void add_recorded_approval(const ApprovalRecord& a);
    // Applies the closing decision that won: state (not pending) and who decided it.
    void close_as(RequestState state, ApprovalRecord by);
    // The approval that completed the quorum (the quorum-th, ordered by time then principal);
    // the requester when quorum is 0. nullopt below quorum.
    [[nodiscard]] std::optional<std::string> quorum_completed_by() const;

    // Pending, unexpired and holding at least quorum() approvals.
    [[nodiscard]] bool executable(core::TimePoint now) const noexcept;
    [[nodiscard]] bool expired(core::TimePoint now) const noexcept { return now >= expires_; }

    [[nodiscard]] crypto::Sha256Digest digest() const;
    [[nodiscard]] std::string id() const;  // 32 hex characters

    [[nodiscard]] Operation operation() const noexcept { return operation_; }
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] std::optional<std::uint32_t> version() const noexcept { return version_; }
    [[nodiscard]] const nlohmann::json& params() const noexcept { return params_; }
    [[nodiscard]] const std::string& requester() const noexcept { return requester_; }
    [[nodiscard]] const crypto::Sha256Digest& policy_sha256() const noexcept { return policy_; }
    [[nodiscard]] const core::Bytes& nonce() const noexcept { return nonce_; }
    [[nodiscard]] core::TimePoint created() const noexcept { return created_; }
    [[nodiscard]] core::TimePoint expires() const noexcept { return expires_; }
    [[nodiscard]] std::uint32_t quorum() const noexcept { return quorum_; }
    [[nodiscard]] RequestState state() const noexcept { return state_; }
    [[nodiscard]] const std::vector<ApprovalRecord>& approvals() const noexcept {
        return approvals_;
    }
    [[nodiscard]] const std::optional<ApprovalRecord>& rejection() const noexcept {
        return rejection_;
    }

    // Canonical JSON (sorted keys, no whitespace, times as integer Unix milliseconds) of the
    // whole request including approvals and state; from_json is strict (unknown, missing or
    // repeated fields, wrong types -> ErrorKind::integrity "policy.request_malformed") and
    // recomputes the id, which must match the stored one.
    [[nodiscard]] std::string to_json() const;
    [[nodiscard]] static core::Result<ApprovalRequest> from_json(std::string_view text);

  private:
    friend class Engine;
    ApprovalRequest() = default;

    template <class Tag>
    static constexpr Operation operation_for() noexcept {
        if constexpr (std::is_same_v<Tag, core::action::KeyRotateRequest>)
            return Operation::rotate;
        else if constexpr (std::is_same_v<Tag, core::action::KeyRetireRequest>)
            return Operation::retire;
        else if constexpr (std::is_same_v<Tag, core::action::KeyDestroyRequest>)
            return Operation::destroy;
        else
            static_assert(sizeof(Tag) == 0, "only key.*.request grants open requests");
    }
    static core::Result<ApprovalRequest> open_impl(const Engine& engine, Operation op,
                                                   std::string_view requester, std::string_view key,
                                                   std::optional<std::uint32_t> version,
                                                   nlohmann::json params, core::TimePoint now);
    [[nodiscard]] core::Status check_open(const Engine& engine, core::TimePoint now) const;
    [[nodiscard]] nlohmann::json digest_fields() const;

    Operation operation_ = Operation::rotate;
    std::string key_;
    std::optional<std::uint32_t> version_;
    nlohmann::json params_ = nlohmann::json::object();
    std::string requester_;
    crypto::Sha256Digest policy_{};
    core::Bytes nonce_;
    core::TimePoint created_{};
    core::TimePoint expires_{};
    std::uint32_t quorum_ = 0;
    RequestState state_ = RequestState::pending;
    std::vector<ApprovalRecord> approvals_;
    std::optional<ApprovalRecord> rejection_;
};

}  // namespace licentra::policy
