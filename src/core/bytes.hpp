// Byte containers and encodings: hex, base64 (RFC 4648 §4) and base64url (RFC 4648 §5).
//
// Decoders are strict: they reject whitespace, wrong padding, non-alphabet characters and
// non-canonical trailing bits, because every encoded value we parse is security relevant
// (JWS segments, checkpoint root hashes, key hashes).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace licentra::core {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

[[nodiscard]] inline ByteView as_bytes(std::string_view s) noexcept {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
[[nodiscard]] inline std::string_view as_chars(ByteView b) noexcept {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}
[[nodiscard]] inline Bytes to_bytes(std::string_view s) {
    auto v = as_bytes(s);
    return Bytes(v.begin(), v.end());
}

[[nodiscard]] std::string hex_encode(ByteView data);
[[nodiscard]] Result<Bytes> hex_decode(std::string_view text);

// RFC 4648 §4 with '=' padding (used by C2SP signed notes).
[[nodiscard]] std::string base64_encode(ByteView data);
[[nodiscard]] Result<Bytes> base64_decode(std::string_view text);

// RFC 4648 §5 without padding (RFC 7515 §2 "Base64url Encoding").
[[nodiscard]] std::string base64url_encode(ByteView data);
[[nodiscard]] Result<Bytes> base64url_decode(std::string_view text);

}  // namespace licentra::core
