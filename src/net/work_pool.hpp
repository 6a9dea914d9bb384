// A pool of threads for blocking work (HSM calls), so io_context threads never block.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>

namespace licentra::net {

// Runs posted jobs on `threads` dedicated threads, FIFO. A Handler typically posts a job that
// does the blocking call and then calls its `done` callback; the session posts that completion
// back onto its own strand, so results return to the connection's executor.
//
// Deadlines: a job posted with a deadline that has not finished by then is overrun. Its
// on_overrun callback runs once, on the pool's watchdog thread (the caller answers the client
// from there); a job still queued is dropped; the thread running it is written off (it keeps
// running the job, which a blocked PKCS#11 call can make last indefinitely) and a replacement
// thread starts, while at most `max_replacements` written-off threads are alive. A written-off
// thread whose job returns serves again if the pool is short of threads, else it ends. So a
// hung module absorbs at most threads + max_replacements threads, never the io threads.
//
// Thread-safety: post(), stop() and the accessors may be called from any thread.
class WorkPool {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kSameAsThreads = std::numeric_limits<std::size_t>::max();

    // threads >= 1; max_queued jobs waiting (0 = unbounded); max_replacements: written-off
    // threads alive at once (kSameAsThreads = `threads`). The daemon sizes threads to the HSM
    // session pool so no job waits for a session while holding a thread.
    // name: threads are named "<name>-N" (N counts every thread the pool started, so a
    // replacement gets a new number) and the watchdog "<name>-watch".
    explicit WorkPool(std::size_t threads, std::size_t max_queued = 0,
                      std::size_t max_replacements = kSameAsThreads, std::string name = "work");
    // Runs every job already queued, then joins (threads still stuck in an overrun job are
    // detached; they end when their job returns).
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    // Queues job. Returns false, without running it, when the queue is full or the pool is
    // stopping: the caller answers 503 (ProblemKind::overloaded). A job must not throw; if it
    // does, the exception is swallowed and counted.
    [[nodiscard]] bool post(std::function<void()> job);
    // As post(), with a deadline (see the class comment). on_overrun must not block for long
    // and must not throw; it is not called when the job finished in time.
    [[nodiscard]] bool post(std::function<void()> job, Clock::time_point deadline,
                            std::function<void()> on_overrun);

    // Stops accepting jobs, finishes the queued ones, joins. Idempotent. Must not be called
    // from a pool thread.
    void stop();

    [[nodiscard]] std::size_t threads() const noexcept { return threads_; }
    [[nodiscard]] std::size_t queued() const;
    [[nodiscard]] std::size_t busy() const;
    [[nodiscard]] std::uint64_t exceptions() const;
    // Written-off threads still inside their job, and jobs overrun so far.
    [[nodiscard]] std::size_t stuck() const;
    [[nodiscard]] std::uint64_t overruns() const;

  private:
    struct State;
    std::size_t threads_;
    std::shared_ptr<State> state_;
    std::thread watchdog_;
};

}  // namespace licentra::net
