#include "audit/checkpoint_waiter.hpp"

#include <algorithm>

#include "audit/checkpoint.hpp"
#include "core/thread_name.hpp"

namespace licentra::audit {

CheckpointWaiter::CheckpointWaiter(std::uint64_t covered) : covered_(covered) {
    thread_ = std::thread([this] { run(); });
}

CheckpointWaiter::~CheckpointWaiter() { stop(); }

void CheckpointWaiter::advance(std::uint64_t size) {
    {
        std::lock_guard lk(mu_);
        if (size <= covered_) return;
        covered_ = size;
    }
    cv_.notify_one();
}

std::uint64_t CheckpointWaiter::covered() const {
    std::lock_guard lk(mu_);
    return covered_;
}

void CheckpointWaiter::wait(std::uint64_t size, Clock::time_point deadline, Callback done) {
    bool covered = false;
    {
        std::lock_guard lk(mu_);
        covered = size <= covered_;
        if (!covered && !stopping_) {
            waits_.push_back({size, deadline, std::move(done)});
            cv_.notify_one();
            return;
        }
    }
    done(covered);
}

void CheckpointWaiter::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void CheckpointWaiter::run() {
    core::name_this_thread("receipt-wait");
    std::unique_lock lk(mu_);
    for (;;) {
        // Answer, outside the lock, every wait that is covered, past its deadline, or stopped.
        const auto now = Clock::now();
        std::vector<std::pair<Callback, bool>> answers;
        auto keep = std::partition(waits_.begin(), waits_.end(), [&](const Wait& w) {
            return !stopping_ && w.size > covered_ && w.deadline > now;
        });
        for (auto it = keep; it != waits_.end(); ++it) {
            answers.emplace_back(std::move(it->done), it->size <= covered_);
        }
        waits_.erase(keep, waits_.end());
        const bool stop_now = stopping_;
        if (!answers.empty()) {
            lk.unlock();
            for (auto& [done, covered] : answers) done(covered);
            lk.lock();
            continue;  // state may have changed while the lock was released
        }
        if (stop_now) return;
        if (waits_.empty()) {
            cv_.wait(lk);
        } else {
            // A copy: wait() may reallocate waits_ while this thread waits without the lock,
            // and wait_until reads its deadline again on every wake-up.
            const Clock::time_point next =
                std::min_element(waits_.begin(), waits_.end(), [](const Wait& a, const Wait& b) {
                    return a.deadline < b.deadline;
                })->deadline;
            cv_.wait_until(lk, next);
        }
    }
}

core::Result<std::optional<std::string>> WaiterAnchor::load() {
    if (inner_ == nullptr) return std::optional<std::string>();
    return inner_->load();
}

core::Status WaiterAnchor::store(std::string_view note) {
    if (auto parsed = parse_signed_note(note)) {
        if (auto cp = parse_checkpoint_body(parsed->text)) waiter_.advance(cp->size);
    }
    if (inner_ == nullptr) return core::ok_status();
    return inner_->store(note);
}

}  // namespace licentra::audit
