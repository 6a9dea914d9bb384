#include "net/query.hpp"

#include <gtest/gtest.h>

namespace licentra::net {
namespace {

TEST(PercentDecode, DecodesEscapesAndOptionallyPlus) {
    EXPECT_EQ(percent_decode("a%20b%2Fc").value(), "a b/c");
    EXPECT_EQ(percent_decode("a+b").value(), "a+b");
    EXPECT_EQ(percent_decode("a+b", true).value(), "a b");
    EXPECT_EQ(percent_decode("%e2%82%AC").value(), "\xE2\x82\xAC");
}

TEST(PercentDecode, RejectsTruncatedBadHexAndNul) {
    for (const char* bad : {"%", "%2", "abc%", "%zz", "%0g", "%00", "a%2"}) {
        auto r = percent_decode(bad);
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_EQ(r.error().code, "net.bad_percent_encoding");
        EXPECT_EQ(r.error().kind, core::ErrorKind::usage);
    }
}

TEST(PercentEncode, RoundTripsAndKeepsUnreserved) {
    EXPECT_EQ(percent_encode("aZ0-._~"), "aZ0-._~");
    EXPECT_EQ(percent_encode("a b/?"), "a%20b%2F%3F");
    const std::string s = "k\xC3\xA9y=v&x";
    EXPECT_EQ(percent_decode(percent_encode(s)).value(), s);
}

TEST(QueryParams, ParsesPairsAndRepeatedKeys) {
    auto q = QueryParams::parse("start=0&end=10&name=a%20b&flag&&x=1&x=2");
    ASSERT_TRUE(q.ok());
    EXPECT_EQ(q->get("start"), "0");
    EXPECT_EQ(q->get("name"), "a b");
    EXPECT_EQ(q->get("flag"), "");
    EXPECT_FALSE(q->get("missing").has_value());
    EXPECT_EQ(q->count("x"), 2u);
    EXPECT_EQ(q->get_all("x"), (std::vector<std::string>{"1", "2"}));
    EXPECT_TRUE(QueryParams::parse("").value().pairs().empty());
}

TEST(QueryParams, StrictUnsignedIntegers) {
    auto q = QueryParams::parse("a=42&b=-1&c=1x&d=&e=99999999999999999999999&f=1&f=2").value();
    EXPECT_EQ(q.get_uint("a").value(), 42ull);
    EXPECT_FALSE(q.get_uint("zz").value().has_value());
    for (const char* key : {"b", "c", "d", "e", "f"}) {
        auto r = q.get_uint(key);
        ASSERT_FALSE(r.ok()) << key;
        EXPECT_EQ(r.error().code, "net.bad_query_param");
    }
}

TEST(QueryParams, RejectsBadEncodingAndTooManyParams) {
    EXPECT_FALSE(QueryParams::parse("a=%zz").ok());
    EXPECT_FALSE(QueryParams::parse("a=1&b=2&c=3", 2).ok());
    EXPECT_TRUE(QueryParams::parse("a=1&b=2", 2).ok());
}

}  // namespace
}  // namespace licentra::net
