#include "net/work_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace licentra::net {
namespace {

TEST(WorkPool, RunsJobsOffTheCallingThread) {
    WorkPool pool(2);
    std::promise<std::thread::id> where;
    ASSERT_TRUE(pool.post([&] { where.set_value(std::this_thread::get_id()); }));
    EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
}

TEST(WorkPool, RunsEveryQueuedJobBeforeStopReturns) {
    std::atomic<int> done{0};
    {
        WorkPool pool(2);
        for (int i = 0; i < 100; ++i) {
            ASSERT_TRUE(pool.post([&] { done.fetch_add(1); }));
        }
        pool.stop();
        EXPECT_FALSE(pool.post([] {}));
    }
    EXPECT_EQ(done.load(), 100);
}

TEST(WorkPool, BoundedQueueRefusesWhenFull) {
    WorkPool pool(1, 1);
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::promise<void> started;
    ASSERT_TRUE(pool.post([&, gate] {
        started.set_value();
        gate.wait();
    }));
    started.get_future().wait();
    EXPECT_TRUE(pool.post([] {}));   // queued
    EXPECT_FALSE(pool.post([] {}));  // queue full
    release.set_value();
}

TEST(WorkPool, SwallowsAndCountsExceptions) {
    WorkPool pool(1);
    ASSERT_TRUE(pool.post([] { throw std::runtime_error("x"); }));
    std::promise<void> after;
    ASSERT_TRUE(pool.post([&] { after.set_value(); }));
    after.get_future().wait();
    EXPECT_EQ(pool.exceptions(), 1u);
}

}  // namespace
}  // namespace licentra::net
