#include "core/time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace licentra::core {
namespace {

TEST(Rfc3339, FormatsUtcWithMilliseconds) {
    auto t = from_unix_millis(1764000000123);
    EXPECT_EQ(format_rfc3339_ms(t), "2025-11-24T16:00:00.123Z");
    auto back = parse_rfc3339_ms("2025-11-24T16:00:00.123Z");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(unix_millis(*back), 1764000000123);
}

TEST(Rfc3339, RejectsOtherForms) {
    EXPECT_FALSE(parse_rfc3339_ms("2025-11-24T16:00:00Z").ok());
    EXPECT_FALSE(parse_rfc3339_ms("2025-11-24T16:00:00.123+01:00").ok());
    EXPECT_FALSE(parse_rfc3339_ms("2025-02-30T16:00:00.123Z").ok());
    EXPECT_FALSE(parse_rfc3339_ms("2025-11-24T24:00:00.123Z").ok());
}

// fuzz_audit_entry and fuzz_audit_receipt (UBSan): "6026-01-02T03:04:05.678Z" in an audit entry
// overflowed the conversion to the clock's nanoseconds
// (tests/fuzz/corpus/audit_entry/invalid_far_future_time).
TEST(Rfc3339, RefusesTimesOutsideTheRecordRangeBeforeConverting) {
    EXPECT_EQ(unix_millis(*parse_rfc3339_ms("1970-01-01T00:00:00.000Z")), 0);
    EXPECT_EQ(unix_millis(*parse_rfc3339_ms("2099-12-31T23:59:59.999Z")), kMaxRecordUnixMillis);
    for (const char* text :
         {"1969-12-31T23:59:59.999Z", "2100-01-01T00:00:00.000Z", "2263-01-01T00:00:00.000Z",
          "6026-01-02T03:04:05.678Z", "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00.000Z"}) {
        auto t = parse_rfc3339_ms(text);
        ASSERT_FALSE(t.ok()) << text;
        EXPECT_EQ(t.error().code, "core.bad_time");
        EXPECT_NE(t.error().message.find("is outside 1970-01-01T00:00:00.000Z.."),
                  std::string::npos)
            << t.error().message;
    }
}

TEST(RecordTime, AcceptsEveryMillisecondFrom1970To2099) {
    EXPECT_EQ(unix_millis(*from_unix_millis_checked(0)), 0);
    EXPECT_EQ(unix_millis(*from_unix_millis_checked(1'800'000'000'123)), 1'800'000'000'123);
    auto latest = from_unix_millis_checked(kMaxRecordUnixMillis);
    ASSERT_TRUE(latest.ok());
    EXPECT_EQ(format_rfc3339_ms(*latest), "2099-12-31T23:59:59.999Z");
    EXPECT_EQ(*checked_unix_millis(kMaxRecordUnixMillis), kMaxRecordUnixMillis);
    // The latest record time plus the longest duration a file can name still fits the clock.
    const auto clock_max =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration::max()).count();
    EXPECT_LT(kMaxRecordUnixMillis, clock_max - kMaxDurationMillis);
}

TEST(RecordTime, RefusesTimesOutsideTheRangeBeforeConvertingThem) {
    for (std::int64_t ms :
         {std::int64_t{-1}, kMaxRecordUnixMillis + 1,
          std::int64_t{9'223'372'036'855},  // first that overflows nanoseconds
          std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()}) {
        auto t = from_unix_millis_checked(ms);
        ASSERT_FALSE(t.ok()) << ms;
        EXPECT_EQ(t.error().kind, ErrorKind::integrity);
        EXPECT_EQ(t.error().code, "core.time_out_of_range");
        EXPECT_EQ(t.error().message, "time " + std::to_string(ms) +
                                         " ms since the epoch is outside "
                                         "1970-01-01T00:00:00.000Z..2099-12-31T23:59:59.999Z");
        EXPECT_FALSE(checked_unix_millis(ms).ok()) << ms;
    }
}

TEST(Duration, ParsesOneIntegerAndOneUnit) {
    using namespace std::chrono_literals;
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    EXPECT_EQ(parse_duration("10s"), 10s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("90d"), std::chrono::hours(90 * 24));
    EXPECT_EQ(parse_duration("36500d"), std::chrono::hours(36500LL * 24));
    for (const char* bad :
         {"", "10", "s", "ms", "1.5s", "-1s", "+1s", "10 s", " 1s", "1s ", "10S", "1w", "01s",
          "1h30m", "36501d", "3153600000001ms", "99999999999999999999999s"}) {
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    }
}

}  // namespace
}  // namespace licentra::core
