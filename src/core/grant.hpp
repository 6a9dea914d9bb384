// Privilege in the type system: a Grant<Action> proves that the policy engine authorized one
// principal to perform Action on one key (or on everything, for non-key actions). Only
// licentra::policy::Engine can construct one, so every privileged call site — which takes a
// Grant — is found with `grep 'Grant<'`, and none can be reached without a decision.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace licentra::policy {
class Engine;
}

namespace licentra::core {

// Action tags. Names match the policy's action strings.
namespace action {
struct TokenSign {
    static constexpr std::string_view name = "token.sign";
};
struct KeysRead {
    static constexpr std::string_view name = "keys.read";
};
struct JwksRead {
    static constexpr std::string_view name = "jwks.read";
};
struct KeyRotateRequest {
    static constexpr std::string_view name = "key.rotate.request";
};
struct KeyRetireRequest {
    static constexpr std::string_view name = "key.retire.request";
};
struct KeyDestroyRequest {
    static constexpr std::string_view name = "key.destroy.request";
};
struct RequestApprove {
    static constexpr std::string_view name = "request.approve";
};
struct RequestReject {
    static constexpr std::string_view name = "request.reject";
};
struct AuditRead {
    static constexpr std::string_view name = "audit.read";
};
// Executing a lifecycle change after quorum, bootstrap and scheduled rotation: minted by the
// engine for the daemon itself (principal "system") or when a request reached its quorum.
struct KeyLifecycleExecute {
    static constexpr std::string_view name = "key.lifecycle.execute";
};
// Signing the audit log's checkpoints with the log's own key (licentra/audit/v<N>), and
// generating that key when the token has none: minted by the engine for the daemon itself.
struct AuditCheckpointSign {
    static constexpr std::string_view name = "audit.checkpoint.sign";
};
}  // namespace action

template <typename Action>
class Grant {
  public:
    Grant(const Grant&) = default;
    Grant& operator=(const Grant&) = default;

    [[nodiscard]] const std::string& principal() const noexcept { return principal_; }
    // Key name the grant is scoped to; empty for actions that are not per key.
    [[nodiscard]] const std::string& key() const noexcept { return key_; }
    [[nodiscard]] static constexpr std::string_view action() noexcept { return Action::name; }

  private:
    friend class licentra::policy::Engine;
    Grant(std::string principal, std::string key)
        : principal_(std::move(principal)), key_(std::move(key)) {}

    std::string principal_;
    std::string key_;
};

}  // namespace licentra::core
