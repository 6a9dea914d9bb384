// Licentra token verification for licensed products: offline, no network, no daemon.
//
// Input: the JWKS the signer publishes (GET /.well-known/jwks.json, shipped with the product or
// cached) and a license token (JWS compact serialization, RFC 7515). Output: the token's claims,
// or one precise error code from VerifyErrc with a human-readable message.
//
//     auto verifier = licentra::Verifier::from_jwks(jwks_text);
//     if (!verifier) { /* verifier.error() */ }
//     licentra::VerifyResult r = verifier->verify(token_text);
//     if (!r) { log(licentra::to_string(r.error), r.message); deny(); }
//     use(r.claims["features"]);
//
// What is enforced (each rule has its own error code):
//   - size: tokens over kMaxTokenBytes, JWKS documents over kMaxJwksBytes;
//   - shape: exactly three segments of strict, unpadded, canonical base64url;
//     header and payload are JSON objects without duplicate member names;
//   - algorithm: only EdDSA (Ed25519), ES256 (P-256), ES384 (P-384), PS256 (RSA >= 3072 bits);
//     "none" and every other name are refused; the algorithm must be the one the key's type
//     pins (EdDSA<->OKP/Ed25519, ES256<->EC P-256, ES384<->EC P-384, PS256<->RSA);
//   - "crit": refused whenever present (this library understands no extension);
//   - "typ": must be "license+jwt" (configurable);
//   - "kid": required, and must name exactly one usable key in the JWKS;
//   - signature: ECDSA exactly 2 x field size raw r||s (DER is refused), Ed25519 64 bytes, RSA
//     exactly the modulus length; then cryptographically verified;
//   - time: "exp" <= now - leeway is expired; "nbf" or "iat" > now + leeway is not yet valid;
//     these claims must be numbers when present.
// Header parameters that name keys elsewhere (jku, jwk, x5u, x5c) are ignored: keys come only
// from the JWKS you pass.
//
// Thread-safety: a Verifier is immutable after from_jwks() and may be used from any number of
// threads at once. No function throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace licentra {

inline constexpr std::size_t kMaxTokenBytes = 16 * 1024;
inline constexpr std::size_t kMaxJwksBytes = 1024 * 1024;
inline constexpr std::size_t kMaxReceiptBytes = 128 * 1024;

enum class VerifyErrc {
    ok = 0,
    token_too_large,         // token longer than kMaxTokenBytes
    malformed_token,         // not three '.'-separated segments, or an empty header or payload
    malformed_base64url,     // a segment is not strict unpadded canonical base64url
    malformed_header,        // header is not a JSON object, or a member has the wrong type
    malformed_claims,        // payload is not a JSON object, or exp/nbf/iat is not a number
    duplicate_member,        // a JSON object in header or payload repeats a member name
    alg_none,                // "alg":"none" (unsecured JWS, RFC 7515 §A.5)
    unsupported_algorithm,   // "alg" missing or not one of EdDSA, ES256, ES384, PS256
    crit_present,            // "crit" present: no extension is understood
    wrong_type,              // "typ" is not the expected type
    missing_kid,             // no "kid" in the header
    unknown_kid,             // no key in the JWKS has this kid
    ambiguous_kid,           // more than one key in the JWKS has this kid
    unusable_key,            // the JWK with this kid is malformed or unsupported
    algorithm_key_mismatch,  // header alg does not fit the key's type / curve / declared alg
    malformed_signature,     // empty, wrong length, or a DER-encoded ECDSA signature
    signature_invalid,       // the signature does not verify
    expired,                 // exp <= now - leeway
    not_yet_valid,           // nbf > now + leeway, or iat > now + leeway
    missing_expiry,          // VerifyOptions::require_exp and no "exp"
    wrong_issuer,            // VerifyOptions::expected_issuer set and "iss" differs
    malformed_jwks,          // the JWKS text is not a JWK Set
    internal,                // unexpected failure (out of memory, crypto library error)
    // verify_receipt() only (appended, so the values above keep their numbers):
    malformed_receipt,          // not a tlog-proof carrying a logged entry, or over the limit
    malformed_log_key,          // the log key is not a signed-note verifier key
    receipt_wrong_log,          // the checkpoint is not signed by the log key / other origin
    receipt_signature_invalid,  // the log key's signature on the checkpoint does not verify
    receipt_proof_invalid,      // the inclusion proof does not reach the checkpoint's root
    receipt_token_mismatch,     // the logged entry does not record the issue of this token
};

// Stable snake_case name of the code, e.g. "alg_none".
[[nodiscard]] std::string_view to_string(VerifyErrc code) noexcept;

struct VerifyOptions {
    // The verification time; empty means the system clock at the call.
    std::optional<std::chrono::system_clock::time_point> now;
    // Allowed clock skew for exp, nbf and iat.
    std::chrono::seconds leeway{60};
    // Required "typ" header value; empty disables the check.
    std::string expected_type = "license+jwt";
    // Required "iss" claim; empty disables the check.
    std::string expected_issuer;
    // Refuse tokens without "exp".
    bool require_exp = false;
};

struct VerifyResult {
    VerifyErrc error = VerifyErrc::ok;
    std::string message;      // empty on success; never contains the token or key material
    std::string alg;          // on success: the verified algorithm
    std::string kid;          // on success: the key that verified the token
    nlohmann::json claims;    // on success: the payload (a JSON object)
    std::string claims_json;  // on success: the payload as canonical JSON text

    [[nodiscard]] bool ok() const noexcept { return error == VerifyErrc::ok; }
    explicit operator bool() const noexcept { return ok(); }
};

class Verifier;

// Result of Verifier::from_jwks: a Verifier, or an error (always VerifyErrc::malformed_jwks or
// VerifyErrc::internal) with a message.
class VerifierOrError;

class Verifier {
  public:
    // Parses a JWK Set (RFC 7517 §5). The set itself must be well formed: a JSON object with a
    // "keys" array of objects, no duplicate member names, at most kMaxJwksBytes. Individual keys
    // that are malformed or of an unsupported type are kept aside, not fatal (RFC 7517 §5:
    // "SHOULD ignore JWKs ... that use kty values that are not understood"); a token naming
    // such a key fails with unusable_key. Keys with "use" other than "sig" are unusable too.
    [[nodiscard]] static VerifierOrError from_jwks(std::string_view jwks_json) noexcept;

    // Verifies token as described at the top of this file.
    [[nodiscard]] VerifyResult verify(std::string_view token,
                                      const VerifyOptions& options = {}) const noexcept;

    // Number of usable keys in the set.
    [[nodiscard]] std::size_t usable_key_count() const noexcept;

    struct Impl;

  private:
    explicit Verifier(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;
    friend class VerifierOrError;
};

class VerifierOrError {
  public:
    [[nodiscard]] bool ok() const noexcept { return verifier_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }
    [[nodiscard]] const Verifier& operator*() const { return *verifier_; }
    [[nodiscard]] const Verifier* operator->() const { return &*verifier_; }
    [[nodiscard]] VerifyErrc error() const noexcept { return error_; }
    [[nodiscard]] const std::string& message() const noexcept { return message_; }

  private:
    friend class Verifier;
    std::optional<Verifier> verifier_;
    VerifyErrc error_ = VerifyErrc::ok;
    std::string message_;
};

// One-shot convenience: Verifier::from_jwks(jwks_json) then verify(token, options). A JWKS error
// is returned in the VerifyResult.
[[nodiscard]] VerifyResult verify_token(std::string_view jwks_json, std::string_view token,
                                        const VerifyOptions& options = {}) noexcept;

// ---- Inclusion receipts: proof that a token was logged -------------------------------------
//
// The signer records every token it issues (its SHA-256) in an append-only audit log, a
// RFC 9162 Merkle tree whose checkpoints the log's key signs (C2SP signed notes). A receipt
// (GET /v1/tokens/receipt, a C2SP tlog-proof with the logged entry as its extra data) proves
// that one entry is in a signed checkpoint. A product that requires receipts accepts only
// licenses the log holds, so none can be issued unseen by the log's auditors.
//
//     licentra::ReceiptOptions ro;
//     ro.expected_origin = "licentra.example/audit/node-1";   // optional
//     auto rr = licentra::verify_receipt(token_text, receipt_text, log_key, ro);
//     if (!rr) { log(licentra::to_string(rr.error), rr.message); deny(); }
//
// log_key is the log's verifier key, "<name>+<8 hex>+<base64 key>" (Ed25519, type 0x01, or
// ECDSA P-256, type 0x02), as `licentra audit verify --key` takes it. Checked, in order:
//   - the receipt is a well-formed tlog-proof of at most kMaxReceiptBytes: malformed_receipt;
//   - its checkpoint carries a valid signature by log_key (receipt_wrong_log when the log key
//     did not sign it at all, receipt_signature_invalid when its signature is bad) and, if
//     expected_origin is set, names that origin (receipt_wrong_log);
//   - the extra data is a canonical audit entry whose seq is the receipt's index, and RFC 9162
//     §2.1.3.2 leads from its leaf hash through the proof to the checkpoint's root hash
//     (malformed_receipt for the entry, receipt_proof_invalid for the rest);
//   - the entry is an allowed "token.sign" whose token_sha256 is the SHA-256 of the token's
//     bytes: receipt_token_mismatch.
// It does not verify the token's signature or claims: call Verifier::verify() for that too.
struct ReceiptOptions {
    // Required checkpoint origin (the log's audit.origin); empty accepts any log signed by the key.
    std::string expected_origin;
};

struct ReceiptResult {
    VerifyErrc error = VerifyErrc::ok;
    std::string message;          // empty on success
    std::uint64_t index = 0;      // on success: the entry's position in the log
    std::string origin;           // on success: the checkpoint's origin
    std::uint64_t tree_size = 0;  // on success: entries the checkpoint covers
    std::string entry_json;       // on success: the logged entry (canonical JSON, one line)

    [[nodiscard]] bool ok() const noexcept { return error == VerifyErrc::ok; }
    explicit operator bool() const noexcept { return ok(); }
};

[[nodiscard]] ReceiptResult verify_receipt(std::string_view token, std::string_view receipt,
                                           std::string_view log_key,
                                           const ReceiptOptions& options = {}) noexcept;

}  // namespace licentra
