#include "policy/duration.hpp"

#include <cstdint>

#include "core/time.hpp"

namespace licentra::policy {

std::optional<std::chrono::seconds> parse_duration(std::string_view text) noexcept {
    // Policy durations are whole seconds: the units d, h, m and s of the common syntax.
    if (text.size() >= 2 && text.substr(text.size() - 2) == "ms") return std::nullopt;
    auto d = core::parse_duration(text);
    if (!d) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(*d);
}

std::string format_duration(std::chrono::seconds d) {
    const std::int64_t s = d.count();
    if (s != 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
    if (s != 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s != 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

}  // namespace licentra::policy
