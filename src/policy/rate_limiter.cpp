#include "policy/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace licentra::policy {

core::Status RateLimiter::acquire(const Principal& p, Clock::time_point now) {
    if (!p.signing_rate_limit) return core::ok_status();
    return acquire(p.name, *p.signing_rate_limit, now);
}

core::Status RateLimiter::acquire(std::string_view principal, const RateLimit& limit,
                                  Clock::time_point now) {
    const double burst = static_cast<double>(limit.burst);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = buckets_.find(std::string(principal));
    if (it == buckets_.end()) {
        // Principals come from the policy, so the map stays small; the bound only guards
        // against a caller passing unbounded names.
        if (buckets_.size() >= kMaxBuckets) buckets_.clear();
        it = buckets_.emplace(std::string(principal), Bucket{burst, now}).first;
    }
    Bucket& b = it->second;
    if (now > b.last) {
        const double elapsed = std::chrono::duration<double>(now - b.last).count();
        b.tokens = std::min(burst, b.tokens + elapsed * limit.per_second);
        b.last = now;
    }
    b.tokens = std::min(b.tokens, burst);
    if (b.tokens < 1.0) {
        auto err =
            core::make_error(core::ErrorKind::limit, "policy.rate_limited",
                             "signing rate limit of \"" + std::string(principal) + "\" exceeded");
        // Whole seconds until the bucket holds one token again (at least 1).
        const double wait = (1.0 - b.tokens) / limit.per_second;
        err.retry_after = std::chrono::seconds(
            std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait))));
        return err;
    }
    b.tokens -= 1.0;
    return core::ok_status();
}

}  // namespace licentra::policy
