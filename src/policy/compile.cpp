// Stage 3: a ValidatedPolicy compiled into an Engine (compile.hpp).
#include "policy/compile.hpp"

#include "policy/permissions.hpp"

namespace licentra::policy {

std::shared_ptr<const Engine> compile(ValidatedPolicy policy, const crypto::Sha256Digest& sha256) {
    CompiledPolicy model;
    for (Principal& p : policy.principals) {
        Permissions granted = permissions_of(p.roles, policy.roles, policy.keys);
        p.global_actions = granted.global;
        p.key_actions = std::move(granted.per_key);
    }
    model.version = policy.version;
    model.pseudonyms = policy.pseudonyms;
    model.sha256 = sha256;
    model.roles = std::move(policy.roles);
    model.principals = std::move(policy.principals);
    model.keys = std::move(policy.keys);
    return std::make_shared<const Engine>(EngineKey(), std::move(model));
}

}  // namespace licentra::policy
