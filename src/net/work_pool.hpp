// A fixed pool of threads for blocking work (HSM calls), so io_context threads never block.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace licentra::net {

// Runs posted jobs on `threads` dedicated threads, FIFO. A Handler typically posts a job that
// does the blocking call and then calls its `done` callback; the session posts that completion
// back onto its own strand, so results return to the connection's executor.
//
// Thread-safety: post(), stop() and the accessors may be called from any thread.
class WorkPool {
  public:
    // threads >= 1; max_queued jobs waiting (0 = unbounded). The daemon sizes threads to the
    // HSM session pool so no job waits for a session while holding a thread.
    explicit WorkPool(std::size_t threads, std::size_t max_queued = 0);
    // Runs every job already queued, then joins.
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    // Queues job. Returns false, without running it, when the queue is full or the pool is
    // stopping: the caller answers 503 (ProblemKind::overloaded). A job must not throw; if it
    // does, the exception is swallowed and counted.
    [[nodiscard]] bool post(std::function<void()> job);

    // Stops accepting jobs, finishes the queued ones, joins. Idempotent. Must not be called
    // from a pool thread.
    void stop();

    [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }
    [[nodiscard]] std::size_t queued() const;
    [[nodiscard]] std::size_t busy() const;
    [[nodiscard]] std::uint64_t exceptions() const;

  private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::size_t max_queued_;
    std::size_t busy_ = 0;
    std::uint64_t exceptions_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace licentra::net
