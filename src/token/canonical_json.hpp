// Canonical JSON text for everything Licentra signs or hashes (JWS headers and payloads, JWK
// thumbprint input).
//
// nlohmann::json stores object members in a std::map, so members come out sorted by the byte
// order of their UTF-8 names, which equals Unicode code point order (RFC 7638 §3.3). The text has
// no insignificant whitespace; strings are UTF-8 with only the escapes JSON requires.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "core/result.hpp"

namespace licentra::token {

// Nesting limit (objects and arrays count one level each, the root is level 1).
inline constexpr std::size_t kMaxCanonicalDepth = 64;

// Serializes value canonically. Errors (kind usage, code "token.bad_json"): a string that is not
// valid UTF-8, a non-finite number (JSON cannot represent NaN or infinity), or nesting deeper
// than kMaxCanonicalDepth. Thread-safe.
[[nodiscard]] core::Result<std::string> canonical_json(const nlohmann::json& value);

}  // namespace licentra::token
