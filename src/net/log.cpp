#include "net/log.hpp"

#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

namespace licentra::net {

namespace {

using core::LogFormat;
using core::LogLevel;

spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warning:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
    }
    return spdlog::level::info;
}

// RFC 3339 UTC with milliseconds, then the level as spdlog names it (debug, info, warning,
// error); %v is the rest of the object, built by json_members / the access line.
constexpr const char* kJsonPattern = R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%v})";
constexpr const char* kTextPattern = "licentra-signd: %v";

struct LogState {
    std::shared_ptr<spdlog::logger> logger;
    LogFormat format = LogFormat::json;

    LogState() {
        logger = std::make_shared<spdlog::logger>(
            "licentra", std::make_shared<spdlog::sinks::stderr_sink_mt>());
        apply(LogLevel::info, LogFormat::json);
    }
    void apply(LogLevel min, LogFormat f) {
        format = f;
        logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
            f == LogFormat::json ? kJsonPattern : kTextPattern, spdlog::pattern_time_type::utc));
        logger->set_level(to_spdlog(min));
        logger->flush_on(spdlog::level::debug);  // every line reaches stderr at once
    }
};

LogState& state() {
    static LogState s;
    return s;
}

// A JSON string member: "name":"value", value escaped (invalid UTF-8 replaced, never thrown).
void member(std::string& out, std::string_view name, std::string_view value) {
    if (!out.empty()) out += ',';
    out += '"';
    out += name;
    out += "\":";
    out += nlohmann::json(std::string(value))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct Rule {
    std::string_view prefix;
    std::string_view contains;  // "" = any
    std::string_view event;
    LogLevel level;
};

// First match wins: the more specific beginning first. docs/operations.md lists the events.
constexpr std::array kRules{
    Rule{"net: TLS handshake failed", "", "tls.handshake_failed", LogLevel::warning},
    Rule{"net: accept failed", "", "net.accept_failed", LogLevel::error},
    Rule{"net: io thread caught", "", "net.io_exception", LogLevel::error},
    Rule{"hsm fault ", ": recovered after ", "hsm.recovered", LogLevel::info},
    Rule{"hsm fault ", "", "hsm.fault", LogLevel::error},
    Rule{"hsm recovery:", "", "hsm.reinitialized", LogLevel::warning},
    Rule{"hsm: re-reading token", "", "hsm.reread", LogLevel::warning},
    Rule{"HSM module:", "", "daemon.start_failed", LogLevel::error},
    Rule{"HSM token:", "", "daemon.start_failed", LogLevel::error},
    Rule{"audit key:", "", "daemon.start_failed", LogLevel::error},
    Rule{"pseudonym key:", "", "daemon.start_failed", LogLevel::error},
    Rule{"listeners:", "", "daemon.start_failed", LogLevel::error},
    Rule{"cannot block signals", "", "daemon.start_failed", LogLevel::error},
    Rule{"key bootstrap:", "", "daemon.start_failed", LogLevel::error},
    Rule{"audit log failed closed", "", "audit.failed", LogLevel::error},
    Rule{"audit log: sync past deadline", "", "audit.sync_late", LogLevel::error},
    Rule{"audit log: sync completed within", "", "audit.sync_recovered", LogLevel::info},
    Rule{"audit log: cut back", "", "audit.torn_record_cut", LogLevel::warning},
    Rule{"audit log close:", "", "audit.close_failed", LogLevel::error},
    Rule{"audit log: ", "", "audit.error", LogLevel::error},
    Rule{"audit log ", "", "audit.opened", LogLevel::info},
    Rule{"audit checkpoint: signed and anchored again", "", "audit.checkpoint_recovered",
         LogLevel::info},
    Rule{"audit checkpoint:", "", "audit.checkpoint_failed", LogLevel::error},
    Rule{"keys: claim on version", "", "keys.claim_withdrawn", LogLevel::warning},
    Rule{"keys: could not claim", "", "keys.claim_contended", LogLevel::warning},
    Rule{"keys: version ", "being created by another replica", "keys.claim_lost", LogLevel::info},
    Rule{"keys:", "", "keys.state", LogLevel::warning},
    Rule{"requests: could not claim", "", "requests.claim_contended", LogLevel::warning},
    Rule{"requests: executing request", "", "requests.execution_deferred", LogLevel::warning},
    Rule{"requests: cannot list", "", "requests.list_failed", LogLevel::error},
    Rule{"requests: the approval requests can be listed again", "", "requests.list_recovered",
         LogLevel::info},
    Rule{"requests: ", "; withdrawn", "requests.claim_withdrawn", LogLevel::warning},
    Rule{"SIGHUP: policy reloaded", "", "reload.policy", LogLevel::info},
    Rule{"SIGHUP: policy reload failed", "", "reload.policy_failed", LogLevel::error},
    Rule{"SIGHUP: TLS certificate reloaded", "", "reload.tls", LogLevel::info},
    Rule{"SIGHUP: TLS reload failed", "", "reload.tls_failed", LogLevel::error},
    Rule{"ready:", "", "daemon.ready", LogLevel::info},
    Rule{"signal ", "", "daemon.stopping", LogLevel::info},
    Rule{"stopped", "", "daemon.stopped", LogLevel::info},
};

bool word_char(char c) {
    return std::isupper(static_cast<unsigned char>(c)) != 0 ||
           std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// The first CKR_* name in the line.
std::string_view find_ckr(std::string_view line) {
    const auto at = line.find("CKR_");
    if (at == std::string_view::npos) return {};
    auto end = at + 4;
    while (end < line.size() && word_char(line[end])) ++end;
    return line.substr(at, end - at);
}

// The first errno name as the daemon writes it: "ENOSPC (No space left on device)".
std::string_view find_errno(std::string_view line) {
    for (std::size_t i = 0; i + 3 < line.size(); ++i) {
        if (line[i] != 'E' ||
            (i > 0 && std::isalnum(static_cast<unsigned char>(line[i - 1])) != 0)) {
            continue;
        }
        auto end = i + 1;
        while (end < line.size() && word_char(line[end]) && line[end] != '_') ++end;
        if (end - i >= 4 && line.substr(end, 2) == " (") return line.substr(i, end - i);
    }
    return {};
}

}  // namespace

void configure_log(LogLevel min, LogFormat format) { state().apply(min, format); }

LineClass classify_line(std::string_view line) {
    for (const auto& r : kRules) {
        if (!line.starts_with(r.prefix)) continue;
        if (!r.contains.empty() && line.find(r.contains) == std::string_view::npos) continue;
        return {r.event, r.level};
    }
    return {"daemon.message", LogLevel::info};
}

std::string json_members(std::string_view line) {
    std::string out;
    member(out, "event", classify_line(line).event);
    member(out, "msg", line);
    if (const auto ckr = find_ckr(line); !ckr.empty()) member(out, "ckr", ckr);
    if (const auto e = find_errno(line); !e.empty()) member(out, "errno", e);
    return out;
}

void log_line(std::string_view line) {
    auto& s = state();
    const auto level = to_spdlog(classify_line(line).level);
    if (!s.logger->should_log(level)) return;
    if (s.format == LogFormat::text) {
        s.logger->log(level, spdlog::string_view_t(line.data(), line.size()));
        return;
    }
    const std::string members = json_members(line);
    s.logger->log(level, spdlog::string_view_t(members.data(), members.size()));
}

void log_exchange(const Exchange& x) {
    auto& s = state();
    const auto level = x.listener == "operations" ? spdlog::level::debug : spdlog::level::info;
    if (!s.logger->should_log(level)) return;
    const auto route = x.route.empty() ? std::string_view("unmatched") : x.route;
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f",
                  static_cast<double>(x.duration.count()) / 1000.0);
    std::string msg(x.method.empty() ? std::string_view("-") : x.method);
    msg += ' ';
    msg += route;
    msg += ' ';
    msg += std::to_string(x.status);
    std::string out;
    if (s.format == LogFormat::text) {
        out = msg + ' ' + duration + "ms request_id=" + std::string(x.request_id);
        if (!x.principal.empty()) out += " principal=" + std::string(x.principal);
        if (!x.key.empty()) out += " key=" + std::string(x.key);
        if (!x.kid.empty()) out += " kid=" + std::string(x.kid);
    } else {
        member(out, "event", "http.request");
        member(out, "msg", msg);
        member(out, "request_id", x.request_id);
        if (!x.principal.empty()) member(out, "principal", x.principal);
        if (!x.key.empty()) member(out, "key", x.key);
        if (!x.kid.empty()) member(out, "kid", x.kid);
        member(out, "listener", x.listener);
        if (!x.method.empty()) member(out, "method", x.method);
        member(out, "route", route);
        out += ",\"status\":" + std::to_string(x.status);
        out += ",\"duration_ms\":";
        out += duration;
        member(out, "remote", x.remote);
    }
    s.logger->log(level, spdlog::string_view_t(out.data(), out.size()));
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
