#include <iostream>

#include "app/cli.hpp"

namespace licentra::app {

int cli_policy(const std::vector<std::string>& args) {
    std::cerr << "licentra " << args.at(0) << ": not available in this build\n";
    return kExitUsage;
}

}  // namespace licentra::app
