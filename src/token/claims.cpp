#include "token/claims.hpp"

#include "core/bytes.hpp"
#include "crypto/random.hpp"

namespace licentra::token {

using core::ErrorKind;
using core::make_error;

core::Result<std::string> new_jti() {
    auto bytes = crypto::random_bytes(16);
    if (!bytes) return std::move(bytes).error();
    return core::base64url_encode(*bytes);
}

core::Result<nlohmann::json> make_claims(const nlohmann::json& caller_claims, std::string_view iss,
                                         core::TimePoint now, std::string_view jti) {
    if (!caller_claims.is_object()) {
        return make_error(ErrorKind::usage, "token.bad_claims", "claims must be a JSON object");
    }
    std::string reserved;
    for (std::string_view name : kReservedClaims) {
        if (caller_claims.contains(name)) {
            reserved += reserved.empty() ? "" : ", ";
            reserved += name;
        }
    }
    if (!reserved.empty()) {
        return make_error(ErrorKind::usage, "token.reserved_claim",
                          "claims set by the signer may not be supplied: " + reserved);
    }
    for (std::string_view name : {"exp", "nbf"}) {
        if (auto it = caller_claims.find(name); it != caller_claims.end() && !it->is_number()) {
            return make_error(ErrorKind::usage, "token.bad_claims",
                              "claim \"" + std::string(name) + "\" must be a NumericDate number");
        }
    }
    if (iss.empty()) return make_error(ErrorKind::usage, "token.bad_issuer", "empty issuer");
    if (jti.empty()) return make_error(ErrorKind::usage, "token.bad_jti", "empty token id");
    nlohmann::json claims = caller_claims;
    claims["iss"] = std::string(iss);
    claims["iat"] = core::unix_seconds(now);
    claims["jti"] = std::string(jti);
    return claims;
}

}  // namespace licentra::token
