// What a principal's roles grant, shared by validate() (who may approve or request, for the
// quorum checks) and compile() (the Engine's bitmasks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/model.hpp"

namespace licentra::policy {

// POSIX fnmatch(3) without flags: '*' any run, '?' one character.
[[nodiscard]] bool glob_match(const std::string& pattern, const std::string& text);

[[nodiscard]] constexpr std::uint16_t action_bit(Action a) noexcept {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(a));
}

// The first role of that name in roles, or null.
[[nodiscard]] const Role* find_role(const std::vector<Role>& roles, std::string_view name);

// The actions granted by the roles named: a bit per Action (action_bit) for global actions and
// per key, in the order of keys. Names not in roles grant nothing.
struct Permissions {
    std::uint16_t global = 0;
    std::vector<std::uint16_t> per_key;
};
[[nodiscard]] Permissions permissions_of(const std::vector<std::string>& role_names,
                                         const std::vector<Role>& roles,
                                         const std::vector<KeyRules>& keys);

}  // namespace licentra::policy
