// Readers of the key state (the JWKS, the readiness probe) run on other threads than the
// refresh that replaces it: each must keep the state it reads alive while it reads it.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "hsm/hsm.hpp"
#include "keys/key_manager.hpp"
#include "policy/loader.hpp"
#include "support/softhsm.hpp"

namespace licentra::keys {
namespace {

TEST(KeyManagerSnapshots, ReadersIterateSafelyWhileRefreshesReplaceTheState) {
    test::SoftHsmToken fixture;
    auto module = hsm::Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok()) << module.error().to_string();
    hsm::TokenOptions options;
    options.uri = fixture.uri();
    auto token = hsm::Token::open(*module, options);
    ASSERT_TRUE(token.ok()) << token.error().to_string();
    auto created =
        KeyManager::create(hsm_key_store(std::shared_ptr<hsm::Token>(std::move(*token))),
                           [](const crypto::PublicKey&) { return std::string("kid-1"); });
    ASSERT_TRUE(created.ok()) << created.error().to_string();
    KeyManager& km = **created;
    const auto policy = policy::load_policy_file(std::filesystem::path(LICENTRA_SOURCE_DIR) /
                                                 "policy" / "policy.example.yaml");
    ASSERT_TRUE(policy.ok());
    auto grant = policy.engine->system_grant("product-a", policy::Engine::SystemPurpose::bootstrap);
    ASSERT_TRUE(grant.ok()) << grant.error().to_string();
    ASSERT_TRUE(km.bootstrap(*grant, crypto::Algorithm::EdDSA).ok());

    // Every refresh publishes a new state and drops the old one; readers iterate meanwhile.
    std::atomic<bool> stop{false};
    std::atomic<unsigned> refreshes{0};
    std::thread refresher([&] {
        while (!stop.load()) {
            if (km.refresh().ok()) refreshes.fetch_add(1);
        }
    });
    std::size_t reads = 0;
    std::size_t seen = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (refreshes.load() < 200 && std::chrono::steady_clock::now() < deadline) {
        seen += km.all_versions().size() + km.published(core::Clock::now()).size();
        ++reads;
    }
    stop.store(true);
    refresher.join();
    EXPECT_GE(refreshes.load(), 200u);
    EXPECT_EQ(seen, 2 * reads);  // product-a v1, active and published, in every read
}

}  // namespace
}  // namespace licentra::keys
