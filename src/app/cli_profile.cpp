// The client profile file of `licentra`: named connection settings for the daemon.
//
//   profiles:
//     default:
//       server: https://signer.example.com:8443
//       cert: officer.crt.pem        # relative paths: against this file's directory
//       key: officer.key.pem
//       ca: ca.pem
//
// Parsed strictly: unknown keys, values that are not strings, duplicate keys and a named
// profile that does not exist are errors naming the file, line, column and key.
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "app/cli.hpp"

namespace licentra::app {

namespace {

namespace fs = std::filesystem;

std::string where(const std::string& file, const YAML::Mark& mark) {
    if (mark.is_null()) return file;
    return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string resolve(const fs::path& base, const std::string& value) {
    if (value.empty() || fs::path(value).is_absolute()) return value;
    return (base / value).lexically_normal().string();
}

}  // namespace

std::string profile_file_path() {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    if (xdg != nullptr && *xdg == '/') {
        return (fs::path(xdg) / "licentra" / "config.yaml").string();
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') return {};
    return (fs::path(home) / ".config" / "licentra" / "config.yaml").string();
}

bool load_profile(const std::string& file, const std::string& name, Connection* out,
                  std::string* error) {
    const std::string wanted = name.empty() ? std::string("default") : name;
    std::string read_error;
    const auto text = read_local_file(file, &read_error, 1024 * 1024);
    if (!text) {
        // Without a profile named, a missing file means "no profile".
        if (name.empty() && !fs::exists(file)) return true;
        *error = read_error;
        return false;
    }
    YAML::Node root;
    try {
        root = YAML::Load(*text);
    } catch (const YAML::ParserException& e) {
        *error = where(file, e.mark) + ": " + e.msg;
        return false;
    }
    if (!root || root.IsNull()) {
        if (name.empty()) return true;
        *error = file + ": profiles." + wanted + ": no such profile (the file is empty)";
        return false;
    }
    if (!root.IsMap()) {
        *error = where(file, root.Mark()) + ": the file must be a map with the key 'profiles'";
        return false;
    }
    YAML::Node profiles;
    bool have_profiles = false;
    YAML::Mark profiles_mark = root.Mark();
    for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string key = it->first.Scalar();
        if (key != "profiles") {
            *error =
                where(file, it->first.Mark()) + ": " + key + ": unknown key (expected 'profiles')";
            return false;
        }
        if (have_profiles) {
            *error = where(file, it->first.Mark()) + ": profiles: duplicate key";
            return false;
        }
        profiles.reset(it->second);
        have_profiles = true;
        profiles_mark = it->first.Mark();
    }
    if (have_profiles && !profiles.IsNull() && !profiles.IsMap()) {
        *error = where(file, profiles.Mark()) + ": profiles: must be a map of profile names";
        return false;
    }
    // Every profile is checked, not only the one used: a mistake anywhere is reported.
    std::set<std::string> names;
    bool chosen = false;
    const fs::path base = fs::path(file).parent_path();
    Connection found;
    if (have_profiles && profiles.IsMap()) {
        for (auto it = profiles.begin(); it != profiles.end(); ++it) {
            const std::string pname = it->first.Scalar();
            const std::string path = "profiles." + pname;
            if (!names.insert(pname).second) {
                *error = where(file, it->first.Mark()) + ": " + path + ": duplicate profile";
                return false;
            }
            const YAML::Node body = it->second;
            if (!body.IsMap()) {
                *error = where(file, body.Mark()) + ": " + path +
                         ": must be a map with server, cert, key, ca";
                return false;
            }
            Connection c;
            std::set<std::string> seen;
            for (auto f = body.begin(); f != body.end(); ++f) {
                const std::string key = f->first.Scalar();
                const std::string kpath = path + "." + key;
                std::string* target = key == "server" ? &c.server
                                      : key == "cert" ? &c.cert
                                      : key == "key"  ? &c.key
                                      : key == "ca"   ? &c.ca
                                                      : nullptr;
                if (target == nullptr) {
                    *error = where(file, f->first.Mark()) + ": " + kpath +
                             ": unknown key (expected server, cert, key, ca)";
                    return false;
                }
                if (!seen.insert(key).second) {
                    *error = where(file, f->first.Mark()) + ": " + kpath + ": duplicate key";
                    return false;
                }
                if (!f->second.IsScalar() || f->second.Scalar().empty()) {
                    *error = where(file, f->second.Mark().is_null() ? f->first.Mark()
                                                                    : f->second.Mark()) +
                             ": " + kpath + ": must be a non-empty string";
                    return false;
                }
                *target = f->second.Scalar();
            }
            if (pname == wanted) {
                found.server = c.server;
                found.cert = resolve(base, c.cert);
                found.key = resolve(base, c.key);
                found.ca = resolve(base, c.ca);
                chosen = true;
            }
        }
    }
    if (!chosen) {
        if (name.empty()) return true;
        std::string known;
        for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
        *error =
            where(file, profiles_mark) + ": profiles." + wanted + ": no such profile" +
            (known.empty() ? std::string(" (the file has none)") : " (the file has " + known + ")");
        return false;
    }
    *out = found;
    return true;
}

}  // namespace licentra::app
