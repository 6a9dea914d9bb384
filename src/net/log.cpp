#include "net/log.hpp"

#include <cstdio>

namespace licentra::net {

void log_to_stderr(std::string_view line) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

RateLimitedLog::RateLimitedLog(LogSink sink, std::chrono::milliseconds interval)
    : sink_(std::move(sink)), interval_(interval) {}

void RateLimitedLog::log(std::string_view line) {
    std::string out;
    {
        std::lock_guard lock(mutex_);
        const auto now = std::chrono::steady_clock::now();
        if (emitted_ && now - last_ < interval_) {
            ++suppressed_;
            ++suppressed_total_;
            return;
        }
        emitted_ = true;
        last_ = now;
        out = std::string(line);
        if (suppressed_ > 0) {
            out += " (" + std::to_string(suppressed_) + " similar lines suppressed)";
            suppressed_ = 0;
        }
    }
    if (sink_) sink_(out);
}

std::uint64_t RateLimitedLog::suppressed_total() const {
    std::lock_guard lock(mutex_);
    return suppressed_total_;
}

}  // namespace licentra::net
