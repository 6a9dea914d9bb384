#include "core/time.hpp"

#include <gtest/gtest.h>

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
