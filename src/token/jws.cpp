#include "token/jws.hpp"

#include <chrono>

#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "licentra/verify.hpp"
#include "token/canonical_json.hpp"
#include "token/jwk.hpp"

namespace licentra::token {

using core::ErrorKind;
using core::make_error;

static_assert(kMaxTokenBytes == licentra::kMaxTokenBytes,
              "issued tokens must fit what products accept");

namespace {

bool is_base64url_text(std::string_view s) {
    for (char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

// Largest signature a token may carry: RSA-8192 (1024 bytes), base64url-encoded.
constexpr std::size_t kMaxSignatureB64 = (1024 * 4 + 2) / 3;

}  // namespace

core::Result<SigningInput> make_signing_input(crypto::Algorithm alg, std::string_view kid,
                                              const nlohmann::json& claims) {
    if (!claims.is_object()) {
        return make_error(ErrorKind::usage, "token.bad_claims", "claims must be a JSON object");
    }
    // Our kids are RFC 7638 thumbprints (43 base64url characters); anything else in the header
    // would be a bug upstream.
    if (kid.empty() || kid.size() > 128 || !is_base64url_text(kid)) {
        return make_error(ErrorKind::usage, "token.bad_kid", "kid must be base64url text");
    }
    nlohmann::json header = nlohmann::json::object();
    header["alg"] = std::string(crypto::jws_name(alg));
    header["kid"] = std::string(kid);
    header["typ"] = std::string(kTokenType);
    auto header_text = canonical_json(header);
    if (!header_text) return std::move(header_text).error();
    auto payload_text = canonical_json(claims);
    if (!payload_text) return std::move(payload_text).error();

    SigningInput input;
    input.alg = alg;
    input.kid = std::string(kid);
    // RFC 7515 §5.1 step 6: ASCII(BASE64URL(UTF8(JWS Protected Header)) || '.' ||
    // BASE64URL(JWS Payload)).
    input.text = core::base64url_encode(core::as_bytes(*header_text));
    input.text += '.';
    input.text += core::base64url_encode(core::as_bytes(*payload_text));
    if (input.text.size() + 1 + kMaxSignatureB64 > kMaxTokenBytes) {
        return make_error(ErrorKind::usage, "token.too_large",
                          "claims too large: a token may not exceed " +
                              std::to_string(kMaxTokenBytes) + " bytes");
    }
    return input;
}

core::Result<std::string> assemble_token(const SigningInput& input, core::ByteView signature) {
    bool ok = false;
    switch (input.alg) {
        case crypto::Algorithm::EdDSA:
        case crypto::Algorithm::ES256:
        case crypto::Algorithm::ES384:
            // RFC 7518 §3.4: ECDSA JWS signatures are the fixed-width R||S concatenation.
            ok = signature.size() == crypto::raw_signature_size(input.alg);
            break;
        case crypto::Algorithm::PS256:
            ok = signature.size() >= 384 && signature.size() <= 1024;
            break;
        default:
            ok = false;
            break;
    }
    if (!ok) {
        return make_error(ErrorKind::internal, "token.bad_signature",
                          "signature length " + std::to_string(signature.size()) +
                              " does not fit " + std::string(crypto::jws_name(input.alg)));
    }
    std::string token = input.text;
    token += '.';
    token += core::base64url_encode(signature);
    return token;
}

core::Status check_token(std::string_view token, const crypto::PublicKey& key) {
    auto failed = [](std::string why) {
        return make_error(ErrorKind::integrity, "token.self_check",
                          "issued token does not verify: " + why);
    };
    auto jwk = public_jwk(key);
    if (!jwk) return std::move(jwk).error();
    nlohmann::json jwks = {{"keys", nlohmann::json::array({*jwk})}};
    auto verifier = licentra::Verifier::from_jwks(jwks.dump());
    if (!verifier) return failed(verifier.message());
    auto result = verifier->verify(token);
    // verify() checks header, key and signature before it looks at the claims, so a time
    // verdict means everything this check is about passed; the claims' validity window is the
    // caller's (policy's) business, not a signing fault.
    switch (result.error) {
        case licentra::VerifyErrc::ok:
        case licentra::VerifyErrc::expired:
        case licentra::VerifyErrc::not_yet_valid:
            return {};
        default:
            return failed(std::string(licentra::to_string(result.error)));
    }
}

core::Result<std::string> sign_token(crypto::Signer& signer, const nlohmann::json& claims) {
    const crypto::PublicKey& key = signer.public_key();
    if (key.algorithm() != signer.algorithm()) {
        return make_error(ErrorKind::internal, "token.key_mismatch",
                          "signer algorithm does not match its public key");
    }
    auto kid = jwk_thumbprint(key);
    if (!kid) return std::move(kid).error();
    auto input = make_signing_input(signer.algorithm(), *kid, claims);
    if (!input) return std::move(input).error();
    auto signature = signer.sign(core::as_bytes(input->text));
    if (!signature) return std::move(signature).error();
    auto token = assemble_token(*input, *signature);
    if (!token) return token;
    if (auto st = check_token(*token, key); !st) return std::move(st).error();
    return token;
}

std::string token_sha256_hex(std::string_view token) {
    return core::hex_encode(crypto::sha256(core::as_bytes(token)));
}

}  // namespace licentra::token
