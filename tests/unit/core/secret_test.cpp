#include "core/secret.hpp"

#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace licentra::core {
namespace {

TEST(SecretFile, ReadsPinFromPrivateFileAndStripsNewline) {
    test::TempDir dir;
    auto path = dir.path() / "pin";
    test::write_file(path, "123456\n", 0600);
    auto pin = read_secret_file(path);
    ASSERT_TRUE(pin.ok()) << pin.error().to_string();
    EXPECT_TRUE(pin->equals(as_bytes("123456")));
}

TEST(SecretFile, RefusesGroupOrWorldReadableFile) {
    test::TempDir dir;
    auto path = dir.path() / "pin";
    test::write_file(path, "123456", 0644);
    auto pin = read_secret_file(path);
    ASSERT_FALSE(pin.ok());
    EXPECT_EQ(pin.error().code, "secret.permissions");
    EXPECT_EQ(pin.error().message.find("123456"), std::string::npos);
}

TEST(SecretFile, RefusesMissingEmptyAndDirectory) {
    test::TempDir dir;
    EXPECT_EQ(read_secret_file(dir.path() / "none").error().code, "secret.unreadable");
    test::write_file(dir.path() / "empty", "", 0600);
    EXPECT_EQ(read_secret_file(dir.path() / "empty").error().code, "secret.size");
    EXPECT_FALSE(read_secret_file(dir.path()).ok());
}

TEST(SecretBytes, MoveLeavesSourceEmptyAndComparesExactly) {
    SecretBytes a(as_bytes("secret"));
    SecretBytes b(std::move(a));
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT_TRUE(b.equals(as_bytes("secret")));
    EXPECT_FALSE(b.equals(as_bytes("secreT")));
    EXPECT_FALSE(b.equals(as_bytes("secret2")));
}

}  // namespace
}  // namespace licentra::core
