// licentra token verify: offline verification of a license token against a JWKS, with the same
// library licensed products use (include/licentra/verify.hpp).
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "licentra/verify.hpp"

namespace licentra::app {

namespace {

constexpr const char* kVerifyUsage =
    R"(usage: licentra token verify TOKEN_FILE|- --jwks FILE [options]

Verifies a license token offline against a JWK Set (for example a saved copy of
GET /.well-known/jwks.json). The token is read from TOKEN_FILE, or from standard input with
'-'; it is never taken from the command line, where other users could read it.

options:
  --jwks FILE        the JWK Set (required)
  --json             print {"valid":...} as JSON instead of text
  --leeway SECONDS   allowed clock skew for exp/nbf/iat (default 60)
  --issuer ISS       require this "iss" claim
  --require-exp      refuse tokens without "exp"
  --now SECONDS      verify as of this Unix time instead of the current time

exit status: 0 valid, 1 invalid (the error code says why), 2 usage or unreadable input
)";

bool read_all(std::istream& in, std::string* out, std::size_t limit) {
    std::string data;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        data.append(buf, static_cast<std::size_t>(in.gcount()));
        if (data.size() > limit) return false;
    }
    *out = std::move(data);
    return true;
}

bool read_input(const std::string& name, std::size_t limit, std::string* out, std::string* why) {
    if (name == "-") {
        if (!read_all(std::cin, out, limit)) {
            *why = "standard input is larger than " + std::to_string(limit) + " bytes";
            return false;
        }
        return true;
    }
    std::ifstream in(name, std::ios::binary);
    if (!in) {
        *why = "cannot read " + name;
        return false;
    }
    if (!read_all(in, out, limit)) {
        *why = name + " is larger than " + std::to_string(limit) + " bytes";
        return false;
    }
    return true;
}

bool parse_seconds(const std::string& text, long long* out) {
    if (text.empty() || text.size() > 18) return false;
    long long v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return true;
}

int usage_error(const std::string& message) {
    std::cerr << "licentra token verify: " << message << "\n" << kVerifyUsage;
    return kExitUsage;
}

}  // namespace

int cli_token_verify(const std::vector<std::string>& args_in) {
    std::vector<std::string> argv = args_in;
    if (!argv.empty() && argv.front() == "token") argv.erase(argv.begin());
    if (!argv.empty() && argv.front() == "verify") argv.erase(argv.begin());
    Args args(argv, {"--jwks", "--leeway", "--issuer", "--now"},
              {"--json", "--require-exp", "--help", "-h"});
    if (!args.ok()) return usage_error(args.error());
    if (args.has("--help")) {
        std::cout << kVerifyUsage;
        return kExitOk;
    }
    if (args.positional().size() != 1) return usage_error("expected one TOKEN_FILE or '-'");
    auto jwks_path = args.get("--jwks");
    if (!jwks_path) return usage_error("--jwks FILE is required");

    const std::string& token_arg = args.positional()[0];
    std::string token;
    std::string why;
    // Generous bound: a larger input is refused by the verifier with token_too_large anyway.
    if (!read_input(token_arg, 4 * kMaxTokenBytes, &token, &why)) {
        // Never echo the argument back if it looks like a token pasted on the command line.
        if (token_arg.find('.') != std::string::npos && token_arg.size() > 40) {
            return usage_error(
                "TOKEN_FILE must be a file or '-'; pass the token on standard "
                "input rather than on the command line");
        }
        return usage_error(why);
    }
    // One trailing newline (as `echo` or an editor leaves) is not part of the token.
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();

    std::string jwks;
    if (!read_input(*jwks_path, kMaxJwksBytes, &jwks, &why)) return usage_error(why);

    VerifyOptions options;
    long long seconds = 0;
    if (auto v = args.get("--leeway")) {
        if (!parse_seconds(*v, &seconds)) return usage_error("--leeway needs whole seconds");
        options.leeway = std::chrono::seconds(seconds);
    }
    if (auto v = args.get("--now")) {
        if (!parse_seconds(*v, &seconds)) return usage_error("--now needs Unix seconds");
        options.now = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
    }
    if (auto v = args.get("--issuer")) options.expected_issuer = *v;
    options.require_exp = args.has("--require-exp");

    const VerifyResult r = verify_token(jwks, token, options);
    if (args.has("--json")) {
        nlohmann::json out;
        out["valid"] = r.ok();
        if (r.ok()) {
            out["alg"] = r.alg;
            out["kid"] = r.kid;
            out["claims"] = r.claims;
        } else {
            out["error"] = std::string(to_string(r.error));
            out["message"] = r.message;
        }
        std::cout << out.dump(2) << "\n";
    } else if (r.ok()) {
        std::cout << "valid: " << r.alg << " signature by key " << r.kid << "\n"
                  << r.claims.dump(2) << "\n";
    } else {
        std::cout << "invalid: " << to_string(r.error) << ": " << r.message << "\n";
    }
    return r.ok() ? kExitOk : kExitFailure;
}

}  // namespace licentra::app
