#include <gtest/gtest.h>

#include "app/cli.hpp"
#include "support/test_support.hpp"
#include "token/jwk.hpp"
#include "token/jws.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::app {
namespace {

using test::OpensslSigner;

class CliVerify : public ::testing::Test {
  protected:
    void SetUp() override {
        signer_ = OpensslSigner::generate(crypto::Algorithm::ES256);
        jwks_ = dir_.path() / "jwks.json";
        token_ = dir_.path() / "token.jwt";
        test::write_file(jwks_, token::jwks_json({{&signer_->public_key(), {}}}).value());
        good_ = token::sign_token(*signer_, {{"sub", "acme"}, {"seats", 3}}).value();
        test::write_file(token_, good_ + "\n");
    }

    int run(std::vector<std::string> args, std::string* out, std::string* err = nullptr) {
        ::testing::internal::CaptureStdout();
        ::testing::internal::CaptureStderr();
        int rc = cli_token_verify(args);
        *out = ::testing::internal::GetCapturedStdout();
        std::string e = ::testing::internal::GetCapturedStderr();
        if (err) *err = e;
        return rc;
    }

    test::TempDir dir_;
    std::unique_ptr<OpensslSigner> signer_;
    std::filesystem::path jwks_, token_;
    std::string good_;
};

TEST_F(CliVerify, ValidTokenPrintsClaimsAndExitsZero) {
    std::string out;
    ASSERT_EQ(run({"verify", token_.string(), "--jwks", jwks_.string(), "--json"}, &out), kExitOk)
        << out;
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["valid"], true);
    EXPECT_EQ(j["alg"], "ES256");
    EXPECT_EQ(j["kid"], token::jwk_thumbprint(signer_->public_key()).value());
    EXPECT_EQ(j["claims"]["seats"], 3);
    ASSERT_EQ(run({"token", "verify", token_.string(), "--jwks", jwks_.string()}, &out), kExitOk);
    EXPECT_EQ(out.rfind("valid: ES256", 0), 0u) << out;
}

TEST_F(CliVerify, InvalidTokenExitsOneWithTheErrorCode) {
    std::string forged = good_;
    forged[forged.size() - 5] = forged[forged.size() - 5] == 'A' ? 'B' : 'A';
    test::write_file(token_, forged);
    std::string out;
    ASSERT_EQ(run({"verify", token_.string(), "--jwks", jwks_.string(), "--json"}, &out),
              kExitFailure);
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["valid"], false);
    EXPECT_EQ(j["error"], "signature_invalid");
    test::write_file(token_, token::sign_token(*signer_, {{"exp", 1000}}).value());
    ASSERT_EQ(run({"verify", token_.string(), "--jwks", jwks_.string()}, &out), kExitFailure);
    EXPECT_EQ(out.rfind("invalid: expired", 0), 0u) << out;
}

TEST_F(CliVerify, UsageErrorsExitTwoAndNeverEchoAToken) {
    std::string out, err;
    EXPECT_EQ(run({"verify", token_.string()}, &out), kExitUsage);
    EXPECT_EQ(run({"verify", "--jwks", jwks_.string()}, &out), kExitUsage);
    EXPECT_EQ(run({"verify", token_.string(), "--jwks", "/nonexistent/jwks"}, &out), kExitLocal);
    EXPECT_EQ(run({"verify", token_.string(), "--jwks", jwks_.string(), "--leeway", "x"}, &out),
              kExitUsage);
    EXPECT_EQ(run({"verify", good_, "--jwks", jwks_.string()}, &out, &err), kExitUsage);
    EXPECT_EQ(err.find(good_), std::string::npos);
    EXPECT_NE(err.find("standard input"), std::string::npos) << err;
}

TEST_F(CliVerify, NowAndIssuerOptionsApply) {
    test::write_file(token_, token::sign_token(*signer_, {{"exp", 2000}, {"iss", "x"}}).value());
    std::string out;
    EXPECT_EQ(run({"verify", token_.string(), "--jwks", jwks_.string(), "--now", "1000"}, &out),
              kExitOk)
        << out;
    EXPECT_EQ(
        run({"verify", token_.string(), "--jwks", jwks_.string(), "--now", "1000", "--issuer", "y"},
            &out),
        kExitFailure);
}

}  // namespace
}  // namespace licentra::app
