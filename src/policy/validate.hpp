// Stage 2 of loading a policy: the checks across a parsed document (document.hpp).
//
// validate() resolves every reference (role names, key names and patterns, exclusive role
// pairs), checks the claim lists of each key against each other and the forbidden claims,
// rotation settings against max_validity, separation of duties per role and per principal,
// unique principal names and identities and, when nothing else is wrong, that every quorum can
// be reached. It reports every error it finds, in the order of the checks (load_policy_text
// sorts them by position). Thread-safe.
#pragma once

#include <optional>
#include <vector>

#include "policy/diagnostic.hpp"
#include "policy/document.hpp"
#include "policy/model.hpp"

namespace licentra::policy {

struct Validation;

// A policy that passed validate(): the model an Engine is compiled from (compile.hpp). Only
// validate() makes one.
class ValidatedPolicy {
  public:
    int version = 0;
    std::optional<PseudonymRules> pseudonyms;
    std::vector<KeyRules> keys;         // sorted by name
    std::vector<Role> roles;            // sorted by name
    std::vector<Principal> principals;  // sorted by name; permissions not compiled yet

  private:
    friend Validation validate(const PolicyDocument& document);
    ValidatedPolicy() = default;
};

struct Validation {
    std::vector<Diagnostic> diagnostics;    // this stage's errors only
    std::optional<ValidatedPolicy> policy;  // set when the document is complete and valid
};

[[nodiscard]] Validation validate(const PolicyDocument& document);

}  // namespace licentra::policy
