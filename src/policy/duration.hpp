// Durations in the policy: core::parse_duration's syntax in whole seconds, "90d", "12h", "30m",
// "45s" (no "ms"). No fractions, no combinations, no whitespace; at most 36500 days.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace licentra::policy {

[[nodiscard]] std::optional<std::chrono::seconds> parse_duration(std::string_view text) noexcept;
// The largest unit that represents d exactly: 86400s -> "1d", 90s -> "90s".
[[nodiscard]] std::string format_duration(std::chrono::seconds d);

}  // namespace licentra::policy
