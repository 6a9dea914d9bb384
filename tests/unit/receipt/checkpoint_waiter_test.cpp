// CheckpointWaiter answers each wait exactly once: when a checkpoint covers it, at its deadline,
// or at stop(); WaiterAnchor feeds it from the checkpoints the log stores.
#include "audit/checkpoint_waiter.hpp"

#include <gtest/gtest.h>

#include <future>

#include "unit/receipt/receipt_fixture.hpp"

namespace licentra::audit {
namespace {

using Clock = CheckpointWaiter::Clock;
constexpr auto kLongAgo = std::chrono::hours(1);

// A wait whose answer the test can block on (no sleeping: the future is the condition).
struct Answer {
    std::promise<bool> promise;
    std::future<bool> future = promise.get_future();
    CheckpointWaiter::Callback callback() {
        return [this](bool covered) { promise.set_value(covered); };
    }
};

TEST(CheckpointWaiter, AnswersAtOnceWhenAlreadyCovered) {
    CheckpointWaiter waiter(5);
    Answer a;
    waiter.wait(5, Clock::now() + kLongAgo, a.callback());
    ASSERT_EQ(a.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_TRUE(a.future.get());
}

TEST(CheckpointWaiter, AnswersTrueWhenACheckpointCoversTheSize) {
    CheckpointWaiter waiter(3);
    Answer small, large;
    waiter.wait(4, Clock::now() + kLongAgo, small.callback());
    waiter.wait(9, Clock::now() + kLongAgo, large.callback());
    waiter.advance(2);  // older than what is known: ignored
    EXPECT_EQ(waiter.covered(), 3u);
    waiter.advance(4);
    EXPECT_TRUE(small.future.get());
    EXPECT_EQ(large.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
    waiter.advance(10);
    EXPECT_TRUE(large.future.get());
    EXPECT_EQ(waiter.covered(), 10u);
}

TEST(CheckpointWaiter, AnswersFalseAtTheDeadline) {
    CheckpointWaiter waiter(0);
    Answer late, later;
    waiter.wait(1, Clock::now() - std::chrono::milliseconds(1), late.callback());
    waiter.wait(1, Clock::now() + kLongAgo, later.callback());
    EXPECT_FALSE(late.future.get());
    // The other wait is still pending and is answered by the checkpoint.
    waiter.advance(1);
    EXPECT_TRUE(later.future.get());
}

TEST(CheckpointWaiter, StopAnswersEveryPendingWaitAndEveryLaterOne) {
    CheckpointWaiter waiter(0);
    Answer pending, after;
    waiter.wait(7, Clock::now() + kLongAgo, pending.callback());
    waiter.stop();
    ASSERT_EQ(pending.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_FALSE(pending.future.get());
    waiter.wait(7, Clock::now() + kLongAgo, after.callback());
    ASSERT_EQ(after.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_FALSE(after.future.get());
    waiter.stop();  // idempotent
}

class RecordingAnchor final : public CheckpointAnchor {
  public:
    core::Result<std::optional<std::string>> load() override { return stored; }
    core::Status store(std::string_view note) override {
        stored = std::string(note);
        return core::ok_status();
    }
    std::optional<std::string> stored;
};

TEST(CheckpointWaiter, TheAnchorDecoratorTellsTheWaiterEveryStoredCheckpoint) {
    test::SignedLog log;
    for (int i = 0; i < 4; ++i) log.add_token("t" + std::to_string(i));
    CheckpointWaiter waiter(0);
    RecordingAnchor inner;
    WaiterAnchor anchor(&inner, waiter);
    Answer a;
    waiter.wait(4, Clock::now() + kLongAgo, a.callback());
    ASSERT_TRUE(anchor.store(log.note()).ok());
    EXPECT_TRUE(a.future.get());
    EXPECT_EQ(waiter.covered(), 4u);
    EXPECT_EQ(inner.stored, log.note());
    EXPECT_EQ(anchor.load().value(), log.note());
    // Without an inner anchor (tests) it still tells the waiter.
    WaiterAnchor alone(nullptr, waiter);
    log.add_token("t4");
    ASSERT_TRUE(alone.store(log.note()).ok());
    EXPECT_EQ(waiter.covered(), 5u);
    EXPECT_FALSE(alone.load().value().has_value());
}

}  // namespace
}  // namespace licentra::audit
