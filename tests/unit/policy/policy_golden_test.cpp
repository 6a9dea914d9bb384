// Pins the effective permission matrix of policy/policy.example.yaml.
// To regenerate after an intended change: LICENTRA_UPDATE_GOLDEN=1 ctest -R policy_golden
// (or run the test binary with that variable set), then review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "policy/loader.hpp"
#include "support/test_support.hpp"

namespace licentra::policy {
namespace {

TEST(PolicyGolden, ExamplePolicyMatrixMatchesTheGoldenFile) {
    const std::filesystem::path src(LICENTRA_SOURCE_DIR);
    PolicyLoad l = load_policy_file(src / "policy/policy.example.yaml");
    ASSERT_TRUE(l.ok()) << l.error().message;
    const std::string actual = l.engine->render_matrix();
    const auto golden = src / "tests/golden/policy/example-matrix.txt";
    const char* update = std::getenv("LICENTRA_UPDATE_GOLDEN");
    if (update != nullptr && std::string(update) == "1") {
        std::filesystem::create_directories(golden.parent_path());
        licentra::test::write_file(golden, actual, 0644);
        SUCCEED() << "golden file rewritten: " << golden;
        return;
    }
    ASSERT_TRUE(std::filesystem::exists(golden))
        << golden << " is missing; run with LICENTRA_UPDATE_GOLDEN=1 to create it";
    EXPECT_EQ(actual, licentra::test::read_file(golden))
        << "the effective matrix changed; if intended, regenerate with LICENTRA_UPDATE_GOLDEN=1";
}

}  // namespace
}  // namespace licentra::policy
