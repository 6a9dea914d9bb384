#include "core/result.hpp"

namespace licentra::core {

std::string_view to_string(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::usage:
            return "usage";
        case ErrorKind::denied:
            return "denied";
        case ErrorKind::not_found:
            return "not_found";
        case ErrorKind::conflict:
            return "conflict";
        case ErrorKind::hsm_unavailable:
            return "hsm_unavailable";
        case ErrorKind::unavailable:
            return "unavailable";
        case ErrorKind::integrity:
            return "integrity";
        case ErrorKind::limit:
            return "limit";
        case ErrorKind::overloaded:
            return "overloaded";
        case ErrorKind::internal:
            return "internal";
        default:
            return "internal";
    }
}

std::string Error::to_string() const {
    std::string out(core::to_string(kind));
    out += ": ";
    out += code;
    if (!message.empty()) {
        out += ": ";
        out += message;
    }
    return out;
}

}  // namespace licentra::core
