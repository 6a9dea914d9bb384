// The client profile file of `licentra`: named connection settings for the daemon.
//
//   profiles:
//     default:
//       server: https://signer.example.com:8443
//       cert: officer.crt.pem        # relative paths: against this file's directory
//       key: officer.key.pem
//       ca: ca.pem
//
// Parsed strictly through yaml::parse (the reader of the configuration and the policy): unknown
// keys, values that are not strings, duplicate keys, anchors, aliases and a named profile that
// does not exist are errors naming the file, line, column and key.
#include <cstdlib>
#include <filesystem>
#include <set>

#include "app/cli.hpp"
#include "yaml/document.hpp"

namespace licentra::app {

namespace {

namespace fs = std::filesystem;

std::string where(const std::string& file, const yaml::Node& node) {
    if (node.line <= 0) return file;
    return file + ":" + std::to_string(node.line) + ":" + std::to_string(node.column);
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
    const yaml::Document doc = yaml::parse(*text, yaml::Options{"profile file", 1024 * 1024});
    if (doc.empty || (!doc.fatal && doc.root != nullptr && doc.root->is_null())) {
        if (name.empty()) return true;
        *error = file + ": profiles." + wanted + ": no such profile (the file is empty)";
        return false;
    }
    if (!doc.issues.empty()) {
        const yaml::Issue& i = doc.issues.front();
        *error = file + ":" + std::to_string(i.line) + ":" + std::to_string(i.column) + ": " +
                 (i.path.empty() ? "" : i.path + ": ") + i.message;
        return false;
    }
    const yaml::Node& root = *doc.root;
    if (!root.is_map()) {
        *error = where(file, root) + ": the file must be a map with the key 'profiles'";
        return false;
    }
    // Duplicate keys were reported above.
    const yaml::Node* profiles = nullptr;
    const yaml::Node* profiles_key = &root;
    for (const auto& [key, value] : root.pairs) {
        if (key->value != "profiles") {
            *error = where(file, *key) + ": " + key->value + ": unknown key (expected 'profiles')";
            return false;
        }
        profiles = value;
        profiles_key = key;
    }
    if (profiles != nullptr && !profiles->is_null() && !profiles->is_map()) {
        *error = where(file, *profiles) + ": profiles: must be a map of profile names";
        return false;
    }
    // Every profile is checked, not only the one used: a mistake anywhere is reported.
    std::set<std::string> names;
    bool chosen = false;
    const fs::path base = fs::path(file).parent_path();
    Connection found;
    if (profiles != nullptr && profiles->is_map()) {
        for (const auto& [pkey, body] : profiles->pairs) {
            const std::string& pname = pkey->value;
            const std::string path = "profiles." + pname;
            names.insert(pname);
            if (!body->is_map()) {
                *error =
                    where(file, *body) + ": " + path + ": must be a map with server, cert, key, ca";
                return false;
            }
            Connection c;
            for (const auto& [fkey, value] : body->pairs) {
                const std::string& key = fkey->value;
                const std::string kpath = path + "." + key;
                std::string* target = key == "server" ? &c.server
                                      : key == "cert" ? &c.cert
                                      : key == "key"  ? &c.key
                                      : key == "ca"   ? &c.ca
                                                      : nullptr;
                if (target == nullptr) {
                    *error = where(file, *fkey) + ": " + kpath +
                             ": unknown key (expected server, cert, key, ca)";
                    return false;
                }
                if (!value->is_scalar() || value->value.empty()) {
                    *error = where(file, value->line > 0 ? *value : *fkey) + ": " + kpath +
                             ": must be a non-empty string";
                    return false;
                }
                *target = value->value;
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
            where(file, *profiles_key) + ": profiles." + wanted + ": no such profile" +
            (known.empty() ? std::string(" (the file has none)") : " (the file has " + known + ")");
        return false;
    }
    *out = found;
    return true;
}

}  // namespace licentra::app
