// JSON Web Keys (RFC 7517) for Licentra's public keys, RFC 7638 thumbprints, and the JWKS
// document served at /.well-known/jwks.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "crypto/public_key.hpp"

namespace licentra::token {

// The members RFC 7638 §3.2 requires for the key's type, and nothing else:
//   Ed25519 (RFC 8037 §2): {"crv":"Ed25519","kty":"OKP","x"}
//   P-256 / P-384:         {"crv":"P-256"|"P-384","kty":"EC","x","y"} (coordinates full width)
//   RSA:                   {"e","kty":"RSA","n"} (minimal big-endian, RFC 7518 §6.3.1)
// Errors: kind internal, code "token.jwk" if the key's components cannot be read.
[[nodiscard]] core::Result<nlohmann::json> jwk_required_members(const crypto::PublicKey& key);

// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON of the required members, sorted, no
// whitespace)). This is the key's `kid` everywhere in Licentra. Thread-safe.
[[nodiscard]] core::Result<std::string> jwk_thumbprint(const crypto::PublicKey& key);

// The full JWK as published: required members plus "alg" (RFC 7518 name pinned to the key type),
// "kid" (the thumbprint) and "use":"sig".
[[nodiscard]] core::Result<nlohmann::json> public_jwk(const crypto::PublicKey& key);

// One entry of a JWKS document. `metadata` is an optional JSON object of extra members (for
// example {"licentra_key":"license-main","licentra_version":3,"licentra_state":"active"}); it may
// not redefine a member the JWK itself defines (kty, crv, x, y, n, e, alg, kid, use, key_ops).
struct JwksKey {
    const crypto::PublicKey* key = nullptr;  // not owned; must outlive the call
    nlohmann::json metadata = nlohmann::json::object();
};

// Builds {"keys":[...]} with one JWK per entry, ordered by kid (byte order) so the document is
// deterministic whatever order the keys come in. Errors (kind usage, code "token.jwks"): a null
// key, metadata that is not an object or that redefines a JWK member, the same kid twice.
[[nodiscard]] core::Result<nlohmann::json> jwks_document(const std::vector<JwksKey>& keys);

// jwks_document serialized canonically (sorted members, no whitespace).
[[nodiscard]] core::Result<std::string> jwks_json(const std::vector<JwksKey>& keys);

}  // namespace licentra::token
