// The control-file grammar of the fault-injecting PKCS#11 module: pure parsing, no module.
#include "p11fault/control.hpp"

#include <gtest/gtest.h>

namespace licentra::p11fault {
namespace {

using std::chrono::microseconds;

TEST(P11FaultControl, ParsesEveryExampleOfTheGrammar) {
    const auto c = parse_control(
        "# faults for the sign path\n"
        "C_Sign rv=CKR_DEVICE_ERROR every\n"
        "C_Sign rv=CKR_SESSION_HANDLE_INVALID nth=5\n"
        "C_FindObjectsInit rv=CKR_GENERAL_ERROR probability=0.25   # a quarter\n"
        "C_Sign delay=5ms\n"
        "\n"
        "C_Sign delay=2ms jitter=3ms\n"
        "C_Login hang\n"
        "* rv=CKR_TOKEN_NOT_PRESENT every\n"
        "C_Sign rv=0x30\n");
    ASSERT_TRUE(c.errors.empty()) << c.errors[0].message;
    ASSERT_EQ(c.rules.size(), 8U);
    EXPECT_EQ(c.rules[0].line, 2U);
    EXPECT_EQ(c.rules[0].function, Fn::C_Sign);
    EXPECT_EQ(c.rules[0].rv, CKR_DEVICE_ERROR);
    EXPECT_EQ(c.rules[0].trigger, Trigger::every);
    EXPECT_EQ(c.rules[1].rv, CKR_SESSION_HANDLE_INVALID);
    EXPECT_EQ(c.rules[1].trigger, Trigger::nth);
    EXPECT_EQ(c.rules[1].nth, 5U);
    EXPECT_EQ(c.rules[2].function, Fn::C_FindObjectsInit);
    EXPECT_EQ(c.rules[2].trigger, Trigger::probability);
    EXPECT_DOUBLE_EQ(c.rules[2].probability, 0.25);
    EXPECT_EQ(c.rules[3].delay, microseconds(5000));
    EXPECT_FALSE(c.rules[3].rv.has_value());
    EXPECT_EQ(c.rules[4].line, 7U);
    EXPECT_EQ(c.rules[4].delay, microseconds(2000));
    EXPECT_EQ(c.rules[4].jitter, microseconds(3000));
    EXPECT_EQ(c.rules[5].function, Fn::C_Login);
    EXPECT_TRUE(c.rules[5].hang);
    EXPECT_FALSE(c.rules[6].function.has_value());
    EXPECT_EQ(c.rules[6].rv, CKR_TOKEN_NOT_PRESENT);
    EXPECT_EQ(c.rules[7].rv, CKR_DEVICE_ERROR);  // 0x30
}

TEST(P11FaultControl, WildcardLeavesOutInitializationAndFinalization) {
    const auto c = parse_control("* rv=CKR_DEVICE_ERROR\nC_Finalize rv=CKR_GENERAL_ERROR\n");
    ASSERT_EQ(c.rules.size(), 2U);
    EXPECT_TRUE(c.rules[0].applies_to(Fn::C_Sign));
    EXPECT_TRUE(c.rules[0].applies_to(Fn::C_WaitForSlotEvent));
    EXPECT_FALSE(c.rules[0].applies_to(Fn::C_Initialize));
    EXPECT_FALSE(c.rules[0].applies_to(Fn::C_Finalize));
    EXPECT_FALSE(c.rules[0].applies_to(Fn::C_GetFunctionList));
    EXPECT_TRUE(c.rules[1].applies_to(Fn::C_Finalize));  // named explicitly
    EXPECT_FALSE(c.rules[1].applies_to(Fn::C_Sign));
}

TEST(P11FaultControl, EveryMalformedLineIsReportedWithItsNumberAndTheRestIsKept) {
    const auto c = parse_control(
        "C_Sign rv=CKR_DEVICE_ERROR\n"                      // 1 ok
        "C_Sing rv=CKR_DEVICE_ERROR\n"                      // 2 unknown function
        "C_Sign rv=CKR_NOPE\n"                              // 3 unknown rv
        "C_Sign rv=CKR_OK\n"                                // 4 success is not a fault
        "C_Sign nth=0 rv=CKR_DEVICE_ERROR\n"                // 5
        "C_Sign probability=1.5 delay=1ms\n"                // 6
        "C_Sign every\n"                                    // 7 no action
        "C_Sign jitter=1ms\n"                               // 8 jitter without delay
        "C_Sign hang rv=CKR_DEVICE_ERROR\n"                 // 9
        "C_Sign delay=5\n"                                  // 10 no unit
        "C_Sign rv=CKR_DEVICE_ERROR nth=2 every\n"          // 11 two triggers
        "C_Sign bogus\n"                                    // 12
        "C_GetFunctionList rv=CKR_DEVICE_ERROR\n"           // 13
        "C_Sign rv=CKR_DEVICE_ERROR rv=CKR_DEVICE_ERROR\n"  // 14
        "C_Login delay=-1ms\n"                              // 15
        "C_Login delay=2ms\n");                             // 16 ok
    ASSERT_EQ(c.rules.size(), 2U);
    EXPECT_EQ(c.rules[0].line, 1U);
    EXPECT_EQ(c.rules[1].line, 16U);
    ASSERT_EQ(c.errors.size(), 14U);
    for (std::size_t i = 0; i < c.errors.size(); ++i) {
        EXPECT_EQ(c.errors[i].line, i + 2) << c.errors[i].message;
        EXPECT_FALSE(c.errors[i].message.empty());
    }
    EXPECT_EQ(c.errors[0].text, "C_Sing rv=CKR_DEVICE_ERROR");
    EXPECT_NE(c.errors[0].message.find("C_Sing"), std::string::npos);
}

TEST(P11FaultControl, ReturnValuesByNameShortNameOrNumber) {
    EXPECT_EQ(parse_rv("CKR_SESSION_CLOSED"), CKR_SESSION_CLOSED);
    EXPECT_EQ(parse_rv("SESSION_CLOSED"), CKR_SESSION_CLOSED);
    EXPECT_EQ(parse_rv("0xB0"), CKR_SESSION_CLOSED);
    EXPECT_EQ(parse_rv("176"), CKR_SESSION_CLOSED);
    EXPECT_EQ(parse_rv("0x80000001"), CKR_VENDOR_DEFINED + 1);
    for (const char* name :
         {"CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_CLOSED", "CKR_DEVICE_ERROR",
          "CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_USER_NOT_LOGGED_IN",
          "CKR_GENERAL_ERROR", "CKR_DEVICE_MEMORY", "CKR_OBJECT_HANDLE_INVALID",
          "CKR_KEY_HANDLE_INVALID", "CKR_FUNCTION_FAILED", "CKR_MECHANISM_INVALID"}) {
        const auto rv = parse_rv(name);
        ASSERT_TRUE(rv.has_value()) << name;
        EXPECT_EQ(rv_name(*rv), name);
    }
    EXPECT_FALSE(parse_rv("CKR_OK").has_value());
    EXPECT_FALSE(parse_rv("0").has_value());
    EXPECT_FALSE(parse_rv("0x").has_value());
    EXPECT_FALSE(parse_rv("12abc").has_value());
    EXPECT_FALSE(parse_rv("").has_value());
    EXPECT_EQ(rv_name(0x80000001UL), "0x80000001");
}

TEST(P11FaultControl, Durations) {
    EXPECT_EQ(parse_duration("5ms"), microseconds(5000));
    EXPECT_EQ(parse_duration("1.5ms"), microseconds(1500));
    EXPECT_EQ(parse_duration("250us"), microseconds(250));
    EXPECT_EQ(parse_duration("2s"), microseconds(2'000'000));
    EXPECT_EQ(parse_duration("0ms"), microseconds(0));
    EXPECT_FALSE(parse_duration("5").has_value());
    EXPECT_FALSE(parse_duration("ms").has_value());
    EXPECT_FALSE(parse_duration("5m").has_value());
    EXPECT_FALSE(parse_duration("-1ms").has_value());
    EXPECT_FALSE(parse_duration("2h").has_value());
    EXPECT_FALSE(parse_duration("3601s").has_value());
}

TEST(P11FaultControl, EmptyAndCommentOnlyTextHasNoRules) {
    for (const char* text : {"", "\n\n", "# nothing\n   # indented\n", "   \t\n"}) {
        const auto c = parse_control(text);
        EXPECT_TRUE(c.rules.empty()) << text;
        EXPECT_TRUE(c.errors.empty()) << text;
    }
}

}  // namespace
}  // namespace licentra::p11fault
