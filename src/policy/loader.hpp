// Loading a policy file: strict YAML -> validated Engine, in three stages: parse_policy
// (document.hpp), validate (validate.hpp) and compile (compile.hpp).
//
// The loader rejects unknown keys, wrong types, unknown actions, roles and key names,
// duplicate keys, separation-of-duties violations and unreachable quorums, and reports every
// error it finds (not only the first), each with file, line, column and key path. Hostile input
// (anchors, aliases and merge keys, deep nesting, huge scalars or files, several documents,
// invalid UTF-8) is refused before interpretation; see yaml/document.hpp for the bounds.
// Nothing throws.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "policy/diagnostic.hpp"
#include "policy/engine.hpp"

namespace licentra::policy {

struct PolicyLoad {
    std::shared_ptr<const Engine> engine;  // null when the policy is invalid
    std::vector<Diagnostic> diagnostics;   // every error, ordered by position

    [[nodiscard]] bool ok() const noexcept { return engine != nullptr; }
    // ErrorKind::usage "policy.invalid" whose message lists every diagnostic, one per line.
    [[nodiscard]] core::Error error() const;
};

// Reads and validates a policy file (at most 1 MiB, checked before reading it).
[[nodiscard]] PolicyLoad load_policy_file(const std::filesystem::path& path);
// Validates policy text; file_label names the source in diagnostics.
[[nodiscard]] PolicyLoad load_policy_text(std::string_view text, std::string_view file_label);

}  // namespace licentra::policy
