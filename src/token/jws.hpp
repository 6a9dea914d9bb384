// JWS compact serialization (RFC 7515 §7.1) of Licentra license tokens.
//
// Header: {"alg":<RFC 7518 name>,"kid":<RFC 7638 thumbprint>,"typ":"license+jwt"}, serialized
// canonically; payload: the claims, serialized canonically. The signing input is
// BASE64URL(header) "." BASE64URL(payload) and the token appends "." BASE64URL(signature).
//
// Two ways to build a token:
//   - one step: sign_token(signer, claims), which also verifies the result;
//   - two steps, for callers that sign elsewhere (the daemon signs on its HSM thread pool):
//     make_signing_input() on the request thread, sign input.text on the pool, then
//     assemble_token() with the raw JWS-form signature.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/signer.hpp"

namespace licentra::token {

inline constexpr std::string_view kTokenType = "license+jwt";

// Largest token Licentra issues; licentra/verify.hpp refuses anything longer, so a token larger
// than this could never be verified by a product.
inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;

struct SigningInput {
    crypto::Algorithm alg = crypto::Algorithm::EdDSA;
    std::string kid;
    std::string text;  // ASCII: BASE64URL(header) "." BASE64URL(payload); the bytes to sign
};

// Builds the protected header and the signing input. claims must be a JSON object.
// Errors (kind usage): "token.bad_claims" (not an object), "token.bad_json" (see
// canonical_json), "token.bad_kid" (empty, or not base64url text), "token.too_large" (the
// finished token would exceed kMaxTokenBytes). Thread-safe.
[[nodiscard]] core::Result<SigningInput> make_signing_input(crypto::Algorithm alg,
                                                            std::string_view kid,
                                                            const nlohmann::json& claims);

// Appends the signature. signature is the JWS form: 64 bytes for EdDSA, raw r||s of exactly
// 64/96 bytes for ES256/ES384 (RFC 7518 §3.4), the RSA modulus length (384..1024 bytes) for PS256.
// The signature's validity is not checked here (the caller holds the public key; see
// check_token). Errors: kind internal, code "token.bad_signature" for a wrong length.
[[nodiscard]] core::Result<std::string> assemble_token(const SigningInput& input,
                                                       core::ByteView signature);

// Verifies token against key with the product-side verifier (licentra/verify.hpp) at the current
// time: header, kid = thumbprint of key, algorithm, signature. Used after signing as a guard
// against faulty signatures. Errors: kind integrity, code "token.self_check".
[[nodiscard]] core::Status check_token(std::string_view token, const crypto::PublicKey& key);

// One step: kid = jwk_thumbprint(signer.public_key()), make_signing_input, signer.sign,
// assemble_token, check_token. Errors: those of the steps, and the signer's own.
[[nodiscard]] core::Result<std::string> sign_token(crypto::Signer& signer,
                                                   const nlohmann::json& claims);

// Lowercase hex SHA-256 of the token's ASCII text: how audit entries refer to a token without
// storing it.
[[nodiscard]] std::string token_sha256_hex(std::string_view token);

}  // namespace licentra::token
