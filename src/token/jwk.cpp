#include "token/jwk.hpp"

#include <algorithm>
#include <array>
#include <set>
#include <string_view>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "token/canonical_json.hpp"

namespace licentra::token {

using core::ErrorKind;
using core::make_error;

namespace {

core::Error component_error(std::string_view what) {
    return make_error(ErrorKind::internal, "token.jwk",
                      std::string("cannot read the public key's ") + std::string(what));
}

// RFC 7518 §6.3.1.1/§6.3.1.2: "n" and "e" are Base64urlUInt values, which MUST use the minimum
// number of octets to represent the value.
core::Bytes strip_leading_zeros(core::Bytes v) {
    auto first = std::find_if(v.begin(), v.end(), [](std::uint8_t b) { return b != 0; });
    if (first == v.end() && !v.empty()) first = v.end() - 1;  // the value 0 is one zero octet
    v.erase(v.begin(), first);
    return v;
}

constexpr std::array<std::string_view, 10> kReservedMembers = {
    "alg", "crv", "e", "key_ops", "kid", "kty", "n", "use", "x", "y"};

}  // namespace

core::Result<nlohmann::json> jwk_required_members(const crypto::PublicKey& key) {
    nlohmann::json jwk = nlohmann::json::object();
    switch (key.algorithm()) {
        case crypto::Algorithm::EdDSA: {
            auto x = key.ed25519_raw();
            if (x.size() != 32) return component_error("Ed25519 point");
            jwk["crv"] = "Ed25519";
            jwk["kty"] = "OKP";
            jwk["x"] = core::base64url_encode(x);
            return jwk;
        }
        case crypto::Algorithm::ES256:
        case crypto::Algorithm::ES384: {
            const bool p256 = key.algorithm() == crypto::Algorithm::ES256;
            const std::size_t field = p256 ? 32 : 48;
            auto [x, y] = key.ec_xy();
            // RFC 7518 §6.2.1.2: "The length of this octet string MUST be the full size of a
            // coordinate for the curve".
            if (x.size() != field || y.size() != field) return component_error("EC point");
            jwk["crv"] = p256 ? "P-256" : "P-384";
            jwk["kty"] = "EC";
            jwk["x"] = core::base64url_encode(x);
            jwk["y"] = core::base64url_encode(y);
            return jwk;
        }
        case crypto::Algorithm::PS256: {
            auto [n, e] = key.rsa_ne();
            n = strip_leading_zeros(std::move(n));
            e = strip_leading_zeros(std::move(e));
            if (n.empty() || e.empty()) return component_error("RSA modulus or exponent");
            jwk["e"] = core::base64url_encode(e);
            jwk["kty"] = "RSA";
            jwk["n"] = core::base64url_encode(n);
            return jwk;
        }
        default:
            return component_error("algorithm");
    }
}

core::Result<std::string> jwk_thumbprint(const crypto::PublicKey& key) {
    auto members = jwk_required_members(key);
    if (!members) return std::move(members).error();
    // RFC 7638 §3: hash the UTF-8 of the JSON object containing only the required members,
    // "with no whitespace or line breaks" and "in lexicographic order".
    auto text = canonical_json(*members);
    if (!text) return std::move(text).error();
    auto digest = crypto::sha256(core::as_bytes(*text));
    return core::base64url_encode(digest);
}

core::Result<nlohmann::json> public_jwk(const crypto::PublicKey& key) {
    auto jwk = jwk_required_members(key);
    if (!jwk) return jwk;
    auto kid = jwk_thumbprint(key);
    if (!kid) return std::move(kid).error();
    (*jwk)["alg"] = std::string(crypto::jws_name(key.algorithm()));
    (*jwk)["kid"] = *kid;
    (*jwk)["use"] = "sig";
    return jwk;
}

core::Result<nlohmann::json> jwks_document(const std::vector<JwksKey>& keys) {
    std::vector<std::pair<std::string, nlohmann::json>> entries;
    entries.reserve(keys.size());
    std::set<std::string> seen;
    for (const auto& entry : keys) {
        if (entry.key == nullptr) {
            return make_error(ErrorKind::usage, "token.jwks", "JWKS entry without a key");
        }
        auto jwk = public_jwk(*entry.key);
        if (!jwk) return jwk;
        std::string kid = (*jwk)["kid"].get<std::string>();
        if (!seen.insert(kid).second) {
            return make_error(ErrorKind::usage, "token.jwks", "key " + kid + " listed twice");
        }
        if (!entry.metadata.is_null()) {
            if (!entry.metadata.is_object()) {
                return make_error(ErrorKind::usage, "token.jwks",
                                  "metadata of key " + kid + " is not a JSON object");
            }
            for (const auto& [name, value] : entry.metadata.items()) {
                if (std::find(kReservedMembers.begin(), kReservedMembers.end(), name) !=
                    kReservedMembers.end()) {
                    return make_error(
                        ErrorKind::usage, "token.jwks",
                        "metadata of key " + kid + " redefines JWK member \"" + name + "\"");
                }
                (*jwk)[name] = value;
            }
        }
        entries.emplace_back(std::move(kid), std::move(*jwk));
    }
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    nlohmann::json doc = nlohmann::json::object();
    doc["keys"] = nlohmann::json::array();
    for (auto& [kid, jwk] : entries) doc["keys"].push_back(std::move(jwk));
    return doc;
}

core::Result<std::string> jwks_json(const std::vector<JwksKey>& keys) {
    auto doc = jwks_document(keys);
    if (!doc) return std::move(doc).error();
    return canonical_json(*doc);
}

}  // namespace licentra::token
