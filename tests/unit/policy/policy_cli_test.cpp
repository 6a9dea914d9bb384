// `licentra policy check`: the matrix it prints is the golden one; errors exit 1 with every
// diagnostic located; usage errors exit 2.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/loader.hpp"
#include "policy_test_util.hpp"
#include "support/test_support.hpp"

namespace licentra::policy {
namespace {

const std::filesystem::path kSource(LICENTRA_SOURCE_DIR);

TEST(PolicyCli, CheckPrintsShaAndTheGoldenMatrix) {
    const auto example = kSource / "policy/policy.example.yaml";
    std::string out;
    ASSERT_EQ(
        licentra::test::run_command({LICENTRA_CLI, "policy", "check", example.string()}, &out), 0)
        << out;
    PolicyLoad l = load_policy_file(example);
    ASSERT_TRUE(l.ok());
    const std::string golden =
        licentra::test::read_file(kSource / "tests/golden/policy/example-matrix.txt");
    EXPECT_EQ(out,
              "policy " + example.string() + "\nsha256 " + l.engine->sha256_hex() + "\n" + golden);
}

TEST(PolicyCli, CheckPrintsEveryErrorAndExitsOne) {
    licentra::test::TempDir dir;
    const auto path = dir.path() / "bad.yaml";
    std::string text = test::mutate("roles: [signer]", "roles: [sigher]");
    text = test::mutate("algorithm: EdDSA", "algorithm: RS256", text);
    licentra::test::write_file(path, text);
    std::string out;
    EXPECT_EQ(licentra::test::run_command({LICENTRA_CLI, "policy", "check", path.string()}, &out),
              1);
    EXPECT_NE(out.find(path.string() + ":18:13: principals[0].roles[0]: unknown role \"sigher\""),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("keys.product-a.algorithm: unknown algorithm \"RS256\""), std::string::npos)
        << out;
    EXPECT_NE(out.find("2 error(s)"), std::string::npos) << out;
}

TEST(PolicyCli, UsageErrorsExitTwo) {
    std::string out;
    EXPECT_EQ(licentra::test::run_command({LICENTRA_CLI, "policy"}, &out), 2);
    EXPECT_EQ(licentra::test::run_command({LICENTRA_CLI, "policy", "check"}, &out), 2);
    EXPECT_EQ(licentra::test::run_command({LICENTRA_CLI, "policy", "lint", "x"}, &out), 2);
    EXPECT_EQ(licentra::test::run_command({LICENTRA_CLI, "policy", "--help"}, &out), 0);
}

}  // namespace
}  // namespace licentra::policy
