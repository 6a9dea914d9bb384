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

}  // namespace
}  // namespace licentra::core
