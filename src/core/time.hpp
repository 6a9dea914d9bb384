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
// Precondition: ms is within what Clock::duration can hold (about ±292 years around 1970);
// times read from a record go through from_unix_millis_checked instead.
[[nodiscard]] TimePoint from_unix_millis(std::int64_t ms) noexcept;

// The longest duration any file format names (parse_duration): 36500 days.
inline constexpr std::int64_t kMaxDurationMillis = 36500LL * 86'400'000LL;

// Times read from stored records (approval requests, key records) are whole milliseconds since
// the Unix epoch from 1970-01-01T00:00:00.000Z to 2099-12-31T23:59:59.999Z. Clock::duration
// counts nanoseconds in 64 bits (up to 2262), so a record time plus kMaxDurationMillis still
// fits: range-checked once here, no later arithmetic on it can overflow.
inline constexpr std::int64_t kMinRecordUnixMillis = 0;
inline constexpr std::int64_t kMaxRecordUnixMillis = 4'102'444'799'999;

// The one check of a time read from a record, before any arithmetic or conversion. Errors:
// kind integrity, code "core.time_out_of_range", naming the value and the bounds. Thread-safe.
[[nodiscard]] Result<std::int64_t> checked_unix_millis(std::int64_t ms);
// checked_unix_millis, then the time point.
[[nodiscard]] Result<TimePoint> from_unix_millis_checked(std::int64_t ms);

// RFC 3339 UTC with milliseconds: "2026-11-24T02:15:00.123Z".
[[nodiscard]] std::string format_rfc3339_ms(TimePoint t);
// Accepts exactly the form format_rfc3339_ms produces, for the times a record may carry
// (kMinRecordUnixMillis..kMaxRecordUnixMillis; others: core.bad_time naming the bounds).
[[nodiscard]] Result<TimePoint> parse_rfc3339_ms(std::string_view text);

// Durations in configuration and policy files: a non-negative integer without leading zeros and
// one unit, "250ms", "10s", "5m", "12h", "90d"; no fractions, signs, combinations or whitespace;
// at most 36500 days. The one definition every file format uses.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(
    std::string_view text) noexcept;

}  // namespace licentra::core
