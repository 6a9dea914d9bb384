// licentra-signd: the signing daemon. See docs/daemon.md.
//
//   licentra-signd --config FILE [--check-config]
//   licentra-signd --version
//
// Exit codes: 0 clean shutdown (or a valid configuration with --check-config); 1 a runtime
// failure (HSM, audit log, listeners); 2 an invalid command line, configuration or policy.
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "app/daemon/daemon.hpp"
#include "app/version.hpp"

int main(int argc, char** argv) {
    // A file-size limit (RLIMIT_FSIZE) must fail the write with EFBIG, which the audit log
    // handles like a full disk (fail closed, 503), rather than kill the daemon with SIGXFSZ.
    std::signal(SIGXFSZ, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string config;
    bool check_only = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--config" && i + 1 < args.size()) {
            config = args[++i];
        } else if (args[i].rfind("--config=", 0) == 0) {
            config = args[i].substr(9);
        } else if (args[i] == "--check-config") {
            check_only = true;
        } else if (args[i] == "--version") {
            std::cout << licentra::app::version_line("licentra-signd");
            return 0;
        } else if (args[i] == "--help" || args[i] == "-h") {
            std::cout << "usage: licentra-signd --config FILE [--check-config]\n"
                      << "       licentra-signd --version\n";
            return 0;
        } else {
            std::cerr << "licentra-signd: unknown argument '" << args[i] << "'\n"
                      << "usage: licentra-signd --config FILE [--check-config]\n";
            return 2;
        }
    }
    if (config.empty()) {
        std::cerr << "usage: licentra-signd --config FILE [--check-config]\n";
        return 2;
    }
    return licentra::app::run_daemon(config, check_only);
}
