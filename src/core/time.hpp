// Wall-clock helpers. All times on the wire are UTC.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace licentra::core {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

[[nodiscard]] std::int64_t unix_seconds(TimePoint t) noexcept;
[[nodiscard]] std::int64_t unix_millis(TimePoint t) noexcept;
[[nodiscard]] TimePoint from_unix_millis(std::int64_t ms) noexcept;

// RFC 3339 UTC with milliseconds: "2026-11-24T02:15:00.123Z".
[[nodiscard]] std::string format_rfc3339_ms(TimePoint t);
// Accepts exactly the form format_rfc3339_ms produces.
[[nodiscard]] Result<TimePoint> parse_rfc3339_ms(std::string_view text);

// Durations in configuration and policy files: a non-negative integer without leading zeros and
// one unit, "250ms", "10s", "5m", "12h", "90d"; no fractions, signs, combinations or whitespace;
// at most 36500 days. The one definition every file format uses.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(
    std::string_view text) noexcept;

}  // namespace licentra::core
