#include "policy/duration.hpp"

#include <cstdint>

namespace licentra::policy {

namespace {
constexpr std::int64_t kMaxSeconds = 36500LL * 86400LL;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) noexcept {
    if (text.size() < 2 || text.size() > 12) return std::nullopt;
    std::int64_t unit = 0;
    switch (text.back()) {
        case 'd':
            unit = 86400;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'm':
            unit = 60;
            break;
        case 's':
            unit = 1;
            break;
        default:
            return std::nullopt;
    }
    const std::string_view digits = text.substr(0, text.size() - 1);
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;  // no leading zeros
    std::int64_t n = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
        if (n > kMaxSeconds) return std::nullopt;
    }
    if (n * unit > kMaxSeconds) return std::nullopt;
    return std::chrono::seconds(n * unit);
}

std::string format_duration(std::chrono::seconds d) {
    const std::int64_t s = d.count();
    if (s != 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
    if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

}  // namespace licentra::policy
