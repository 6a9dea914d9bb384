#include "policy/holder.hpp"

#include <cassert>

namespace licentra::policy {

EngineHolder::EngineHolder(std::shared_ptr<const Engine> initial) : current_(std::move(initial)) {
    assert(current_.load() != nullptr);
}

std::shared_ptr<const Engine> EngineHolder::current() const noexcept {
    return current_.load(std::memory_order_acquire);
}

PolicyLoad EngineHolder::reload(const std::filesystem::path& path) {
    std::lock_guard<std::mutex> lock(reload_mutex_);
    PolicyLoad loaded = load_policy_file(path);
    if (loaded.ok()) current_.store(loaded.engine, std::memory_order_release);
    return loaded;
}

void EngineHolder::replace(std::shared_ptr<const Engine> engine) noexcept {
    if (engine == nullptr) return;
    std::lock_guard<std::mutex> lock(reload_mutex_);
    current_.store(std::move(engine), std::memory_order_release);
}

}  // namespace licentra::policy
