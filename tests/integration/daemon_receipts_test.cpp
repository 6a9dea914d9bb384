// Inclusion receipts from the real daemon (GET /v1/tokens/receipt), checked by the CLI, by the
// product library, and independently: the checkpoint by Go's golang.org/x/mod/sumdb/note, the
// inclusion by tests/verifiers/check_receipt.py (hashlib, RFC 9162 §2.1.3.2).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "licentra/verify.hpp"
#include "support/daemon.hpp"
#include "support/test_support.hpp"

namespace licentra::test {
namespace {

namespace fs = std::filesystem;

const fs::path kVerifiers = fs::path(LICENTRA_SOURCE_DIR) / "tests" / "verifiers";

// A checkpoint every second, so a receipt asked for right after signing waits for it.
DaemonOptions fast_checkpoints(std::string name = "signd") {
    DaemonOptions o;
    o.name = std::move(name);
    o.audit_config = "  checkpoint:\n    interval: 1s\n";
    return o;
}

std::string python3() {
    return fs::exists("/usr/bin/python3") ? std::string("/usr/bin/python3")
                                          : find_program("python3");
}

// Builds tests/verifiers/note_verify with the Go toolchain, offline, against Debian's
// golang-golang-x-mod-dev sources (GOPATH mode). Fails, never skips, without Go.
std::string build_go_verifier() {
    const std::string go = find_program("go");
    EXPECT_FALSE(go.empty()) << "required program 'go' is not installed; run scripts/setup";
    if (go.empty()) return {};
    const fs::path out = fs::path(LICENTRA_BINARY_DIR) / "tests" / "note_verify_receipts";
    const std::string cache = std::string(LICENTRA_BINARY_DIR) + "/go-cache";
    std::string output;
    const int rc = run_command(
        {"/usr/bin/env", "GOPATH=/usr/share/gocode", "GO111MODULE=off", "GOFLAGS=", "GOPROXY=off",
         "GOCACHE=" + cache, "HOME=" + cache, go, "build", "-o", out.string(),
         std::string(LICENTRA_SOURCE_DIR) + "/tests/verifiers/note_verify/main.go"},
        &output);
    EXPECT_EQ(rc, 0) << output;
    return rc == 0 ? out.string() : std::string();
}

class DaemonReceipts : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        deployment_ = new Deployment(example_policy_without_rate_limit());
        daemon_ = new Daemon(*deployment_, fast_checkpoints());
    }
    static void TearDownTestSuite() {
        delete daemon_;
        delete deployment_;
    }

    struct Signed {
        std::string token;
        std::uint64_t index = 0;
    };
    static Signed sign(Daemon& daemon, const std::string& key = "product-a") {
        auto r = daemon.request("license-server", "POST", "/v1/tokens",
                                R"({"key":")" + key + R"(","claims":)" + example_claims(key) + "}");
        EXPECT_EQ(r.status, 201u) << r.body;
        auto doc = nlohmann::json::parse(r.body);
        return {doc["token"].get<std::string>(), doc["audit_index"].get<std::uint64_t>()};
    }
    static HttpResult receipt(Daemon& daemon, std::uint64_t index,
                              const std::string& principal = "license-server") {
        return daemon.request(principal, "GET",
                              "/v1/tokens/receipt?audit_index=" + std::to_string(index));
    }
    // `licentra token verify` with the receipt; returns the exit status, output in *out.
    int cli_verify(const std::string& token, const std::string& receipt_text,
                   const fs::path& log_key, std::string* out) {
        write_file(dir_.path() / "token.jwt", token);
        write_file(dir_.path() / "receipt.tlog-proof", receipt_text);
        auto jwks = daemon_->request("license-server", "GET", "/.well-known/jwks.json");
        EXPECT_EQ(jwks.status, 200u);
        write_file(dir_.path() / "jwks.json", jwks.body);
        return run_command(
            {binary("licentra"), "token", "verify", (dir_.path() / "token.jwt").string(), "--jwks",
             (dir_.path() / "jwks.json").string(), "--receipt",
             (dir_.path() / "receipt.tlog-proof").string(), "--log-key", log_key.string(),
             "--json"},
            out);
    }
    // tests/verifiers/check_receipt.py; returns its exit status.
    int python_check(const std::string& token, const std::string& receipt_text, std::string* out) {
        const std::string py = python3();
        EXPECT_FALSE(py.empty()) << "python3 is not installed; run scripts/setup";
        write_file(dir_.path() / "py-token", token);
        write_file(dir_.path() / "py-receipt", receipt_text);
        return run_command(
            {py, (kVerifiers / "check_receipt.py").string(), (dir_.path() / "py-receipt").string(),
             (dir_.path() / "py-token").string()},
            out);
    }

    static Deployment* deployment_;
    static Daemon* daemon_;
    TempDir dir_;
};
Deployment* DaemonReceipts::deployment_ = nullptr;
Daemon* DaemonReceipts::daemon_ = nullptr;

// Replaces the first occurrence of `from` in text.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

TEST_F(DaemonReceipts, AFreshTokensReceiptWaitsForItsCheckpointAndVerifiesEverywhere) {
    const std::string go_verifier = build_go_verifier();
    ASSERT_FALSE(go_verifier.empty());
    // Asked for right after signing: no checkpoint covers the entry yet, the daemon waits.
    const Signed t = sign(*daemon_);
    auto r = receipt(*daemon_, t.index);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
    ASSERT_EQ(r.body.rfind("c2sp.org/tlog-proof@v1\nextra ", 0), 0u) << r.body;
    EXPECT_NE(r.body.find("\nindex " + std::to_string(t.index) + "\n"), std::string::npos);
    EXPECT_EQ(r.body.find(t.token), std::string::npos);  // the token itself is not in it
    const fs::path vkey = daemon_->verifier_key_file();

    // The CLI.
    std::string out;
    ASSERT_EQ(cli_verify(t.token, r.body, vkey, &out), 0) << out;
    auto cli = nlohmann::json::parse(out);
    EXPECT_EQ(cli["valid"], true);
    EXPECT_EQ(cli["receipt"]["index"], t.index);
    EXPECT_EQ(cli["receipt"]["origin"], "test/licentra/signd");

    // The product library.
    ReceiptOptions options;
    options.expected_origin = "test/licentra/signd";
    auto lib = verify_receipt(t.token, r.body, read_file(vkey), options);
    ASSERT_TRUE(lib.ok()) << to_string(lib.error) << ": " << lib.message;
    EXPECT_EQ(lib.index, t.index);
    EXPECT_GT(lib.tree_size, t.index);
    auto entry = nlohmann::json::parse(lib.entry_json);
    EXPECT_EQ(entry["action"], "token.sign");
    EXPECT_EQ(entry["principal"], "license-server");

    // Go's sumdb/note verifies the checkpoint, verbatim as the receipt carries it.
    const std::string note = r.body.substr(r.body.find("\n\n") + 2);
    write_file(dir_.path() / "checkpoint.note", note);
    ASSERT_EQ(
        run_command({go_verifier, vkey.string(), (dir_.path() / "checkpoint.note").string()}, &out),
        0)
        << out << note;
    EXPECT_EQ(out, note.substr(0, note.find("\n\n") + 1));

    // An RFC 9162 computation that shares no code with the daemon.
    ASSERT_EQ(python_check(t.token, r.body, &out), 0) << out;
    EXPECT_NE(out.find("included: index " + std::to_string(t.index)), std::string::npos) << out;

    // The same checkpoint is the one the auditors' API serves (or an older one).
    auto cp = daemon_->request("auditor", "GET", "/v1/audit/checkpoint");
    ASSERT_EQ(cp.status, 200u);
    EXPECT_EQ(cp.body.substr(0, cp.body.find('\n')), "test/licentra/signd");
}

TEST_F(DaemonReceipts, TamperedReceiptsAreRefusedByTheCliTheLibraryAndTheScript) {
    const Signed t = sign(*daemon_);
    const Signed other = sign(*daemon_, "product-b");
    auto r = receipt(*daemon_, t.index);
    ASSERT_EQ(r.status, 200u) << r.body;
    const std::string key = read_file(daemon_->verifier_key_file());
    const std::string idx = "\nindex " + std::to_string(t.index) + "\n";
    const std::size_t first_hash = r.body.find(idx) + idx.size();
    ASSERT_NE(r.body.substr(first_hash, 1), "\n") << "the proof has at least one hash";
    std::string one_hash_changed = r.body;
    one_hash_changed[first_hash + 5] = one_hash_changed[first_hash + 5] == 'A' ? 'B' : 'A';
    const std::string index_changed =
        replaced(r.body, idx, "\nindex " + std::to_string(t.index + 1) + "\n");

    std::string out;
    for (const auto& [name, text, code] :
         std::vector<std::tuple<std::string, std::string, VerifyErrc>>{
             {"one proof hash changed", one_hash_changed, VerifyErrc::receipt_proof_invalid},
             {"index changed", index_changed, VerifyErrc::receipt_proof_invalid}}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(verify_receipt(t.token, text, key).error, code);
        ASSERT_EQ(cli_verify(t.token, text, daemon_->verifier_key_file(), &out), 1) << out;
        EXPECT_EQ(nlohmann::json::parse(out)["error"], std::string(to_string(code)));
        EXPECT_EQ(python_check(t.token, text, &out), 1) << out;
    }
    // A genuine receipt of another token.
    EXPECT_EQ(verify_receipt(other.token, r.body, key).error, VerifyErrc::receipt_token_mismatch);
    ASSERT_EQ(cli_verify(other.token, r.body, daemon_->verifier_key_file(), &out), 1) << out;
    EXPECT_EQ(nlohmann::json::parse(out)["error"], "receipt_token_mismatch");
    EXPECT_EQ(python_check(other.token, r.body, &out), 1) << out;
}

TEST_F(DaemonReceipts, AReceiptFromAnotherDeploymentsLogIsRefused) {
    // Another deployment: its own HSM token, hence its own audit key, and the same origin.
    Deployment elsewhere(example_policy_without_rate_limit());
    Daemon foreign(elsewhere, fast_checkpoints());
    const Signed t = sign(foreign);
    auto r = receipt(foreign, t.index);
    ASSERT_EQ(r.status, 200u) << r.body;
    // Genuine with its own log's key ...
    EXPECT_TRUE(verify_receipt(t.token, r.body, read_file(foreign.verifier_key_file())).ok());
    // ... refused with this deployment's.
    const std::string ours = read_file(daemon_->verifier_key_file());
    auto refused = verify_receipt(t.token, r.body, ours);
    EXPECT_EQ(refused.error, VerifyErrc::receipt_wrong_log) << refused.message;
    write_file(dir_.path() / "jwks-foreign.json",
               foreign.request("license-server", "GET", "/.well-known/jwks.json").body);
    write_file(dir_.path() / "token-foreign.jwt", t.token);
    write_file(dir_.path() / "receipt-foreign.tlog-proof", r.body);
    std::string out;
    ASSERT_EQ(run_command({binary("licentra"), "token", "verify",
                           (dir_.path() / "token-foreign.jwt").string(), "--jwks",
                           (dir_.path() / "jwks-foreign.json").string(), "--receipt",
                           (dir_.path() / "receipt-foreign.tlog-proof").string(), "--log-key",
                           daemon_->verifier_key_file().string(), "--json"},
                          &out),
              1)
        << out;
    EXPECT_EQ(nlohmann::json::parse(out)["error"], "receipt_wrong_log");
    // And a receipt of this log names another origin than the one required.
    const Signed mine = sign(*daemon_);
    auto own = receipt(*daemon_, mine.index);
    ASSERT_EQ(own.status, 200u) << own.body;
    ReceiptOptions options;
    options.expected_origin = "test/licentra/elsewhere";
    EXPECT_EQ(verify_receipt(mine.token, own.body, ours, options).error,
              VerifyErrc::receipt_wrong_log);
}

TEST_F(DaemonReceipts, OnlyTheSignerOfTheEntrysKeyGetsItAndBadRequestsAreRefused) {
    const Signed t = sign(*daemon_);
    for (const std::string principal : {"auditor", "officer-a", "stranger"}) {
        auto r = receipt(*daemon_, t.index, principal);
        EXPECT_EQ(r.status, 403u) << principal << ": " << r.body;
        EXPECT_NE(r.body.find("https://licentra.dev/problems/forbidden"), std::string::npos);
    }
    // With the token's hash the entry must be that token's (replicas each have their own log).
    const std::string hash = core::hex_encode(crypto::sha256(core::as_bytes(t.token)));
    auto pinned = daemon_->request(
        "license-server", "GET",
        "/v1/tokens/receipt?audit_index=" + std::to_string(t.index) + "&token_sha256=" + hash);
    EXPECT_EQ(pinned.status, 200u) << pinned.body;
    auto wrong = daemon_->request("license-server", "GET",
                                  "/v1/tokens/receipt?audit_index=" + std::to_string(t.index) +
                                      "&token_sha256=" + std::string(64, '0'));
    EXPECT_EQ(wrong.status, 409u) << wrong.body;
    EXPECT_NE(wrong.body.find("service.token_mismatch"), std::string::npos) << wrong.body;
    auto unknown = receipt(*daemon_, 1'000'000);
    EXPECT_EQ(unknown.status, 404u) << unknown.body;
    EXPECT_NE(unknown.body.find("audit.index_out_of_range"), std::string::npos) << unknown.body;
    for (const std::string& query :
         std::vector<std::string>{"", "?audit_index=", "?audit_index=x", "?audit_index=-1",
                                  "?audit_index=1&audit_index=2", "?index=1",
                                  "?audit_index=1&size=2", "?audit_index=1&token_sha256=ABC",
                                  "?audit_index=1&token_sha256=" + std::string(64, 'A')}) {
        auto r = daemon_->request("license-server", "GET", "/v1/tokens/receipt" + query);
        EXPECT_EQ(r.status, 400u) << query << ": " << r.body;
    }
    auto post = daemon_->request("license-server", "POST",
                                 "/v1/tokens/receipt?audit_index=" + std::to_string(t.index));
    EXPECT_EQ(post.status, 405u);
    EXPECT_EQ(post.allow, "GET");
    // Entries that record no issued token: a key's lifecycle, a refused signing request.
    auto refused = daemon_->request("license-server", "POST", "/v1/tokens",
                                    R"({"key":"product-a","claims":{"sub":"x"}})");
    ASSERT_EQ(refused.status, 422u) << refused.body;
    const Signed after = sign(*daemon_);
    auto entries = daemon_->request(
        "auditor", "GET", "/v1/audit/entries?start=0&end=" + std::to_string(after.index + 1));
    ASSERT_EQ(entries.status, 200u);
    bool saw_bootstrap = false;
    bool saw_denied = false;
    std::size_t start = 0;
    while (start < entries.body.size()) {
        const auto end = entries.body.find('\n', start);
        auto e = nlohmann::json::parse(entries.body.substr(start, end - start));
        start = end + 1;
        const bool own_key = e.value("key", "") == "product-a";
        if (!own_key) continue;
        const bool bootstrap = e["action"] == "key.bootstrap";
        const bool denied = e["action"] == "token.sign" && e["result"] == "denied";
        if (!bootstrap && !denied) continue;
        auto r = receipt(*daemon_, e["seq"].get<std::uint64_t>());
        EXPECT_EQ(r.status, 409u) << r.body;
        EXPECT_NE(r.body.find("service.not_token_entry"), std::string::npos) << r.body;
        saw_bootstrap = saw_bootstrap || bootstrap;
        saw_denied = saw_denied || denied;
    }
    EXPECT_TRUE(saw_bootstrap);
    EXPECT_TRUE(saw_denied);
    // The auditor's own audit key entry has no policy key: it is nobody's receipt.
    auto first = receipt(*daemon_, 0);
    EXPECT_EQ(first.status, 403u) << first.body;
}

}  // namespace
}  // namespace licentra::test
