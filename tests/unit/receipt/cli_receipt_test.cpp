// `licentra token verify --receipt R --log-key K`: a valid token is valid only if its receipt
// proves it logged, by the given log.
#include <gtest/gtest.h>

#include "app/cli.hpp"
#include "support/test_support.hpp"
#include "token/jwk.hpp"
#include "token/jws.hpp"
#include "unit/receipt/receipt_fixture.hpp"

namespace licentra::app {
namespace {

class CliReceipt : public ::testing::Test {
  protected:
    void SetUp() override {
        signer_ = test::OpensslSigner::generate(crypto::Algorithm::EdDSA);
        test::write_file(jwks_, token::jwks_json({{&signer_->public_key(), {}}}).value());
        token_text_ = token::sign_token(*signer_, {{"sub", "acme"}, {"seats", 3}}).value();
        test::write_file(token_, token_text_ + "\n");
        log_.add_token("an earlier token");
        index_ = log_.add_token(token_text_);
        log_.add_token("a later token");
        test::write_file(receipt_, log_.receipt(index_));
        test::write_file(key_, log_.verifier_key() + "\n");
    }

    int run(std::vector<std::string> extra, std::string* out) {
        std::vector<std::string> args = {"verify", token_.string(), "--jwks", jwks_.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        ::testing::internal::CaptureStdout();
        ::testing::internal::CaptureStderr();
        const int rc = cli_token_verify(args);
        *out = ::testing::internal::GetCapturedStdout();
        *out += ::testing::internal::GetCapturedStderr();
        return rc;
    }

    test::TempDir dir_;
    std::filesystem::path jwks_ = dir_.path() / "jwks.json";
    std::filesystem::path token_ = dir_.path() / "token.jwt";
    std::filesystem::path receipt_ = dir_.path() / "token.tlog-proof";
    std::filesystem::path key_ = dir_.path() / "audit.vkey";
    std::unique_ptr<test::OpensslSigner> signer_;
    std::string token_text_;
    test::SignedLog log_;
    std::uint64_t index_ = 0;
};

TEST_F(CliReceipt, ALoggedTokenIsValidAndNamesItsEntry) {
    std::string out;
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string(), "--json"}, &out),
              kExitOk)
        << out;
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["valid"], true);
    EXPECT_EQ(j["receipt"]["index"], index_);
    EXPECT_EQ(j["receipt"]["origin"], log_.origin());
    EXPECT_EQ(j["receipt"]["tree_size"], 3);
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string(), "--log-origin",
                   log_.origin()},
                  &out),
              kExitOk)
        << out;
    EXPECT_NE(out.find("logged: entry 1 of " + log_.origin()), std::string::npos) << out;
}

TEST_F(CliReceipt, AMismatchIsInvalidWithItsReason) {
    std::string out;
    // Another token's receipt.
    test::write_file(receipt_, log_.receipt(0));
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string(), "--json"}, &out),
              kExitFailure);
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["valid"], false);
    EXPECT_EQ(j["error"], "receipt_token_mismatch");
    // Another log's key.
    test::SignedLog other;
    test::write_file(receipt_, log_.receipt(index_));
    test::write_file(key_, other.verifier_key());
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string()}, &out),
              kExitFailure);
    EXPECT_EQ(out.rfind("invalid: receipt_wrong_log", 0), 0u) << out;
    // Another origin than required.
    test::write_file(key_, log_.verifier_key());
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string(), "--log-origin",
                   "test.example/audit/elsewhere"},
                  &out),
              kExitFailure);
    EXPECT_EQ(out.rfind("invalid: receipt_wrong_log", 0), 0u) << out;
}

TEST_F(CliReceipt, ReceiptAndLogKeyGoTogether) {
    std::string out;
    EXPECT_EQ(run({"--receipt", receipt_.string()}, &out), kExitUsage);
    EXPECT_EQ(run({"--log-key", key_.string()}, &out), kExitUsage);
    EXPECT_EQ(run({"--log-origin", "x"}, &out), kExitUsage);
    EXPECT_EQ(run({"--receipt", "/nonexistent/receipt", "--log-key", key_.string()}, &out),
              kExitLocal);
    test::write_file(key_, "not a key");
    ASSERT_EQ(run({"--receipt", receipt_.string(), "--log-key", key_.string(), "--json"}, &out),
              kExitFailure);
    EXPECT_EQ(nlohmann::json::parse(out)["error"], "malformed_log_key");
}

}  // namespace
}  // namespace licentra::app
