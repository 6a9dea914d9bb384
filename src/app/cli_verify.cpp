// licentra token verify: offline verification of a license token against a JWKS, and with
// --receipt of its inclusion in the signer's audit log, with the same library licensed products
// use (include/licentra/verify.hpp).
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "licentra/verify.hpp"

namespace licentra::app {

namespace {

constexpr const char* kVerifyFooter =
    R"(Verifies a license token offline against a JWK Set (for example a saved copy of
GET /.well-known/jwks.json). The token is read from TOKEN_FILE, or from standard input with
'-'; it is never taken from the command line, where other users could read it.

Exit codes: 0 valid, 1 invalid (the error code says why), 2 usage, 8 unreadable TOKEN_FILE,
JWKS, receipt or log key file.

With --receipt R --log-key K it also checks the token's inclusion receipt (GET
/v1/tokens/receipt): the receipt's checkpoint is signed by the audit log key K (the verifier key
file `licentra audit verify --key` takes), its inclusion proof reaches that checkpoint's root,
and the logged entry records this token's SHA-256. --log-origin also requires the log's origin.)";

struct VerifyCliOptions {
    std::string token;
    std::string jwks;
    bool json = false;
    long long leeway = -1;  // -1: not given
    std::string issuer;
    bool require_exp = false;
    long long now = -1;      // -1: not given
    std::string receipt;     // --receipt: tlog-proof file
    std::string log_key;     // --log-key: the audit log's verifier key file
    std::string log_origin;  // --log-origin
};

int local_error(const std::string& message) {
    std::cerr << "licentra: " << message << "\n";
    return kExitLocal;
}

int token_verify(const VerifyCliOptions& o) {
    const std::string& token_arg = o.token;
    std::string why;
    // Generous bound: a larger input is refused by the verifier with token_too_large anyway.
    auto token_text = read_local_file(token_arg, &why, 4 * kMaxTokenBytes, true);
    if (!token_text) {
        // Never echo the argument back if it looks like a token pasted on the command line.
        if (token_arg.find('.') != std::string::npos && token_arg.size() > 40) {
            std::cerr << "licentra token verify: TOKEN_FILE must be a file or '-'; pass the "
                         "token on standard input rather than on the command line\n";
            return kExitUsage;
        }
        return local_error(why);
    }
    std::string token = std::move(*token_text);
    // One trailing newline (as `echo` or an editor leaves) is not part of the token.
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();

    auto jwks = read_local_file(o.jwks, &why, kMaxJwksBytes);
    if (!jwks) return local_error(why);
    if (o.receipt.empty() != o.log_key.empty() || (!o.log_origin.empty() && o.receipt.empty())) {
        std::cerr << "licentra token verify: --receipt and --log-key go together (and "
                     "--log-origin needs them)\n";
        return kExitUsage;
    }
    std::optional<std::string> receipt;
    std::optional<std::string> log_key;
    if (!o.receipt.empty()) {
        // Generous bound: a larger receipt is refused by the verifier with malformed_receipt.
        receipt = read_local_file(o.receipt, &why, 2 * kMaxReceiptBytes);
        if (!receipt) return local_error(why);
        log_key = read_local_file(o.log_key, &why, 64 * 1024);
        if (!log_key) return local_error(why);
    }

    VerifyOptions options;
    if (o.leeway >= 0) options.leeway = std::chrono::seconds(o.leeway);
    if (o.now >= 0) {
        options.now = std::chrono::system_clock::time_point(std::chrono::seconds(o.now));
    }
    if (!o.issuer.empty()) options.expected_issuer = o.issuer;
    options.require_exp = o.require_exp;

    VerifyResult r = verify_token(*jwks, token, options);
    std::optional<ReceiptResult> logged;
    if (r.ok() && receipt) {
        ReceiptOptions ro;
        ro.expected_origin = o.log_origin;
        logged = verify_receipt(token, *receipt, *log_key, ro);
        if (!logged->ok()) {
            r.error = logged->error;
            r.message = "receipt: " + logged->message;
        }
    }
    if (o.json) {
        nlohmann::json out;
        out["valid"] = r.ok();
        if (r.ok()) {
            out["alg"] = r.alg;
            out["kid"] = r.kid;
            out["claims"] = r.claims;
            if (logged) {
                out["receipt"] = {{"index", logged->index},
                                  {"origin", logged->origin},
                                  {"tree_size", logged->tree_size}};
            }
        } else {
            out["error"] = std::string(to_string(r.error));
            out["message"] = r.message;
        }
        std::cout << out.dump(2) << "\n";
    } else if (r.ok()) {
        std::cout << "valid: " << r.alg << " signature by key " << r.kid << "\n";
        if (logged) {
            std::cout << "logged: entry " << logged->index << " of " << logged->origin
                      << ", in its signed checkpoint of " << logged->tree_size << " entries\n";
        }
        std::cout << r.claims.dump(2) << "\n";
    } else {
        std::cout << "invalid: " << to_string(r.error) << ": " << r.message << "\n";
    }
    return r.ok() ? kExitOk : kExitFailure;
}

}  // namespace

void add_token_verify(CLI::App& token, Outcome& outcome) {
    auto o = std::make_shared<VerifyCliOptions>();
    CLI::App* verify =
        token.add_subcommand("verify", "Verify a license token offline against a JWK Set");
    verify->add_option("TOKEN_FILE", o->token, "The token file, or - for standard input")
        ->required();
    verify->add_option("--jwks", o->jwks, "The JWK Set file")->required();
    verify->add_flag("--json", o->json, "Print {\"valid\":...} as JSON instead of text");
    verify
        ->add_option("--leeway", o->leeway,
                     "Allowed clock skew for exp/nbf/iat in seconds (default 60)")
        ->check(CLI::Range(0LL, 999999999999LL));
    verify->add_option("--issuer", o->issuer, "Require this \"iss\" claim");
    verify->add_flag("--require-exp", o->require_exp, "Refuse tokens without \"exp\"");
    verify
        ->add_option("--now", o->now,
                     "Verify as of this Unix time (seconds) instead of the current time")
        ->check(CLI::Range(0LL, 999999999999LL));
    verify->add_option("--receipt", o->receipt,
                       "The token's inclusion receipt (tlog-proof) from GET /v1/tokens/receipt");
    verify->add_option("--log-key", o->log_key,
                       "The audit log's checkpoint verifier key file (with --receipt)");
    verify->add_option("--log-origin", o->log_origin,
                       "Require the receipt's checkpoint to be of this log origin");
    verify->footer(kVerifyFooter);
    verify->callback([o, &outcome] { outcome.code = token_verify(*o); });
}

int cli_token_verify(const std::vector<std::string>& args_in) {
    std::vector<std::string> argv = args_in;
    if (argv.empty() || argv.front() != "token") argv.insert(argv.begin(), "token");
    CLI::App app("", "licentra");
    Outcome outcome;
    CLI::App* token = app.add_subcommand("token", "Verify license tokens offline");
    token->require_subcommand(1);
    add_token_verify(*token, outcome);
    return run_cli(app, std::move(argv), outcome);
}

}  // namespace licentra::app
