// Per-principal signing rate limits (token buckets), as declared by each principal's
// signing_rate_limit in the policy.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.hpp"
#include "policy/model.hpp"

namespace licentra::policy {

class RateLimiter {
  public:
    using Clock = std::chrono::steady_clock;

    // Takes one token from p's bucket. A principal without a signing_rate_limit is not
    // limited. Exhausted: ErrorKind::limit "policy.rate_limited". A changed limit (after a
    // reload) applies from the next call; the bucket keeps its level, capped at the new burst.
    // Thread-safe.
    [[nodiscard]] core::Status acquire(const Principal& p, Clock::time_point now = Clock::now());
    [[nodiscard]] core::Status acquire(std::string_view principal, const RateLimit& limit,
                                       Clock::time_point now = Clock::now());

  private:
    struct Bucket {
        double tokens = 0;
        Clock::time_point last{};
    };
    static constexpr std::size_t kMaxBuckets = 10000;

    std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace licentra::policy
