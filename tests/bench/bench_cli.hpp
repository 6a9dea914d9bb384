// Command-line parsing shared by the benchmarks (CLI11): --help prints the usage and exits 0, a
// bad command line prints the error and exits 2.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdlib>

namespace licentra::bench {

inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        std::exit(rc == 0 ? 0 : 2);
    }
}

}  // namespace licentra::bench
