// Small text helpers of the policy loader's stages.
#pragma once

#include <string>
#include <string_view>

namespace licentra::policy {

[[nodiscard]] std::string quote(std::string_view s);
// ASCII lower case (claim names compare case-insensitively with the forbidden ones).
[[nodiscard]] std::string lower(std::string_view s);
// Claim names: 1-64 of [A-Za-z0-9_.:-].
[[nodiscard]] bool valid_claim_name(std::string_view n);

}  // namespace licentra::policy
