#include "crypto/algorithm.hpp"

namespace licentra::crypto {

std::string_view jws_name(Algorithm alg) noexcept {
    switch (alg) {
        case Algorithm::EdDSA:
            return "EdDSA";
        case Algorithm::ES256:
            return "ES256";
        case Algorithm::ES384:
            return "ES384";
        case Algorithm::PS256:
            return "PS256";
        default:
            return "";
    }
}

std::optional<Algorithm> algorithm_from_jws_name(std::string_view name) noexcept {
    if (name == "EdDSA") return Algorithm::EdDSA;
    if (name == "ES256") return Algorithm::ES256;
    if (name == "ES384") return Algorithm::ES384;
    if (name == "PS256") return Algorithm::PS256;
    return std::nullopt;
}

std::size_t raw_signature_size(Algorithm alg) noexcept {
    switch (alg) {
        case Algorithm::EdDSA:
            return 64;
        case Algorithm::ES256:
            return 64;
        case Algorithm::ES384:
            return 96;
        case Algorithm::PS256:
            return 0;
        default:
            return 0;
    }
}

}  // namespace licentra::crypto
