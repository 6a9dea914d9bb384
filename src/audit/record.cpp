#include "audit/record.hpp"

#include <algorithm>

#include "crypto/digest.hpp"

namespace licentra::audit {

core::Result<std::string> claim_pseudonym(Pseudonymizer& pseudonymizer, std::string_view claim_name,
                                          const nlohmann::json& value,
                                          const std::optional<PseudonymEpoch>& epoch) {
    std::string input(claim_name);
    input.push_back('\0');
    try {
        input += value.dump();
    } catch (const std::exception&) {
        return core::make_error(core::ErrorKind::usage, "audit.claim_value_invalid",
                                "claim value is not valid UTF-8");
    }
    auto mac = epoch ? pseudonymizer.hmac_sha256(*epoch, core::as_bytes(input))
                     : pseudonymizer.hmac_sha256(core::as_bytes(input));
    if (!mac) return std::move(mac).error();
    return core::hex_encode(*mac);
}

core::Result<Entry> make_token_entry(const TokenDecision& d, Pseudonymizer* pseudonymizer) {
    Entry e;
    e.principal = d.principal;
    e.action = "token.sign";
    e.result = d.result;
    e.key = d.key;
    e.kid = d.kid;
    e.version = d.version;
    e.reason = d.reason;
    e.request_id = d.request_id;
    e.policy_sha256 = d.policy_sha256;
    if (!d.token.empty()) {
        e.token_sha256 = core::hex_encode(crypto::sha256(core::as_bytes(d.token)));
    }
    if (d.claims != nullptr && d.claims->is_object()) {
        std::vector<std::string> names;
        for (const auto& item : d.claims->items()) {
            Entry probe;
            probe.principal = "p";
            probe.action = "a";
            probe.claims = std::vector<std::string>{item.key()};
            if (validate_entry(probe) && names.size() < kMaxClaims) names.push_back(item.key());
        }
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        e.claims = std::move(names);

        if (!d.recorded_claims.empty()) {
            if (pseudonymizer == nullptr) {
                return core::make_error(core::ErrorKind::usage, "audit.no_pseudonymizer",
                                        "the policy records claims but no pseudonym key is set");
            }
            std::map<std::string, std::string> pseudonyms;
            for (const std::string& name : d.recorded_claims) {
                auto it = d.claims->find(name);
                if (it == d.claims->end()) continue;
                auto p = claim_pseudonym(*pseudonymizer, name, *it);
                if (!p) return std::move(p).error();
                pseudonyms.emplace(name, std::move(p).value());
            }
            if (!pseudonyms.empty()) e.pseudonyms = std::move(pseudonyms);
        }
    }
    if (auto st = validate_entry(e); !st) return std::move(st).error();
    return e;
}

}  // namespace licentra::audit
