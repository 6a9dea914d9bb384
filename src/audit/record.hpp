// Builds audit entries from what a use case has in hand (the request's claims, the signed
// token) while keeping only what the privacy policy allows: claim names, the token's SHA-256,
// and keyed pseudonyms of the claims the policy names. Values, tokens and secrets never reach
// an Entry, because Entry has no field that could hold them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/anchor.hpp"
#include "audit/entry.hpp"

namespace licentra::audit {

struct TokenDecision {
    std::string principal;
    std::string key;
    std::optional<std::string> kid;
    std::optional<std::uint64_t> version;
    Outcome result = Outcome::denied;
    std::optional<std::string> reason;
    std::optional<std::string> request_id;
    std::optional<std::string> policy_sha256;
    // The issued compact JWS (empty when none was issued). Only its SHA-256 is recorded.
    std::string_view token;
    // The request's claims object (null or non-object: no claims). Only the names are recorded;
    // names outside the claim-name alphabet (entry.hpp) are left out.
    const nlohmann::json* claims = nullptr;
    // Claim names the policy says to record; each present one gets a pseudonym.
    std::vector<std::string> recorded_claims;
};

// action = "token.sign". A claim named in recorded_claims gets
// HMAC-SHA256(pseudonym key, name || 0x00 || canonical JSON of its value), hex. Errors: the
// Pseudonymizer's, usage if recorded_claims is non-empty and pseudonymizer is null, or
// validate_entry's.
[[nodiscard]] core::Result<Entry> make_token_entry(const TokenDecision& decision,
                                                   Pseudonymizer* pseudonymizer);

// The pseudonym of one claim value, as make_token_entry computes it.
// With an epoch, under that epoch's key (audit/pseudonym_epoch.hpp).
[[nodiscard]] core::Result<std::string> claim_pseudonym(
    Pseudonymizer& pseudonymizer, std::string_view claim_name, const nlohmann::json& value,
    const std::optional<PseudonymEpoch>& epoch = std::nullopt);

}  // namespace licentra::audit
