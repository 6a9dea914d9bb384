// Strict JSON for everything that crosses a trust boundary (tokens and JWKS a product
// verifies, request bodies the daemon reads): one parser, one set of rules.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace licentra::token {

enum class JsonProblem { none, syntax, duplicate, too_deep };

struct ParsedJson {
    nlohmann::json value;
    JsonProblem problem = JsonProblem::none;
    std::string detail;
};

// Parses JSON text strictly: RFC 8259 syntax (nlohmann also rejects invalid UTF-8), no byte
// order mark, no duplicate member names in any object, nesting at most max_depth.
// RFC 7515 §5.2 step 4 allows rejecting duplicate Header Parameter names, and RFC 7519 §4 says
// "Claim Names within a JWT Claims Set MUST be unique"; we reject them everywhere.
// I-JSON (RFC 7493 §2.3): "Objects in I-JSON messages MUST NOT have members with names that
// are not unique".
[[nodiscard]] ParsedJson parse_strict_json(std::string_view text, std::size_t max_depth);

}  // namespace licentra::token
