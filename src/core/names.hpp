// The name rules that several layers check (configuration, policy, HTTP routes, audit log,
// HSM labels): one definition each, here, so that every layer accepts exactly the same names.
#pragma once

#include <string_view>

namespace licentra::core {

// Key and role names: 1-64 characters of a-z 0-9 . _ -, starting with a letter or a digit.
[[nodiscard]] bool is_valid_name(std::string_view name) noexcept;

// An audit log's origin, the first line of its checkpoints (C2SP signed note / tlog-checkpoint):
// 1-255 printable ASCII characters, no spaces.
[[nodiscard]] bool is_valid_log_origin(std::string_view origin) noexcept;

}  // namespace licentra::core
