// The four signature algorithms Licentra issues tokens with (RFC 7518 / RFC 8037 names).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace licentra::crypto {

enum class Algorithm {
    EdDSA,  // Ed25519, RFC 8037
    ES256,  // ECDSA P-256 + SHA-256, raw r||s (RFC 7518 §3.4)
    ES384,  // ECDSA P-384 + SHA-384, raw r||s
    PS256,  // RSASSA-PSS SHA-256, MGF1-SHA-256, salt 32 (RFC 7518 §3.5), RSA >= 3072
};

[[nodiscard]] std::string_view jws_name(Algorithm alg) noexcept;
[[nodiscard]] std::optional<Algorithm> algorithm_from_jws_name(std::string_view name) noexcept;
// Size in bytes of a raw signature, or 0 for RSA (depends on the modulus).
[[nodiscard]] std::size_t raw_signature_size(Algorithm alg) noexcept;

}  // namespace licentra::crypto
