#include "token/canonical_json.hpp"

#include <cmath>
#include <vector>

namespace licentra::token {

namespace {

enum class Shape { ok, non_finite, too_deep };

// Iterative walk, so the check itself cannot exhaust the stack; dump() recurses, which is why
// depth is bounded before serializing.
Shape check_shape(const nlohmann::json& root) {
    std::vector<std::pair<const nlohmann::json*, std::size_t>> stack{{&root, 1}};
    while (!stack.empty()) {
        auto [v, depth] = stack.back();
        stack.pop_back();
        if (depth > kMaxCanonicalDepth) return Shape::too_deep;
        if (v->is_number_float() && !std::isfinite(v->get<double>())) return Shape::non_finite;
        if (v->is_structured()) {
            for (const auto& child : *v) stack.emplace_back(&child, depth + 1);
        }
    }
    return Shape::ok;
}

}  // namespace

core::Result<std::string> canonical_json(const nlohmann::json& value) {
    switch (check_shape(value)) {
        case Shape::ok:
            break;
        case Shape::non_finite:
            return core::make_error(core::ErrorKind::usage, "token.bad_json",
                                    "JSON cannot represent a non-finite number");
        case Shape::too_deep:
        default:
            return core::make_error(
                core::ErrorKind::usage, "token.bad_json",
                "JSON nesting deeper than " + std::to_string(kMaxCanonicalDepth) + " levels");
    }
    try {
        // error_handler strict: invalid UTF-8 throws type_error 316 instead of being replaced.
        return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    } catch (const nlohmann::json::exception&) {
        return core::make_error(core::ErrorKind::usage, "token.bad_json",
                                "a JSON string is not valid UTF-8");
    }
}

}  // namespace licentra::token
