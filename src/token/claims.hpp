// License claims: the caller's entitlement claims plus what the daemon alone sets.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "core/time.hpp"

namespace licentra::token {

// Claims only the daemon may set (RFC 7519 §4.1.1 iss, §4.1.6 iat, §4.1.7 jti).
inline constexpr std::string_view kReservedClaims[] = {"iss", "iat", "jti"};

// A fresh JWT ID: 16 bytes from the CSPRNG, base64url (22 characters).
// Errors: kind internal, code "crypto.rng".
[[nodiscard]] core::Result<std::string> new_jti();

// Returns caller_claims plus "iss" = iss, "iat" = now in whole seconds (NumericDate),
// "jti" = jti. Errors (kind usage):
//   "token.bad_claims"     caller_claims is not a JSON object; "exp" or "nbf" present but not a
//                          number (RFC 7519 §2 NumericDate);
//   "token.reserved_claim" caller_claims already contains iss, iat or jti (the message names
//                          every one present);
//   "token.bad_issuer" / "token.bad_jti"  empty iss / jti.
// Policy checks (allowed claims, maximum validity) are not done here. Thread-safe.
[[nodiscard]] core::Result<nlohmann::json> make_claims(const nlohmann::json& caller_claims,
                                                       std::string_view iss, core::TimePoint now,
                                                       std::string_view jti);

}  // namespace licentra::token
