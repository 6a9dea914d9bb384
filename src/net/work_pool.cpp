#include "net/work_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/thread_name.hpp"

namespace licentra::net {

namespace {

struct Job {
    std::function<void()> fn;
    std::optional<WorkPool::Clock::time_point> deadline;
    std::function<void()> on_overrun;
};

// One thread and what it runs. Lives in State::slots (a list: stable addresses) until the
// thread ended and was joined.
struct Slot {
    std::thread thread;
    bool running = false;
    std::optional<WorkPool::Clock::time_point> deadline;
    std::function<void()> on_overrun;
    bool written_off = false;
    bool exited = false;
};

}  // namespace

struct WorkPool::State {
    std::mutex mutex;
    std::condition_variable cv;        // workers: a job or stop
    std::condition_variable watch_cv;  // watchdog: a new deadline or stop
    // When the sleeping watchdog wakes next. A deadline at or after it needs no wake-up: the
    // watchdog sees it then (with one call_timeout for every job, deadlines arrive in order, so
    // under load the watchdog wakes about once per call_timeout, not once per job).
    Clock::time_point watch_wake = Clock::time_point::min();
    std::deque<Job> jobs;
    std::list<Slot> slots;
    std::size_t max_queued = 0;
    std::size_t target = 1;  // threads that should be serving
    std::size_t max_replacements = 1;
    std::size_t serving = 0;  // threads not written off
    std::size_t stuck = 0;    // written-off threads still inside their job
    std::size_t busy = 0;
    std::uint64_t exceptions = 0;
    std::uint64_t overruns = 0;
    bool stopping = false;
    bool stopped = false;
    std::string name;
    std::uint64_t started = 0;  // threads started, for their names

    // Starts one more serving thread; mutex held.
    void spawn(const std::shared_ptr<State>& self) {
        Slot& slot = slots.emplace_back();
        try {
            slot.thread = std::thread([self, &slot, n = name + "-" + std::to_string(started)] {
                core::name_this_thread(n);
                self->run(slot);
            });
            ++started;
            ++serving;
        } catch (...) {
            slots.pop_back();  // no thread: the pool runs short until a stuck one returns
        }
    }

    void run(Slot& slot) {
        std::unique_lock lock(mutex);
        for (;;) {
            cv.wait(lock, [this] { return stopping || !jobs.empty(); });
            if (jobs.empty()) {  // stopping and drained
                --serving;
                slot.exited = true;
                return;
            }
            Job job = std::move(jobs.front());
            jobs.pop_front();
            slot.running = true;
            slot.deadline = job.deadline;
            slot.on_overrun = std::move(job.on_overrun);
            ++busy;
            lock.unlock();
            bool threw = false;
            try {
                job.fn();
            } catch (...) {
                threw = true;
            }
            job.fn = nullptr;  // release captures outside the lock
            lock.lock();
            --busy;
            if (threw) ++exceptions;
            slot.running = false;
            slot.deadline.reset();
            slot.on_overrun = nullptr;
            if (slot.written_off) {
                --stuck;
                if (serving < target && !stopping) {
                    slot.written_off = false;  // the pool is short: serve again
                    ++serving;
                } else {
                    slot.exited = true;
                    watch_cv.notify_one();  // to be joined
                    return;
                }
            }
        }
    }

    void watch(const std::shared_ptr<State>& self) {
        std::unique_lock lock(mutex);
        while (!stopping) {
            const auto now = Clock::now();
            std::vector<std::function<void()>> overrun;
            for (auto it = jobs.begin(); it != jobs.end();) {
                if (it->deadline && *it->deadline <= now) {
                    ++overruns;
                    overrun.push_back(std::move(it->on_overrun));
                    it = jobs.erase(it);
                } else {
                    ++it;
                }
            }
            for (auto& s : slots) {
                if (s.running && !s.written_off && s.deadline && *s.deadline <= now) {
                    s.written_off = true;
                    --serving;
                    ++stuck;
                    ++overruns;
                    overrun.push_back(std::move(s.on_overrun));
                    s.on_overrun = nullptr;
                }
            }
            while (serving < target && serving + stuck < target + max_replacements) {
                const std::size_t before = serving;
                spawn(self);
                if (serving == before) break;
            }
            for (auto it = slots.begin(); it != slots.end();) {
                if (it->exited && it->thread.joinable()) {
                    it->thread.join();  // it has left run() and holds no lock
                    it = slots.erase(it);
                } else {
                    ++it;
                }
            }
            if (!overrun.empty()) {
                lock.unlock();
                for (auto& f : overrun) {
                    if (f) f();
                }
                lock.lock();
                continue;
            }
            auto wake = now + std::chrono::seconds(1);
            for (const auto& j : jobs) {
                if (j.deadline) wake = std::min(wake, *j.deadline);
            }
            for (const auto& s : slots) {
                if (s.running && !s.written_off && s.deadline) wake = std::min(wake, *s.deadline);
            }
            watch_wake = wake;
            watch_cv.wait_until(lock, wake);
            watch_wake = Clock::time_point::min();  // awake: every deadline is looked at
        }
    }
};

WorkPool::WorkPool(std::size_t threads, std::size_t max_queued, std::size_t max_replacements,
                   std::string name)
    : threads_(threads == 0 ? 1 : threads), state_(std::make_shared<State>()) {
    state_->name = std::move(name);
    state_->max_queued = max_queued;
    state_->target = threads_;
    state_->max_replacements = max_replacements == kSameAsThreads ? threads_ : max_replacements;
    {
        std::lock_guard lock(state_->mutex);
        for (std::size_t i = 0; i < threads_; ++i) state_->spawn(state_);
    }
    watchdog_ = std::thread([s = state_] {
        core::name_this_thread(s->name + "-watch");
        s->watch(s);
    });
}

WorkPool::~WorkPool() { stop(); }

bool WorkPool::post(std::function<void()> job) {
    {
        std::lock_guard lock(state_->mutex);
        if (state_->stopping) return false;
        if (state_->max_queued != 0 && state_->jobs.size() >= state_->max_queued) return false;
        state_->jobs.push_back(Job{std::move(job), std::nullopt, {}});
    }
    state_->cv.notify_one();
    return true;
}

bool WorkPool::post(std::function<void()> job, Clock::time_point deadline,
                    std::function<void()> on_overrun) {
    bool wake_watchdog = false;
    {
        std::lock_guard lock(state_->mutex);
        if (state_->stopping) return false;
        if (state_->max_queued != 0 && state_->jobs.size() >= state_->max_queued) return false;
        state_->jobs.push_back(Job{std::move(job), deadline, std::move(on_overrun)});
        wake_watchdog = deadline < state_->watch_wake;
    }
    state_->cv.notify_one();
    if (wake_watchdog) state_->watch_cv.notify_one();
    return true;
}

void WorkPool::stop() {
    {
        std::lock_guard lock(state_->mutex);
        if (state_->stopped) return;
        state_->stopping = true;
        state_->stopped = true;
    }
    state_->cv.notify_all();
    state_->watch_cv.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    std::vector<std::thread> to_join;
    {
        std::lock_guard lock(state_->mutex);
        for (auto& s : state_->slots) {
            if (!s.thread.joinable()) continue;
            if (s.written_off && s.running) {
                s.thread.detach();  // stuck in the module; it keeps the state alive
            } else {
                to_join.push_back(std::move(s.thread));
            }
        }
    }
    for (auto& t : to_join) t.join();
}

std::size_t WorkPool::queued() const {
    std::lock_guard lock(state_->mutex);
    return state_->jobs.size();
}

std::size_t WorkPool::busy() const {
    std::lock_guard lock(state_->mutex);
    return state_->busy;
}

std::uint64_t WorkPool::exceptions() const {
    std::lock_guard lock(state_->mutex);
    return state_->exceptions;
}

std::size_t WorkPool::stuck() const {
    std::lock_guard lock(state_->mutex);
    return state_->stuck;
}

std::uint64_t WorkPool::overruns() const {
    std::lock_guard lock(state_->mutex);
    return state_->overruns;
}

}  // namespace licentra::net
