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

TEST(WorkPool, OverrunJobIsReportedAndItsThreadReplaced) {
    WorkPool pool(1, 0, 1);
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::promise<void> overrun;
    ASSERT_TRUE(pool.post([gate] { gate.wait(); },
                          WorkPool::Clock::now() + std::chrono::milliseconds(50),
                          [&] { overrun.set_value(); }));
    ASSERT_EQ(overrun.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    // The stuck thread was replaced: the next job runs while the first one still blocks.
    std::promise<void> ran;
    ASSERT_TRUE(pool.post([&] { ran.set_value(); }));
    EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(pool.stuck(), 1u);
    EXPECT_EQ(pool.overruns(), 1u);
    release.set_value();
}

TEST(WorkPool, ReplacementsAreBoundedAndQueuedJobsPastTheirDeadlineAreDropped) {
    WorkPool pool(2, 0, 1);  // at most 2 + 1 threads
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<int> overruns{0};
    const auto in = [](int ms) { return WorkPool::Clock::now() + std::chrono::milliseconds(ms); };
    const auto wait_for_overruns = [&](int n) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (overruns.load() < n && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return overruns.load();
    };
    // Two hanging jobs take both threads; at their deadline one replacement starts and takes
    // the third hanging job.
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(pool.post([gate] { gate.wait(); }, in(50), [&] { overruns.fetch_add(1); }));
    }
    ASSERT_TRUE(pool.post([gate] { gate.wait(); }, in(300), [&] { overruns.fetch_add(1); }));
    EXPECT_EQ(wait_for_overruns(3), 3);
    EXPECT_EQ(pool.stuck(), 3u);
    // No fourth thread: a job waits in the queue and is dropped at its deadline.
    std::atomic<bool> late_ran{false};
    ASSERT_TRUE(pool.post([&] { late_ran = true; }, in(50), [&] { overruns.fetch_add(1); }));
    EXPECT_EQ(wait_for_overruns(4), 4);
    EXPECT_FALSE(late_ran.load());
    // Once the stuck jobs return, their threads serve again.
    release.set_value();
    std::promise<void> ran;
    ASSERT_TRUE(pool.post([&] { ran.set_value(); }));
    EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_FALSE(late_ran.load());
}

TEST(WorkPool, JobFinishedInTimeIsNotOverrun) {
    WorkPool pool(2);
    std::promise<void> done;
    std::atomic<bool> overrun{false};
    ASSERT_TRUE(pool.post([&] { done.set_value(); },
                          WorkPool::Clock::now() + std::chrono::milliseconds(100),
                          [&] { overrun = true; }));
    done.get_future().wait();
    // Past the deadline (the job has left its thread, or is about to): a later job that must
    // overrun proves the watchdog has looked at the deadline since, and still counts only it.
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> late;
    ASSERT_TRUE(pool.post([released] { released.wait(); },
                          WorkPool::Clock::now() + std::chrono::milliseconds(120),
                          [&] { late.set_value(); }));
    late.get_future().wait();
    release.set_value();
    EXPECT_FALSE(overrun);
    EXPECT_EQ(pool.overruns(), 1u);
}

}  // namespace
}  // namespace licentra::net
