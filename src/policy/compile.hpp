// Stage 3 of loading a policy: a validated policy (validate.hpp) compiled into an Engine, with
// each principal's permissions as a bit per action, globally and per key.
#pragma once

#include <memory>

#include "crypto/digest.hpp"
#include "policy/engine.hpp"
#include "policy/validate.hpp"

namespace licentra::policy {

// sha256: the digest of the policy file's bytes (Engine::sha256). Never returns null.
[[nodiscard]] std::shared_ptr<const Engine> compile(ValidatedPolicy policy,
                                                    const crypto::Sha256Digest& sha256);

}  // namespace licentra::policy
