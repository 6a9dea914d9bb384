#include "support/audit_entries.hpp"

#include <algorithm>

#include "support/test_support.hpp"

namespace licentra::test {

std::vector<nlohmann::json> audit_entries(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> segments;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().filename().string().rfind("log-", 0) == 0) segments.push_back(e.path());
    }
    std::sort(segments.begin(), segments.end());
    std::vector<nlohmann::json> out;
    for (const auto& s : segments) {
        const std::string text = read_file(s);
        std::size_t pos = 0;
        while (pos < text.size()) {
            const auto nl = text.find('\n', pos);
            if (nl == std::string::npos) break;
            out.push_back(nlohmann::json::parse(text.substr(pos, nl - pos)));
            pos = nl + 1;
        }
    }
    return out;
}

}  // namespace licentra::test
