// One located problem in a policy file, as every stage of the loader reports it.
#pragma once

#include <string>

namespace licentra::policy {

struct Diagnostic {
    std::string file;
    int line = 0;      // 1-based
    int column = 0;    // 1-based
    std::string path;  // key path: "principals[2].roles[0]"; empty for file-level problems
    std::string message;

    // "policy.yaml:12:5: principals[2].roles[0]: unknown role \"sigher\""
    [[nodiscard]] std::string to_string() const;
};

}  // namespace licentra::policy
