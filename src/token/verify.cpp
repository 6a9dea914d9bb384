// Implementation of include/licentra/verify.hpp. Every rule quotes the RFC sentence it enforces.
#include "licentra/verify.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/ecdsa.hpp"
#include "crypto/public_key.hpp"
#include "token/strict_json.hpp"

namespace licentra {

std::string_view to_string(VerifyErrc code) noexcept {
    switch (code) {
        case VerifyErrc::ok:
            return "ok";
        case VerifyErrc::token_too_large:
            return "token_too_large";
        case VerifyErrc::malformed_token:
            return "malformed_token";
        case VerifyErrc::malformed_base64url:
            return "malformed_base64url";
        case VerifyErrc::malformed_header:
            return "malformed_header";
        case VerifyErrc::malformed_claims:
            return "malformed_claims";
        case VerifyErrc::duplicate_member:
            return "duplicate_member";
        case VerifyErrc::alg_none:
            return "alg_none";
        case VerifyErrc::unsupported_algorithm:
            return "unsupported_algorithm";
        case VerifyErrc::crit_present:
            return "crit_present";
        case VerifyErrc::wrong_type:
            return "wrong_type";
        case VerifyErrc::missing_kid:
            return "missing_kid";
        case VerifyErrc::unknown_kid:
            return "unknown_kid";
        case VerifyErrc::ambiguous_kid:
            return "ambiguous_kid";
        case VerifyErrc::unusable_key:
            return "unusable_key";
        case VerifyErrc::algorithm_key_mismatch:
            return "algorithm_key_mismatch";
        case VerifyErrc::malformed_signature:
            return "malformed_signature";
        case VerifyErrc::signature_invalid:
            return "signature_invalid";
        case VerifyErrc::expired:
            return "expired";
        case VerifyErrc::not_yet_valid:
            return "not_yet_valid";
        case VerifyErrc::missing_expiry:
            return "missing_expiry";
        case VerifyErrc::wrong_issuer:
            return "wrong_issuer";
        case VerifyErrc::malformed_jwks:
            return "malformed_jwks";
        case VerifyErrc::internal:
            return "internal";
        case VerifyErrc::malformed_receipt:
            return "malformed_receipt";
        case VerifyErrc::malformed_log_key:
            return "malformed_log_key";
        case VerifyErrc::receipt_wrong_log:
            return "receipt_wrong_log";
        case VerifyErrc::receipt_signature_invalid:
            return "receipt_signature_invalid";
        case VerifyErrc::receipt_proof_invalid:
            return "receipt_proof_invalid";
        case VerifyErrc::receipt_token_mismatch:
            return "receipt_token_mismatch";
        default:
            return "unknown";
    }
}

namespace {

using crypto::Algorithm;

// Nesting bounds: a JOSE header or license payload never needs more; a bound keeps hostile
// input from driving recursion in the JSON library's serializer and destructor.
constexpr std::size_t kMaxHeaderDepth = 8;
constexpr std::size_t kMaxPayloadDepth = 32;
constexpr std::size_t kMaxJwksDepth = 8;
constexpr std::size_t kMaxJwksKeys = 1000;

using token::JsonProblem;
using token::parse_strict_json;
using token::ParsedJson;

VerifyResult fail(VerifyErrc code, std::string message) {
    VerifyResult r;
    r.error = code;
    r.message = std::move(message);
    return r;
}

std::size_t field_size(Algorithm alg) { return alg == Algorithm::ES384 ? 48 : 32; }

// ---------------------------------------------------------------------------------------------
// JWK parsing

struct KeyEntry {
    std::optional<crypto::PublicKey> key;  // set when usable
    Algorithm alg = Algorithm::EdDSA;      // the algorithm the key type pins
    std::string problem;                   // why the key is unusable
    int count = 0;                         // JWKs with this kid
};

struct JwkOutcome {
    std::optional<crypto::PublicKey> key;
    std::string problem;
};

JwkOutcome unusable(std::string why) { return JwkOutcome{std::nullopt, std::move(why)}; }

std::optional<core::Bytes> b64_member(const nlohmann::json& jwk, const char* name) {
    auto it = jwk.find(name);
    if (it == jwk.end() || !it->is_string()) return std::nullopt;
    auto bytes = core::base64url_decode(it->get_ref<const std::string&>());
    if (!bytes) return std::nullopt;
    return std::move(*bytes);
}

JwkOutcome parse_jwk(const nlohmann::json& jwk) {
    // A JWKS is public: private members mean the publisher leaked a private key; refuse to use it.
    for (const char* priv : {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}) {
        if (jwk.contains(priv)) {
            return unusable(std::string("JWK contains private member \"") + priv + "\"");
        }
    }
    // RFC 7517 §4.2: "use" "sig" (signature); §4.3 key_ops must allow "verify".
    if (auto it = jwk.find("use"); it != jwk.end() && (!it->is_string() || *it != "sig")) {
        return unusable("JWK \"use\" is not \"sig\"");
    }
    if (auto it = jwk.find("key_ops"); it != jwk.end()) {
        if (!it->is_array() ||
            std::find(it->begin(), it->end(), nlohmann::json("verify")) == it->end()) {
            return unusable("JWK \"key_ops\" does not allow \"verify\"");
        }
    }
    auto kty_it = jwk.find("kty");
    if (kty_it == jwk.end() || !kty_it->is_string()) return unusable("JWK without \"kty\"");
    const std::string& kty = kty_it->get_ref<const std::string&>();
    auto crv_it = jwk.find("crv");
    const std::string crv =
        (crv_it != jwk.end() && crv_it->is_string()) ? crv_it->get<std::string>() : std::string();
    std::optional<crypto::PublicKey> key;
    if (kty == "OKP") {
        // RFC 8037 §2: "crv" "Ed25519", "x" the public key.
        if (crv != "Ed25519") return unusable("unsupported OKP curve");
        auto x = b64_member(jwk, "x");
        if (!x || x->size() != 32) return unusable("Ed25519 \"x\" is not 32 base64url bytes");
        auto k = crypto::PublicKey::from_ed25519(*x);
        if (!k) return unusable("Ed25519 key rejected: " + k.error().message);
        key.emplace(std::move(*k));
    } else if (kty == "EC") {
        if (crv != "P-256" && crv != "P-384") return unusable("unsupported EC curve");
        const std::size_t field = crv == "P-256" ? 32 : 48;
        auto x = b64_member(jwk, "x");
        auto y = b64_member(jwk, "y");
        // RFC 7518 §6.2.1.2: "The length of this octet string MUST be the full size of a
        // coordinate for the curve specified in the "crv" parameter."
        if (!x || !y || x->size() != field || y->size() != field) {
            return unusable("EC \"x\"/\"y\" are not full-width base64url coordinates");
        }
        core::Bytes point{0x04};
        point.insert(point.end(), x->begin(), x->end());
        point.insert(point.end(), y->begin(), y->end());
        auto k = crypto::PublicKey::from_ec_point(
            field == 32 ? crypto::Curve::P256 : crypto::Curve::P384, point);
        if (!k) return unusable("EC key rejected: " + k.error().message);
        key.emplace(std::move(*k));
    } else if (kty == "RSA") {
        auto n = b64_member(jwk, "n");
        auto e = b64_member(jwk, "e");
        // RFC 7518 §6.3.1.1: "The octet sequence MUST utilize the minimum number of octets to
        // represent the value" (so no leading zero octet).
        if (!n || !e || n->empty() || e->empty() || (*n)[0] == 0 || (*e)[0] == 0) {
            return unusable("RSA \"n\"/\"e\" are not minimal base64url integers");
        }
        auto k = crypto::PublicKey::from_rsa(*n, *e);  // refuses moduli below 3072 bits
        if (!k) return unusable("RSA key rejected: " + k.error().message);
        key.emplace(std::move(*k));
    } else {
        return unusable("unsupported key type \"" + kty + "\"");
    }
    // RFC 7517 §4.4: "alg" identifies the algorithm intended for use with the key; it must be
    // the one algorithm this key type pins.
    if (auto it = jwk.find("alg"); it != jwk.end()) {
        if (!it->is_string() || *it != crypto::jws_name(key->algorithm())) {
            return unusable("JWK \"alg\" does not fit its key type");
        }
    }
    return JwkOutcome{std::move(key), {}};
}

bool is_none(std::string_view alg) {
    if (alg.size() != 4) return false;
    std::string lower(alg);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return lower == "none";
}

// RFC 7515 §4.1.9: "typ" is a media type; "application/" may be omitted and media type names
// compare case-insensitively.
bool type_matches(std::string typ, std::string expected) {
    auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s;
    };
    typ = lower(std::move(typ));
    expected = lower(std::move(expected));
    constexpr std::string_view prefix = "application/";
    if (typ.rfind(prefix, 0) == 0) typ.erase(0, prefix.size());
    if (expected.rfind(prefix, 0) == 0) expected.erase(0, prefix.size());
    return typ == expected;
}

VerifyResult numeric_date(const nlohmann::json& claims, const char* name,
                          std::optional<double>* out) {
    auto it = claims.find(name);
    if (it == claims.end()) return {};
    // RFC 7519 §2 NumericDate: "A JSON numeric value representing the number of seconds from
    // 1970-01-01T00:00:00Z UTC".
    if (!it->is_number()) {
        return fail(VerifyErrc::malformed_claims,
                    std::string("claim \"") + name + "\" is not a NumericDate number");
    }
    double v = it->get<double>();
    if (!std::isfinite(v)) {
        return fail(VerifyErrc::malformed_claims,
                    std::string("claim \"") + name + "\" is not a finite number");
    }
    *out = v;
    return {};
}

}  // namespace

struct Verifier::Impl {
    std::map<std::string, KeyEntry, std::less<>> keys;
    std::size_t usable = 0;
};

VerifierOrError Verifier::from_jwks(std::string_view jwks_json) noexcept {
    VerifierOrError result;
    auto failed = [&](VerifyErrc code, std::string message) {
        result.error_ = code;
        result.message_ = std::move(message);
        return std::move(result);
    };
    try {
        if (jwks_json.size() > kMaxJwksBytes) {
            return failed(VerifyErrc::malformed_jwks,
                          "JWKS larger than " + std::to_string(kMaxJwksBytes) + " bytes");
        }
        ParsedJson doc = parse_strict_json(jwks_json, kMaxJwksDepth);
        if (doc.problem != JsonProblem::none) {
            return failed(VerifyErrc::malformed_jwks, "JWKS is not strict JSON: " + doc.detail);
        }
        // RFC 7517 §5: "The JSON object MUST have a "keys" member, with its value being an
        // array of JWKs."
        if (!doc.value.is_object()) {
            return failed(VerifyErrc::malformed_jwks, "JWKS is not a JSON object");
        }
        auto keys_it = doc.value.find("keys");
        if (keys_it == doc.value.end() || !keys_it->is_array()) {
            return failed(VerifyErrc::malformed_jwks, "JWKS has no \"keys\" array");
        }
        if (keys_it->size() > kMaxJwksKeys) {
            return failed(VerifyErrc::malformed_jwks, "JWKS has too many keys");
        }
        auto impl = std::make_shared<Impl>();
        for (const auto& jwk : *keys_it) {
            if (!jwk.is_object()) {
                return failed(VerifyErrc::malformed_jwks, "a JWKS entry is not a JSON object");
            }
            auto kid_it = jwk.find("kid");
            // Without a string kid a key can never be selected: nothing to record.
            if (kid_it == jwk.end() || !kid_it->is_string()) continue;
            KeyEntry& entry = impl->keys[kid_it->get<std::string>()];
            ++entry.count;
            if (entry.count > 1) {
                if (entry.key) --impl->usable;
                entry.key.reset();
                entry.problem = "more than one key has this kid";
                continue;
            }
            JwkOutcome outcome = parse_jwk(jwk);
            if (outcome.key) {
                entry.alg = outcome.key->algorithm();
                entry.key = std::move(outcome.key);
                ++impl->usable;
            } else {
                entry.problem = std::move(outcome.problem);
            }
        }
        result.verifier_ = Verifier(std::move(impl));
        return result;
    } catch (...) {
        return failed(VerifyErrc::internal, "unexpected failure while reading the JWKS");
    }
}

std::size_t Verifier::usable_key_count() const noexcept { return impl_->usable; }

VerifyResult Verifier::verify(std::string_view token, const VerifyOptions& options) const noexcept {
    try {
        if (token.size() > kMaxTokenBytes) {
            return fail(VerifyErrc::token_too_large,
                        "token longer than " + std::to_string(kMaxTokenBytes) + " bytes");
        }
        // RFC 7515 §7.1: BASE64URL(UTF8(JWS Protected Header)) || '.' || BASE64URL(JWS Payload)
        // || '.' || BASE64URL(JWS Signature).
        const auto dot1 = token.find('.');
        const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
        if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
            return fail(VerifyErrc::malformed_token, "a JWS compact token has three segments");
        }
        const std::string_view header_b64 = token.substr(0, dot1);
        const std::string_view payload_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
        const std::string_view signature_b64 = token.substr(dot2 + 1);
        // An empty signature is judged after the header, so an unsecured token (alg none,
        // RFC 7515 §A.5: empty signature) is reported as alg_none.
        if (header_b64.empty() || payload_b64.empty()) {
            return fail(VerifyErrc::malformed_token, "a token segment is empty");
        }
        // RFC 7515 §2: base64url "with all trailing '=' characters omitted ... and without the
        // inclusion of any line breaks, whitespace, or other additional characters". The core
        // decoder also refuses non-canonical trailing bits, so each token has one spelling.
        auto header_bytes = core::base64url_decode(header_b64);
        if (!header_bytes) {
            return fail(VerifyErrc::malformed_base64url, "header is not strict base64url");
        }
        auto payload_bytes = core::base64url_decode(payload_b64);
        if (!payload_bytes) {
            return fail(VerifyErrc::malformed_base64url, "payload is not strict base64url");
        }
        auto signature = core::base64url_decode(signature_b64);
        if (!signature) {
            return fail(VerifyErrc::malformed_base64url, "signature is not strict base64url");
        }

        // --- protected header
        ParsedJson header = parse_strict_json(core::as_chars(*header_bytes), kMaxHeaderDepth);
        if (header.problem == JsonProblem::duplicate) {
            return fail(VerifyErrc::duplicate_member, "header: " + header.detail);
        }
        if (header.problem != JsonProblem::none || !header.value.is_object()) {
            return fail(VerifyErrc::malformed_header, "header is not a JSON object");
        }
        const nlohmann::json& h = header.value;
        auto alg_it = h.find("alg");
        if (alg_it == h.end()) return fail(VerifyErrc::unsupported_algorithm, "header has no alg");
        if (!alg_it->is_string()) return fail(VerifyErrc::malformed_header, "alg is not a string");
        const std::string& alg_name = alg_it->get_ref<const std::string&>();
        // RFC 8725 §3.1/§3.2: never accept unsecured JWS; accept only the algorithms we issue.
        if (is_none(alg_name)) {
            return fail(VerifyErrc::alg_none, "unsecured tokens (alg none) are refused");
        }
        auto alg = crypto::algorithm_from_jws_name(alg_name);
        if (!alg) {
            return fail(VerifyErrc::unsupported_algorithm,
                        "algorithm is not one of EdDSA, "
                        "ES256, ES384, PS256");
        }
        // RFC 7515 §4.1.11: "If any of the listed extension Header Parameters are not understood
        // and supported by the recipient, then the JWS is invalid." We understand none, so any
        // crit (including a malformed or empty one, §4.1.11 "MUST NOT use the empty list")
        // invalidates the token.
        if (h.contains("crit")) {
            return fail(VerifyErrc::crit_present, "critical header extensions are not supported");
        }
        if (!options.expected_type.empty()) {
            auto typ_it = h.find("typ");
            if (typ_it == h.end() || !typ_it->is_string() ||
                !type_matches(typ_it->get<std::string>(), options.expected_type)) {
                return fail(VerifyErrc::wrong_type,
                            "token type is not \"" + options.expected_type + "\"");
            }
        }
        auto kid_it = h.find("kid");
        if (kid_it == h.end()) return fail(VerifyErrc::missing_kid, "header has no kid");
        if (!kid_it->is_string()) return fail(VerifyErrc::malformed_header, "kid is not a string");
        const std::string& kid = kid_it->get_ref<const std::string&>();

        if (signature->empty()) return fail(VerifyErrc::malformed_signature, "empty signature");

        // --- key selection
        auto key_it = impl_->keys.find(kid);
        if (key_it == impl_->keys.end()) {
            return fail(VerifyErrc::unknown_kid, "no key in the JWKS has this kid");
        }
        const KeyEntry& entry = key_it->second;
        if (entry.count > 1) {
            return fail(VerifyErrc::ambiguous_kid, "more than one key in the JWKS has this kid");
        }
        if (!entry.key) return fail(VerifyErrc::unusable_key, "key " + kid + ": " + entry.problem);
        // RFC 8725 §3.1: "each key MUST be used with exactly one algorithm".
        if (entry.alg != *alg) {
            return fail(VerifyErrc::algorithm_key_mismatch,
                        "token algorithm " + alg_name + " does not fit key " + kid + " (" +
                            std::string(crypto::jws_name(entry.alg)) + ")");
        }

        // --- signature shape, then the signature
        const crypto::PublicKey& key = *entry.key;
        switch (*alg) {
            case Algorithm::EdDSA:
                // RFC 8032 §5.1.6: an Ed25519 signature is 64 octets.
                if (signature->size() != 64) {
                    return fail(VerifyErrc::malformed_signature,
                                "Ed25519 signature is not 64 bytes");
                }
                break;
            case Algorithm::ES256:
            case Algorithm::ES384: {
                // RFC 7518 §3.4: "The result of the digital signature is the Elliptic Curve
                // (EC) point (R, S) ... turn R and S into octet sequences in big-endian order,
                // with each array being be 32 octets long [for P-256]". DER is not JWS.
                const std::size_t field = field_size(*alg);
                if (signature->size() != 2 * field) {
                    const bool der = !signature->empty() && (*signature)[0] == 0x30 &&
                                     crypto::ecdsa_der_to_raw(*signature, field).ok();
                    return fail(VerifyErrc::malformed_signature,
                                der ? "ECDSA signature is DER-encoded; JWS requires raw R||S"
                                    : "ECDSA signature is not exactly " +
                                          std::to_string(2 * field) + " bytes");
                }
                break;
            }
            case Algorithm::PS256: {
                // RFC 8017 §8.1.2 step 1: "If the length of the signature S is not k octets
                // ... output 'invalid signature'".
                const int k = EVP_PKEY_get_size(key.get());
                if (k <= 0 || signature->size() != static_cast<std::size_t>(k)) {
                    return fail(VerifyErrc::malformed_signature,
                                "RSA signature length differs from the modulus length");
                }
                break;
            }
            default:
                return fail(VerifyErrc::unsupported_algorithm, "unsupported algorithm");
        }
        const std::string_view signing_input = token.substr(0, dot2);
        if (!key.verify(core::as_bytes(signing_input), *signature)) {
            return fail(VerifyErrc::signature_invalid, "signature does not verify");
        }

        // --- claims (only read once the signature is known to be good)
        ParsedJson payload = parse_strict_json(core::as_chars(*payload_bytes), kMaxPayloadDepth);
        if (payload.problem == JsonProblem::duplicate) {
            return fail(VerifyErrc::duplicate_member, "claims: " + payload.detail);
        }
        if (payload.problem != JsonProblem::none || !payload.value.is_object()) {
            return fail(VerifyErrc::malformed_claims, "payload is not a JSON object");
        }
        const nlohmann::json& claims = payload.value;
        std::optional<double> exp, nbf, iat;
        if (auto r = numeric_date(claims, "exp", &exp); !r) return r;
        if (auto r = numeric_date(claims, "nbf", &nbf); !r) return r;
        if (auto r = numeric_date(claims, "iat", &iat); !r) return r;
        const auto now_tp = options.now.value_or(std::chrono::system_clock::now());
        const double now = std::chrono::duration<double>(now_tp.time_since_epoch()).count();
        const double leeway = static_cast<double>(options.leeway.count());
        // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time".
        if (exp && *exp <= now - leeway) return fail(VerifyErrc::expired, "token has expired");
        // RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the not-before".
        if (nbf && *nbf > now + leeway) {
            return fail(VerifyErrc::not_yet_valid, "token is not valid yet (nbf)");
        }
        if (iat && *iat > now + leeway) {
            return fail(VerifyErrc::not_yet_valid, "token was issued in the future (iat)");
        }
        if (options.require_exp && !exp) {
            return fail(VerifyErrc::missing_expiry, "token has no exp claim");
        }
        if (!options.expected_issuer.empty()) {
            auto iss_it = claims.find("iss");
            if (iss_it == claims.end() || !iss_it->is_string() ||
                *iss_it != options.expected_issuer) {
                return fail(VerifyErrc::wrong_issuer, "token issuer is not the expected one");
            }
        }

        VerifyResult ok;
        ok.alg = alg_name;
        ok.kid = kid;
        ok.claims_json = claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
        ok.claims = std::move(payload.value);
        return ok;
    } catch (...) {
        return fail(VerifyErrc::internal, "unexpected failure while verifying");
    }
}

VerifyResult verify_token(std::string_view jwks_json, std::string_view token,
                          const VerifyOptions& options) noexcept {
    auto verifier = Verifier::from_jwks(jwks_json);
    if (!verifier) return fail(verifier.error(), verifier.message());
    return verifier->verify(token, options);
}

}  // namespace licentra
