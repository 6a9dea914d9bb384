#include "core/bytes.hpp"

#include <gtest/gtest.h>

namespace licentra::core {
namespace {

// RFC 4648 §10 test vectors.
TEST(Base64, EncodesRfc4648Vectors) {
    EXPECT_EQ(base64_encode(as_bytes("")), "");
    EXPECT_EQ(base64_encode(as_bytes("f")), "Zg==");
    EXPECT_EQ(base64_encode(as_bytes("fo")), "Zm8=");
    EXPECT_EQ(base64_encode(as_bytes("foo")), "Zm9v");
    EXPECT_EQ(base64_encode(as_bytes("foobar")), "Zm9vYmFy");
}

TEST(Base64, RoundTripsAllLengths) {
    Bytes data;
    for (int i = 0; i < 70; ++i) {
        auto enc = base64_encode(data);
        auto dec = base64_decode(enc);
        ASSERT_TRUE(dec.ok()) << enc;
        EXPECT_EQ(*dec, data);
        auto encu = base64url_encode(data);
        auto decu = base64url_decode(encu);
        ASSERT_TRUE(decu.ok()) << encu;
        EXPECT_EQ(*decu, data);
        data.push_back(static_cast<std::uint8_t>(i * 37 + 250));
    }
}

TEST(Base64, RejectsMalformedInput) {
    EXPECT_FALSE(base64_decode("Zg=").ok());   // wrong length
    EXPECT_FALSE(base64_decode("Zh==").ok());  // non-canonical trailing bits
    EXPECT_FALSE(base64_decode("Z===").ok());  // too much padding
    EXPECT_FALSE(base64_decode("Zm 9").ok());  // whitespace
    EXPECT_FALSE(base64_decode("Zm-_").ok());  // url alphabet in std base64
    EXPECT_FALSE(base64_decode("=Zm9").ok());  // padding at start
}

TEST(Base64Url, RejectsPaddingAndStdAlphabet) {
    EXPECT_EQ(base64url_encode(Bytes{0xfb, 0xff}), "-_8");
    EXPECT_FALSE(base64url_decode("Zg==").ok());
    EXPECT_FALSE(base64url_decode("+/8").ok());
    EXPECT_FALSE(base64url_decode("A").ok());
    EXPECT_FALSE(base64url_decode("-_9").ok());  // trailing bits set
}

TEST(Hex, RoundTripsAndRejectsBadInput) {
    EXPECT_EQ(hex_encode(Bytes{0x00, 0xab, 0xff}), "00abff");
    EXPECT_EQ(*hex_decode("00ABff"), (Bytes{0x00, 0xab, 0xff}));
    EXPECT_FALSE(hex_decode("abc").ok());
    EXPECT_FALSE(hex_decode("zz").ok());
}

}  // namespace
}  // namespace licentra::core
