// Reads a daemon's audit log directory as JSON entries, in log order (segments "log-*").
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

namespace licentra::test {

[[nodiscard]] std::vector<nlohmann::json> audit_entries(const std::filesystem::path& dir);

}  // namespace licentra::test
