#include "core/names.hpp"

#include <algorithm>

namespace licentra::core {

bool is_valid_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > 64) return false;
    if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9'))) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
}

bool is_valid_log_origin(std::string_view origin) noexcept {
    if (origin.empty() || origin.size() > 255) return false;
    return std::all_of(origin.begin(), origin.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

}  // namespace licentra::core
