#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "policy/holder.hpp"
#include "policy/rate_limiter.hpp"
#include "policy_test_util.hpp"
#include "support/test_support.hpp"

namespace licentra::policy {
namespace {

TEST(PolicyHolder, ReloadReplacesThePolicy) {
    licentra::test::TempDir dir;
    const auto path = dir.path() / "policy.yaml";
    licentra::test::write_file(path, test::kBasePolicy);
    auto first = load_policy_file(path);
    ASSERT_TRUE(first.ok());
    EngineHolder holder(first.engine);
    EXPECT_EQ(holder.current(), first.engine);

    licentra::test::write_file(path, test::kBasePolicy + "# v2\n");
    PolicyLoad second = holder.reload(path);
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(holder.current(), second.engine);
    EXPECT_NE(holder.current()->sha256(), first.engine->sha256());
}

TEST(PolicyHolder, FailedReloadKeepsTheOldPolicyAndSaysWhy) {
    licentra::test::TempDir dir;
    const auto path = dir.path() / "policy.yaml";
    licentra::test::write_file(path, test::kBasePolicy);
    auto first = load_policy_file(path);
    ASSERT_TRUE(first.ok());
    EngineHolder holder(first.engine);

    licentra::test::write_file(path, test::mutate("roles: [auditor]", "roles: [auditor, signer]"));
    PolicyLoad bad = holder.reload(path);
    ASSERT_FALSE(bad.ok());
    ASSERT_FALSE(bad.diagnostics.empty());
    EXPECT_NE(bad.error().message.find("exclusive"), std::string::npos);
    EXPECT_EQ(holder.current(), first.engine);

    std::filesystem::remove(path);
    EXPECT_FALSE(holder.reload(path).ok());
    EXPECT_EQ(holder.current(), first.engine);
}

TEST(PolicyHolder, ReadersNeverSeeAHalfPolicy) {
    licentra::test::TempDir dir;
    const auto a = dir.path() / "a.yaml";
    const auto b = dir.path() / "b.yaml";
    licentra::test::write_file(a, test::kBasePolicy);
    // In b, "ls" may sign "other" too: every snapshot must be internally consistent.
    licentra::test::write_file(b, test::mutate("keys: [\"product-*\"]", "keys: [\"*\"]"));
    auto pa = load_policy_file(a);
    auto pb = load_policy_file(b);
    ASSERT_TRUE(pa.ok() && pb.ok());
    EngineHolder holder(pa.engine);
    std::atomic<bool> stop{false};
    std::atomic<int> inconsistent{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
        readers.emplace_back([&] {
            while (!stop.load()) {
                auto e = holder.current();
                const bool other = e->check("ls", Action::token_sign, "other").ok();
                const bool is_b = e->sha256() == pb.engine->sha256();
                if (other != is_b) ++inconsistent;
            }
        });
    }
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(holder.reload(i % 2 ? a : b).ok());
    stop = true;
    for (auto& r : readers) r.join();
    EXPECT_EQ(inconsistent.load(), 0);
}

TEST(PolicyRateLimiter, AllowsTheBurstThenRefuses) {
    RateLimiter limiter;
    const RateLimit limit{2.0, 3};
    const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.acquire("ls", limit, t0).ok());
    auto s = limiter.acquire("ls", limit, t0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().kind, core::ErrorKind::limit);
    EXPECT_EQ(s.error().code, "policy.rate_limited");
    EXPECT_EQ(s.error().retry_after, std::chrono::seconds(1));  // one token in 0.5 s: 1 s
    // Other principals have their own bucket.
    EXPECT_TRUE(limiter.acquire("other", limit, t0).ok());
    // Half a second refills one token at 2/s.
    EXPECT_TRUE(limiter.acquire("ls", limit, t0 + std::chrono::milliseconds(500)).ok());
    EXPECT_FALSE(limiter.acquire("ls", limit, t0 + std::chrono::milliseconds(500)).ok());
    // Never more than the burst, however long the pause.
    const auto t1 = t0 + std::chrono::hours(10);
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.acquire("ls", limit, t1).ok());
    EXPECT_FALSE(limiter.acquire("ls", limit, t1).ok());
}

TEST(PolicyRateLimiter, RetryAfterIsTheWholeSecondsUntilTheNextToken) {
    RateLimiter limiter;
    const RateLimit slow{0.1, 1};  // one token every 10 s
    const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
    ASSERT_TRUE(limiter.acquire("ls", slow, t0).ok());
    auto s = limiter.acquire("ls", slow, t0);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().retry_after, std::chrono::seconds(10));
    auto later = limiter.acquire("ls", slow, t0 + std::chrono::milliseconds(7500));
    ASSERT_FALSE(later.ok());
    EXPECT_EQ(later.error().retry_after, std::chrono::seconds(3));  // 2.5 s left, rounded up
}

TEST(PolicyRateLimiter, UsesThePolicyLimitAndLeavesOthersUnlimited) {
    auto e = test::load_ok(test::kBasePolicy);
    ASSERT_NE(e, nullptr);
    RateLimiter limiter;
    const auto t = RateLimiter::Clock::now();
    const Principal& ls = *e->find_principal("ls");  // per_second 10, burst 2
    EXPECT_TRUE(limiter.acquire(ls, t).ok());
    EXPECT_TRUE(limiter.acquire(ls, t).ok());
    EXPECT_FALSE(limiter.acquire(ls, t).ok());
    const Principal& aud = *e->find_principal("aud");
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(limiter.acquire(aud, t).ok());
}

TEST(PolicyRateLimiter, IsThreadSafe) {
    RateLimiter limiter;
    const RateLimit limit{0.001, 1000};
    const auto t = RateLimiter::Clock::now();
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&] {
            for (int j = 0; j < 500; ++j) {
                if (limiter.acquire("ls", limit, t).ok()) ++granted;
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(granted.load(), 1000);
}

}  // namespace
}  // namespace licentra::policy
