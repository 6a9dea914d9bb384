// The one place that turns the policy's decisions into the right to use a key inside the HSM
// (hsm::KeyCapability): signing takes a token.sign grant, generating and destroying a
// key.lifecycle.execute grant, the audit log's key an audit.checkpoint.sign grant. Every
// privileged HSM call therefore traces back to a Grant, which only the policy engine mints;
// `grep -n 'Grant<'` lists them, and `grep -n 'ceremony'` the calls that hold none.
#pragma once

#include <string>
#include <utility>

#include "core/grant.hpp"
#include "hsm/hsm.hpp"

namespace licentra::keys {

class Capabilities {
  public:
    Capabilities() = delete;

    [[nodiscard]] static hsm::SignCapability sign(
        const core::Grant<core::action::TokenSign>& grant) {
        return hsm::SignCapability(grant.key());
    }
    [[nodiscard]] static hsm::GenerateCapability generate(
        const core::Grant<core::action::KeyLifecycleExecute>& grant) {
        return hsm::GenerateCapability(grant.key());
    }
    [[nodiscard]] static hsm::DestroyCapability destroy(
        const core::Grant<core::action::KeyLifecycleExecute>& grant) {
        return hsm::DestroyCapability(grant.key());
    }
    // The audit log's checkpoint key, "audit" (licentra/audit/v<N>): sign with it, and generate
    // it on a token that has none.
    [[nodiscard]] static hsm::SignCapability checkpoints(
        const core::Grant<core::action::AuditCheckpointSign>& grant) {
        return hsm::SignCapability(grant.key());
    }
    [[nodiscard]] static hsm::GenerateCapability checkpoint_key(
        const core::Grant<core::action::AuditCheckpointSign>& grant) {
        return hsm::GenerateCapability(grant.key());
    }

    // Without a grant: for the key ceremony (`licentra hsm generate`, which refuses a token a
    // deployment uses) and for tests and benchmarks of the token itself. No daemon code path
    // calls it.
    template <hsm::KeyOp Op>
    [[nodiscard]] static hsm::KeyCapability<Op> ceremony(std::string key) {
        return hsm::KeyCapability<Op>(std::move(key));
    }
};

}  // namespace licentra::keys
