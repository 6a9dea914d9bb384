// Waiting for a signed checkpoint that covers an entry, without holding a thread per waiter.
//
// CheckpointWaiter keeps the size of the newest stored checkpoint (advance()) and a list of
// waits, each "call me once a checkpoint covers `size` entries, or at the deadline". One thread
// of its own answers them, so neither an io thread nor a worker thread ever blocks on a
// checkpoint. WaiterAnchor is the CheckpointAnchor decorator through which the audit log tells
// it about every checkpoint it stores (the log calls the anchor right after the checkpoint is
// durable and published by AuditLog::latest_checkpoint()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/anchor.hpp"
#include "core/result.hpp"

namespace licentra::audit {

class CheckpointWaiter {
  public:
    using Clock = std::chrono::steady_clock;
    // covered: a checkpoint covering the wait's size is stored (false at the deadline, or when
    // the waiter stopped).
    using Callback = std::function<void(bool covered)>;

    // covered: the size of the newest checkpoint already stored. Starts the thread.
    explicit CheckpointWaiter(std::uint64_t covered = 0);
    ~CheckpointWaiter();  // stop()
    CheckpointWaiter(const CheckpointWaiter&) = delete;
    CheckpointWaiter& operator=(const CheckpointWaiter&) = delete;

    // A checkpoint of `size` entries is stored (a smaller size than one seen before is ignored).
    // Quick; any thread (the log's checkpoint thread calls it).
    void advance(std::uint64_t size);
    [[nodiscard]] std::uint64_t covered() const;

    // done(true) once a checkpoint covers `size` entries, done(false) at `deadline` or at stop().
    // Runs done at once, on the calling thread, when it is already covered or the waiter is
    // stopped; else later on the waiter's thread. done runs exactly once, must be quick and
    // must not call stop(). Thread-safe.
    void wait(std::uint64_t size, Clock::time_point deadline, Callback done);

    // Answers every pending wait with false and joins the thread; later waits are answered at
    // once. Idempotent.
    void stop();

  private:
    struct Wait {
        std::uint64_t size = 0;
        Clock::time_point deadline;
        Callback done;
    };
    void run();

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::uint64_t covered_ = 0;
    bool stopping_ = false;
    std::vector<Wait> waits_;
    std::thread thread_;
};

// Forwards to `inner` (if any) and tells `waiter` the size of every checkpoint stored. The size
// is read from the note's body (the log only stores notes it signed).
class WaiterAnchor final : public CheckpointAnchor {
  public:
    WaiterAnchor(CheckpointAnchor* inner, CheckpointWaiter& waiter)
        : inner_(inner), waiter_(waiter) {}
    [[nodiscard]] core::Result<std::optional<std::string>> load() override;
    // The waiter learns of the checkpoint before the inner store: the note is already durable
    // in the log's checkpoints file, and a slow HSM must not hold receipts back.
    [[nodiscard]] core::Status store(std::string_view note) override;

  private:
    CheckpointAnchor* inner_;
    CheckpointWaiter& waiter_;
};

}  // namespace licentra::audit
