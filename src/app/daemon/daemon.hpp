// licentra-signd's composition root: loads configuration and policy, opens the HSM, the audit
// log and the listeners, wires the use cases, and runs until SIGTERM/SIGINT.
#pragma once

#include <filesystem>

namespace licentra::app {

// Returns the process exit code (see signd_main.cpp).
int run_daemon(const std::filesystem::path& config_path, bool check_only);

}  // namespace licentra::app
