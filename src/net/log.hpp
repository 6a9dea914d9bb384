// Operational log plumbing for net: a sink the daemon provides and a rate limiter so a flood
// of bad handshakes cannot flood the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

namespace licentra::net {

// Receives one operational log line (no trailing newline). Called from io_context threads;
// must be thread-safe and must not block for long. Lines never contain secrets.
using LogSink = std::function<void(std::string_view line)>;

// The default sink: one line to stderr.
void log_to_stderr(std::string_view line);

// Emits at most one line per interval; lines dropped in between are counted and the count is
// appended to the next emitted line ("(12 similar lines suppressed)"). Thread-safe.
class RateLimitedLog {
  public:
    RateLimitedLog(LogSink sink, std::chrono::milliseconds interval);
    void log(std::string_view line);
    [[nodiscard]] std::uint64_t suppressed_total() const;

  private:
    LogSink sink_;
    std::chrono::milliseconds interval_;
    mutable std::mutex mutex_;
    std::chrono::steady_clock::time_point last_{};
    bool emitted_ = false;
    std::uint64_t suppressed_ = 0;
    std::uint64_t suppressed_total_ = 0;
};

}  // namespace licentra::net
