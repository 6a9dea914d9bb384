// The daemon's operational log: one line per event on stderr (journald collects it), JSON lines
// or text, written through spdlog; the access line of each answered request; and a rate limiter
// so that a flood of bad handshakes cannot flood the log. Lines never contain a PIN, key, token
// or claim value.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "core/log_level.hpp"

namespace licentra::net {

// Receives one operational log line (no trailing newline). Called from io_context threads;
// must be thread-safe and must not block for long. Lines never contain secrets.
using LogSink = std::function<void(std::string_view line)>;

// One answered request, for the access log and the request metrics: no body, header value or
// query string. The views are valid only during the call.
struct Exchange {
    std::string_view listener = "api";  // "api", "operations" or "public"
    std::string_view method;
    std::string_view route;  // Response::route; "" when no handler answered (malformed request)
    unsigned status = 0;
    std::chrono::microseconds duration{0};  // request read -> response handed to the socket
    std::string_view request_id;
    std::string_view principal;  // Response::principal
    std::string_view key;        // Response::key
    std::string_view kid;        // Response::kid
    std::string_view remote;
};

// Sets the minimum level and the format of every later line. Call once, before other threads
// log. Until then: info, JSON.
void configure_log(core::LogLevel min, core::LogFormat format);

// A module's line ("hsm fault …", "audit log: …"): its stable event name and level come from
// its fixed beginning (classify_line); CKR_* names and errno names in it become the `ckr` and
// `errno` fields. The default LogSink.
void log_line(std::string_view line);

// The access line of an API request (event http.request, info; operations listener: debug).
void log_exchange(const Exchange& exchange);

struct LineClass {
    std::string_view event;
    core::LogLevel level;
};
// Maps a line to its event name and level by the fixed text it starts with (docs/operations.md
// lists them); an unknown line is event "daemon.message" at info.
[[nodiscard]] LineClass classify_line(std::string_view line);

// The members after "ts" and "level" of a JSON line for `line` (for tests):
// "event":…,"msg":…[,"ckr":…][,"errno":…]
[[nodiscard]] std::string json_members(std::string_view line);

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
