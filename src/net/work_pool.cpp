#include "net/work_pool.hpp"

namespace licentra::net {

WorkPool::WorkPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    if (threads == 0) threads = 1;
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([this] { run(); });
    }
}

WorkPool::~WorkPool() { stop(); }

bool WorkPool::post(std::function<void()> job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return false;
        if (max_queued_ != 0 && jobs_.size() >= max_queued_) return false;
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
}

void WorkPool::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

std::size_t WorkPool::queued() const {
    std::lock_guard lock(mutex_);
    return jobs_.size();
}

std::size_t WorkPool::busy() const {
    std::lock_guard lock(mutex_);
    return busy_;
}

std::uint64_t WorkPool::exceptions() const {
    std::lock_guard lock(mutex_);
    return exceptions_;
}

void WorkPool::run() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stopping and drained
            job = std::move(jobs_.front());
            jobs_.pop_front();
            ++busy_;
        }
        bool threw = false;
        try {
            job();
        } catch (...) {
            threw = true;
        }
        std::lock_guard lock(mutex_);
        --busy_;
        if (threw) ++exceptions_;
    }
}

}  // namespace licentra::net
