#include "core/json_record.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "core/time.hpp"

namespace licentra::core {
namespace {

RecordKind test_record() { return {"test record", ErrorKind::integrity, "test.bad_record"}; }

JsonRecord parsed(std::string_view text) {
    auto r = JsonRecord::parse(text, test_record());
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return std::move(r).value();
}

void expect_refused(const Error& e, const std::string& message) {
    EXPECT_EQ(e.kind, ErrorKind::integrity);
    EXPECT_EQ(e.code, "test.bad_record");
    EXPECT_EQ(e.message, message);
}

TEST(JsonRecord, AnObjectIsRead) {
    JsonRecord r = parsed(R"({"s":"text","n":-7,"u":42,"t":1234,"b":true,"h":"00ff","v":[1]})");
    EXPECT_EQ(*r.string("s", 4), "text");
    EXPECT_EQ(*r.integer("n"), -7);
    EXPECT_EQ(*r.uint32("u"), 42u);
    EXPECT_EQ(*r.time("t"), 1234);
    EXPECT_EQ(*r.boolean("b"), true);
    EXPECT_EQ(*r.hex("h", 2), (Bytes{0x00, 0xff}));
    EXPECT_EQ(*r.value("v"), nlohmann::json::array({1}));
    EXPECT_TRUE(r.finish().ok());
}

TEST(JsonRecord, AnythingButAnObjectIsRefused) {
    for (const char* text : {"[]", "1", "\"x\"", "null", "", "not json"}) {
        auto r = JsonRecord::parse(text, test_record());
        ASSERT_FALSE(r.ok()) << text;
        expect_refused(r.error(), "test record is not a JSON object");
    }
    auto nested = JsonRecord::of(nlohmann::json::array(), test_record());
    ASSERT_FALSE(nested.ok());
    expect_refused(nested.error(), "test record is not a JSON object");
}

TEST(JsonRecord, TruncatedJsonIsRefused) {
    auto r = JsonRecord::parse(R"({"s":"text","n":)", test_record());
    ASSERT_FALSE(r.ok());
    expect_refused(r.error(), "test record is not a JSON object");
}

TEST(JsonRecord, ADuplicateMemberIsRefused) {
    auto r = JsonRecord::parse(R"({"a":1,"b":2,"a":3})", test_record());
    ASSERT_FALSE(r.ok());
    expect_refused(r.error(), "test record: duplicate member \"a\"");
}

TEST(JsonRecord, ADuplicateMemberOfANestedObjectIsRefused) {
    auto r = JsonRecord::parse(R"({"a":[{"x":1},{"x":2,"x":2}]})", test_record());
    ASSERT_FALSE(r.ok());
    expect_refused(r.error(), "test record: duplicate member \"x\"");
    // The same name in sibling or nested objects is no duplicate.
    EXPECT_TRUE(
        JsonRecord::parse(R"({"x":{"x":{"x":1}},"y":[{"x":1},{"x":2}]})", test_record()).ok());
}

TEST(JsonRecord, AnUnknownMemberIsRefusedByFinish) {
    JsonRecord r = parsed(R"({"known":1,"extra":2})");
    ASSERT_TRUE(r.integer("known").ok());
    auto done = r.finish();
    ASSERT_FALSE(done.ok());
    expect_refused(done.error(), "test record: unknown member \"extra\"");
}

TEST(JsonRecord, AnOptionalMemberThatIsAbsentCountsAsRead) {
    JsonRecord r = parsed(R"({})");
    EXPECT_EQ(*r.optional_string("s", 8), std::nullopt);
    EXPECT_EQ(*r.optional_uint32("u"), std::nullopt);
    EXPECT_EQ(*r.optional_time("t"), std::nullopt);
    EXPECT_TRUE(r.finish().ok());
}

TEST(JsonRecord, AMissingRequiredMemberIsRefused) {
    JsonRecord r = parsed(R"({})");
    expect_refused(r.string("s", 8).error(), "test record s: is missing");
    expect_refused(r.integer("n").error(), "test record n: is missing");
    expect_refused(r.uint32("u").error(), "test record u: is missing");
    expect_refused(r.nullable_uint32("u").error(), "test record u: is missing");
    expect_refused(r.time("t").error(), "test record t: is missing");
    expect_refused(r.boolean("b").error(), "test record b: is missing");
    expect_refused(r.hex("h", 2).error(), "test record h: is missing");
    expect_refused(r.value("v").error(), "test record v: is missing");
}

TEST(JsonRecord, AStringOverItsMaximumIsRefused) {
    JsonRecord r = parsed(R"({"s":"12345","o":"123456789"})");
    expect_refused(r.string("s", 4).error(), "test record s: is longer than 4 bytes");
    EXPECT_EQ(*r.string("s", 5), "12345");
    expect_refused(r.optional_string("o", 8).error(), "test record o: is longer than 8 bytes");
    expect_refused(r.string("s", 1).error(), "test record s: is longer than 1 bytes");
    JsonRecord typed = parsed(R"({"s":1})");
    expect_refused(typed.string("s", 8).error(), "test record s: must be a string");
}

TEST(JsonRecord, AnIntegerMustFitInt64) {
    JsonRecord r = parsed(
        R"({"min":-9223372036854775808,"max":9223372036854775807,"over":9223372036854775808,)"
        R"("float":1.5,"text":"1"})");
    EXPECT_EQ(*r.integer("min"), std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(*r.integer("max"), std::numeric_limits<std::int64_t>::max());
    expect_refused(r.integer("over").error(),
                   "test record over: 9223372036854775808 is out of range");
    expect_refused(r.integer("float").error(), "test record float: must be an integer");
    expect_refused(r.integer("text").error(), "test record text: must be an integer");
}

TEST(JsonRecord, AnUnsigned32BitIntegerIsFrom0To4294967295) {
    JsonRecord r = parsed(R"({"zero":0,"max":4294967295,"over":4294967296,"neg":-1,"null":null})");
    EXPECT_EQ(*r.uint32("zero"), 0u);
    EXPECT_EQ(*r.uint32("max"), 4294967295u);
    EXPECT_EQ(*r.optional_uint32("max"), std::optional<std::uint32_t>(4294967295u));
    const std::string range = ": must be an integer from 0 to 4294967295";
    expect_refused(r.uint32("over").error(), "test record over" + range);
    expect_refused(r.uint32("neg").error(), "test record neg" + range);
    expect_refused(r.optional_uint32("neg").error(), "test record neg" + range);
    expect_refused(r.uint32("null").error(), "test record null" + range);
    EXPECT_EQ(*r.nullable_uint32("null"), std::nullopt);
    EXPECT_EQ(*r.nullable_uint32("zero"), std::optional<std::uint32_t>(0u));
    expect_refused(r.nullable_uint32("neg").error(), "test record neg" + range);
}

TEST(JsonRecord, ATimeIsWithinTheRecordRange) {
    const nlohmann::json j = {{"first", kMinRecordUnixMillis},
                              {"last", kMaxRecordUnixMillis},
                              {"late", kMaxRecordUnixMillis + 1},
                              {"early", -1},
                              {"huge", std::numeric_limits<std::uint64_t>::max()}};
    JsonRecord r = parsed(j.dump());
    EXPECT_EQ(*r.time("first"), 0);
    EXPECT_EQ(*r.time("last"), kMaxRecordUnixMillis);
    EXPECT_EQ(*r.optional_time("last"), std::optional<std::int64_t>(kMaxRecordUnixMillis));
    const std::string bounds =
        " ms since the epoch is outside 1970-01-01T00:00:00.000Z..2099-12-31T23:59:59.999Z";
    expect_refused(r.time("late").error(), "test record late: time 4102444800000" + bounds);
    expect_refused(r.optional_time("early").error(), "test record early: time -1" + bounds);
    expect_refused(r.time("huge").error(),
                   "test record huge: time 18446744073709551615 ms since the epoch is out of "
                   "range");
}

TEST(JsonRecord, ABooleanIsTrueOrFalse) {
    JsonRecord r = parsed(R"({"t":true,"f":false,"one":1})");
    EXPECT_TRUE(*r.boolean("t"));
    EXPECT_FALSE(*r.boolean("f"));
    expect_refused(r.boolean("one").error(), "test record one: must be true or false");
}

std::optional<int> digit_from_name(std::string_view name) {
    if (name == "one") return 1;
    if (name == "two") return 2;
    return std::nullopt;
}

TEST(JsonRecord, ANameIsOneOfTheKnownNames) {
    JsonRecord r = parsed(R"({"known":"two","unknown":"three","number":2})");
    EXPECT_EQ(*r.one_of("known", digit_from_name), 2);
    expect_refused(r.one_of("unknown", digit_from_name).error(),
                   "test record unknown: unknown \"three\"");
    expect_refused(r.one_of("number", digit_from_name).error(),
                   "test record number: must be a string");
    expect_refused(r.one_of("absent", digit_from_name).error(), "test record absent: is missing");
}

TEST(JsonRecord, HexBytesHaveTheirExactLength) {
    JsonRecord r = parsed(
        R"({"ok":"0a0B","short":"0a","long":"0a0b0c","odd":"0a0","bad":"zz00","number":10})");
    EXPECT_EQ(*r.hex("ok", 2), (Bytes{0x0a, 0x0b}));
    const std::string two = ": must be 2 bytes in hex";
    expect_refused(r.hex("short", 2).error(), "test record short" + two);
    expect_refused(r.hex("long", 2).error(), "test record long" + two);
    expect_refused(r.hex("odd", 2).error(), "test record odd" + two);
    expect_refused(r.hex("bad", 2).error(), "test record bad" + two);
    expect_refused(r.hex("number", 2).error(), "test record number" + two);
}

TEST(JsonRecord, ANestedObjectIsReadWithItsOwnName) {
    JsonRecord r = parsed(R"({"inner":{"at":5,"x":1}})");
    auto inner = r.value("inner");
    ASSERT_TRUE(inner.ok());
    auto nested = JsonRecord::of(*inner, {"inner record", ErrorKind::integrity, "test.bad_record"});
    ASSERT_TRUE(nested.ok());
    EXPECT_EQ(*nested->time("at"), 5);
    expect_refused(nested->finish().error(), "inner record: unknown member \"x\"");
    EXPECT_TRUE(r.finish().ok());
}

TEST(JsonRecord, ErrorsNameTheRecordAndTheMember) {
    JsonRecord r = parsed("{}");
    expect_refused(r.error("algorithm", "unknown algorithm \"X\""),
                   "test record algorithm: unknown algorithm \"X\"");
}

}  // namespace
}  // namespace licentra::core
