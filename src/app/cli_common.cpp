// Running the `licentra` command tree (CLI11), and reading local files with the OS error.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "app/cli.hpp"

namespace licentra::app {

namespace {

std::string os_error(const std::string& path, int err) {
    return "cannot read " + path + ": " + std::strerror(err);
}

// The deepest command the parser selected, and its path ("licentra keys list").
const CLI::App* selected_command(const CLI::App& app, std::string* path) {
    *path = app.get_name();
    const CLI::App* at = &app;
    while (true) {
        const auto subs = at->get_subcommands();
        if (subs.empty()) break;
        at = subs.front();
        *path += " " + at->get_name();
    }
    return at;
}

}  // namespace

std::optional<std::string> read_local_file(const std::string& path, std::string* error,
                                           std::size_t limit, bool allow_stdin) {
    std::FILE* f = nullptr;
    const bool is_stdin = allow_stdin && path == "-";
    if (is_stdin) {
        f = stdin;
    } else {
        f = std::fopen(path.c_str(), "rb");
        if (f == nullptr) {
            *error = os_error(path, errno);
            return std::nullopt;
        }
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(is_stdin ? nullptr : f, &std::fclose);
    std::string data;
    char buf[8192];
    while (true) {
        const std::size_t n = std::fread(buf, 1, sizeof buf, f);
        data.append(buf, n);
        if (data.size() > limit) {
            *error = (is_stdin ? std::string("standard input") : path) + " is larger than " +
                     std::to_string(limit) + " bytes";
            return std::nullopt;
        }
        if (n < sizeof buf) break;
    }
    if (std::ferror(f) != 0) {
        *error = os_error(is_stdin ? std::string("standard input") : path, errno);
        return std::nullopt;
    }
    return data;
}

bool check_readable(const std::string& path, std::string* error) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        *error = os_error(path, errno);
        return false;
    }
    char c = 0;
    const std::size_t n = std::fread(&c, 1, 1, f);
    const int err = errno;
    const bool failed = n == 0 && std::ferror(f) != 0;
    std::fclose(f);
    if (failed) {
        *error = os_error(path, err);
        return false;
    }
    return true;
}

int run_cli(CLI::App& app, std::vector<std::string> args, const Outcome& outcome) {
    std::reverse(args.begin(), args.end());  // CLI11 takes the words last first
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string message = e.what();
        // CLI11: "--dir: At Most 1 required but received 2".
        if (const auto at = message.find(": At Most 1 required but received ");
            e.get_name() == "ArgumentMismatch" && at != std::string::npos) {
            message = message.substr(0, at) + " is given more than once";
        }
        std::string path;
        const CLI::App* cmd = selected_command(app, &path);
        if (cmd->get_subcommands({}).empty() || !cmd->get_subcommands().empty()) {
            std::cerr << path << ": " << message << "\nRun '" << path << " --help' for usage.\n";
            return kExitUsage;
        }
        // A command group without its subcommand ("licentra", "licentra keys"): its usage.
        const auto space = path.rfind(' ');
        std::cerr << path << ": " << message << "\n"
                  << cmd->help(space == std::string::npos ? "" : path.substr(0, space));
        return kExitUsage;
    }
    return outcome.code;
}

}  // namespace licentra::app
