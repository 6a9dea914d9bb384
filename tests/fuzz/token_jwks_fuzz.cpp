// Fuzzes the JWKS reader of include/licentra/verify.hpp: the input is a JWK Set; a fixed
// Ed25519 token (RFC 8037 §A.4, kid added) is verified against whatever it yields.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "licentra/verify.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view jwks(reinterpret_cast<const char*>(data), size);
    auto v = licentra::Verifier::from_jwks(jwks);
    if (!v) {
        if (v.error() != licentra::VerifyErrc::malformed_jwks &&
            v.error() != licentra::VerifyErrc::internal) {
            std::abort();
        }
        return 0;
    }
    if (v->usable_key_count() > 1000) std::abort();
    auto r = v->verify(
        "eyJhbGciOiJFZERTQSIsImtpZCI6ImVkIiwidHlwIjoibGljZW5zZStqd3QifQ.eyJzdWIiOiJhIn0."
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    if (r.ok()) std::abort();  // an all-zero signature must never verify
    return 0;
}
