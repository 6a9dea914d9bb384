#include "policy/permissions.hpp"

#include <fnmatch.h>

namespace licentra::policy {

// The parser's pattern check admits no '[', ']' or '\\', so no other fnmatch syntax can reach
// it.
bool glob_match(const std::string& pattern, const std::string& text) {
    return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

const Role* find_role(const std::vector<Role>& roles, std::string_view name) {
    for (const Role& r : roles) {
        if (r.name == name) return &r;
    }
    return nullptr;
}

Permissions permissions_of(const std::vector<std::string>& role_names,
                           const std::vector<Role>& roles, const std::vector<KeyRules>& keys) {
    Permissions out;
    out.per_key.assign(keys.size(), 0);
    for (const std::string& rn : role_names) {
        const Role* r = find_role(roles, rn);
        if (r == nullptr) continue;
        for (const RoleGrant& g : r->grants) {
            for (Action a : g.actions) {
                const std::uint16_t b = action_bit(a);
                if (!action_is_key_scoped(a)) {
                    out.global = static_cast<std::uint16_t>(out.global | b);
                    continue;
                }
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    for (const std::string& pat : g.keys) {
                        if (glob_match(pat, keys[i].name)) {
                            out.per_key[i] = static_cast<std::uint16_t>(out.per_key[i] | b);
                        }
                    }
                }
            }
        }
    }
    return out;
}

}  // namespace licentra::policy
