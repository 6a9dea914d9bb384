// Claim validation for Engine::validate_claims: every rule is checked and every violation
// reported, each naming the claim but never its value (values may be personal data).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "policy/engine.hpp"

namespace licentra::policy {

namespace {

std::uint64_t code_points(const std::string& s) noexcept {
    std::uint64_t n = 0;
    for (char c : s) {
        if ((static_cast<unsigned char>(c) & 0xC0u) != 0x80u) ++n;
    }
    return n;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool contains(const std::vector<std::string>& sorted, std::string_view name) {
    return std::binary_search(sorted.begin(), sorted.end(), name, std::less<>());
}

bool is_integer(const nlohmann::json& v) { return v.is_number_integer(); }

// Integer value, or nullopt when it does not fit int64 (an unsigned above INT64_MAX).
std::optional<std::int64_t> as_int64(const nlohmann::json& v) {
    if (v.is_number_unsigned()) {
        const auto u = v.get<std::uint64_t>();
        if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<std::int64_t>(u);
    }
    return v.get<std::int64_t>();
}

void add(std::vector<Violation>& out, const std::string& claim, const char* code,
         std::string message) {
    out.push_back(Violation{claim, code, std::move(message)});
}

// C0 controls, DEL and C1 controls (UTF-8 C2 80..C2 9F): invisible or terminal-active text that
// a license value has no use for and a log or a viewer may render misleadingly.
bool has_control_character(const std::string& s) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7F) return true;
        if (c == 0xC2 && i + 1 < s.size()) {
            const auto d = static_cast<unsigned char>(s[i + 1]);
            if (d >= 0x80 && d <= 0x9F) return true;
        }
    }
    return false;
}

// Every string anywhere in v (object members and array items included).
bool any_string_has_control_character(const nlohmann::json& v) {
    if (v.is_string()) return has_control_character(v.get_ref<const std::string&>());
    if (v.is_array() || v.is_object()) {
        for (const auto& item : v) {
            if (any_string_has_control_character(item)) return true;
        }
        if (v.is_object()) {
            for (auto it = v.begin(); it != v.end(); ++it) {
                if (has_control_character(it.key())) return true;
            }
        }
    }
    return false;
}

void check_string(std::vector<Violation>& out, const std::string& claim, const std::string& s,
                  const ValueRule& r, const char* what) {
    const std::uint64_t n = code_points(s);
    if (r.min_length && n < *r.min_length) {
        add(out, claim, "policy.claim_too_short",
            std::string(what) + " is shorter than " + std::to_string(*r.min_length) +
                " characters");
    }
    if (r.max_length && n > *r.max_length) {
        add(out, claim, "policy.claim_too_long",
            std::string(what) + " is longer than " + std::to_string(*r.max_length) + " characters");
    }
    if (!r.one_of.empty() && std::find(r.one_of.begin(), r.one_of.end(), s) == r.one_of.end()) {
        add(out, claim, "policy.claim_not_in_set",
            std::string(what) + " is not one of the values the policy allows");
    }
}

void check_value(std::vector<Violation>& out, const std::string& claim, const nlohmann::json& v,
                 const ValueRule& r) {
    auto type_error = [&] {
        add(out, claim, "policy.claim_type",
            "value must be of type " + std::string(value_type_name(r.type)));
    };
    switch (r.type) {
        case ValueType::string:
            if (!v.is_string()) return type_error();
            check_string(out, claim, v.get_ref<const std::string&>(), r, "value");
            return;
        case ValueType::integer: {
            if (!is_integer(v)) return type_error();
            const auto i = as_int64(v);
            if (!i || (r.max && *i > *r.max)) {
                add(out, claim, "policy.claim_above_max",
                    "value is above the maximum " + std::to_string(r.max.value_or(INT64_MAX)));
            } else if (r.min && *i < *r.min) {
                add(out, claim, "policy.claim_below_min",
                    "value is below the minimum " + std::to_string(*r.min));
            }
            return;
        }
        case ValueType::boolean:
            if (!v.is_boolean()) return type_error();
            return;
        case ValueType::string_list: {
            if (!v.is_array()) return type_error();
            if (r.max_items && v.size() > *r.max_items) {
                add(out, claim, "policy.claim_too_many_items",
                    "list has more than " + std::to_string(*r.max_items) + " items");
            }
            for (const auto& item : v) {
                if (!item.is_string()) {
                    add(out, claim, "policy.claim_type", "list items must be strings");
                    continue;
                }
                check_string(out, claim, item.get_ref<const std::string&>(), r, "a list item");
            }
            return;
        }
        default:
            return type_error();
    }
}

}  // namespace

std::vector<Violation> Engine::validate_claims(std::string_view key, const nlohmann::json& claims,
                                               core::TimePoint now) const {
    std::vector<Violation> out;
    const KeyRules* k = key_rules(key);
    if (k == nullptr) {
        add(out, "", "policy.unknown_key", "key \"" + std::string(key) + "\" is not in the policy");
        return out;
    }
    if (!claims.is_object()) {
        add(out, "", "policy.claims_not_object", "claims must be a JSON object");
        return out;
    }
    const ClaimRules& cr = k->claims;
    for (auto it = claims.begin(); it != claims.end(); ++it) {
        const std::string& name = it.key();
        if (std::find(kDaemonClaims.begin(), kDaemonClaims.end(), name) != kDaemonClaims.end()) {
            add(out, name, "policy.claim_reserved", "the signer sets \"" + name + "\" itself");
            continue;
        }
        if (name == "exp" || name == "nbf") continue;  // checked below
        if (contains(cr.required, name) || contains(cr.allowed, name)) {
            auto rule = cr.rules.find(name);
            const bool controls_allowed =
                rule != cr.rules.end() && rule->second.allow_control_characters;
            if (!controls_allowed && any_string_has_control_character(it.value())) {
                add(out, name, "policy.claim_control_character",
                    "value contains a control character (U+0000-U+001F, U+007F-U+009F)");
            }
            if (rule != cr.rules.end()) check_value(out, name, it.value(), rule->second);
            continue;
        }
        if (contains(cr.forbidden, lower(name))) {
            add(out, name, "policy.claim_forbidden",
                "\"" + name + "\" is personal data and never allowed in a token");
            continue;
        }
        add(out, name, "policy.claim_not_allowed",
            "\"" + name + "\" is not an allowed claim for key \"" + k->name + "\"");
    }
    for (const std::string& name : cr.required) {
        if (!claims.contains(name)) {
            add(out, name, "policy.claim_missing", "required claim \"" + name + "\" is missing");
        }
    }

    // RFC 7519 §4.1.4: exp is a NumericDate; the token must not be accepted on or after it.
    // We require an integer and bound it by the key's max_validity from the issue time (now).
    const std::int64_t iat = core::unix_seconds(now);
    std::optional<std::int64_t> exp;
    auto e = claims.find("exp");
    if (e == claims.end()) {
        add(out, "exp", "policy.claim_missing", "required claim \"exp\" is missing");
    } else if (!is_integer(*e)) {
        add(out, "exp", "policy.claim_type", "exp must be an integer NumericDate");
    } else if (auto v = as_int64(*e); !v) {
        add(out, "exp", "policy.exp_beyond_max_validity", "exp is out of range");
    } else {
        exp = *v;
        if (*exp <= iat) {
            add(out, "exp", "policy.exp_not_in_future", "exp must be after the issue time");
        } else if (*exp - iat > k->max_validity.count()) {
            add(out, "exp", "policy.exp_beyond_max_validity",
                "exp is more than " + std::to_string(k->max_validity.count()) +
                    " seconds after the issue time");
        }
    }
    // RFC 7519 §4.1.5: nbf, optional NumericDate; a token valid from on or after its expiry
    // would never be valid.
    auto n = claims.find("nbf");
    if (n != claims.end()) {
        if (!is_integer(*n)) {
            add(out, "nbf", "policy.claim_type", "nbf must be an integer NumericDate");
        } else if (auto v = as_int64(*n); !v || (exp && *v >= *exp)) {
            add(out, "nbf", "policy.nbf_after_exp", "nbf must be before exp");
        }
    }
    return out;
}

}  // namespace licentra::policy
