// The policy currently in force, replaceable at run time.
//
// Readers take a snapshot (a shared_ptr to an immutable Engine) and make every decision of one
// request with it; a reload swaps the pointer atomically, so a reader sees either the old or
// the new policy, never a mix. A reload that fails validation leaves the old policy in force.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>

#include "policy/engine.hpp"
#include "policy/loader.hpp"

namespace licentra::policy {

class EngineHolder {
  public:
    // Precondition: initial is not null (load it with load_policy_file first).
    explicit EngineHolder(std::shared_ptr<const Engine> initial);
    EngineHolder(const EngineHolder&) = delete;
    EngineHolder& operator=(const EngineHolder&) = delete;

    // The policy in force. Thread-safe, lock-free for readers.
    [[nodiscard]] std::shared_ptr<const Engine> current() const noexcept;

    // Loads path; on success the new policy replaces the old one and the result holds it;
    // on failure the old policy stays and the result lists every error. Thread-safe; reloads
    // are serialized.
    [[nodiscard]] PolicyLoad reload(const std::filesystem::path& path);
    // Replaces the policy with an already validated engine (null is ignored).
    void replace(std::shared_ptr<const Engine> engine) noexcept;

  private:
    std::atomic<std::shared_ptr<const Engine>> current_;
    std::mutex reload_mutex_;
};

}  // namespace licentra::policy
