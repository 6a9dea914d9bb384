// Privacy by construction: a signing request full of personal data, a PIN and a token goes
// through the public API into the log, and none of those strings can be found in any file of
// the log directory afterwards.
#include <gtest/gtest.h>

#include <filesystem>

#include "audit/log.hpp"
#include "audit/record.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;

std::string all_files(const fs::path& dir) {
    std::string out;
    for (const auto& f : fs::directory_iterator(dir)) out += test::read_file(f.path());
    return out;
}

TEST(AuditPrivacy, NoClaimValuePinOrTokenReachesTheLog) {
    test::TempDir tmp;
    const std::string pin = "pin-7319-secret";
    const std::string token =
        "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSJ9.c2lnbmF0dXJl";
    const nlohmann::json claims = {
        {"sub", "alice@example.com"},
        {"name", "Alice Liddell"},
        {"ip", "203.0.113.77"},
        {"seats", 987654321},
        {"features", {"quantum-flux", "hyperdrive"}},
    };
    testing::OsslEd25519Signer signer;
    testing::OsslHmacPseudonymizer pseudonymizer(pin);  // the pseudonym key stands in for the HSM
    testing::MemoryAnchor anchor;
    auto log = AuditLog::open(testing::test_options(tmp.path() / "log"), {&signer, &anchor});
    ASSERT_TRUE(log.ok()) << log.error().to_string();

    TokenDecision d;
    d.principal = "license-server-eu";
    d.key = "acme-prod";
    d.kid = "kid-1";
    d.result = Outcome::allowed;
    d.token = token;
    d.claims = &claims;
    d.recorded_claims = {"sub"};
    auto entry = make_token_entry(d, &pseudonymizer);
    ASSERT_TRUE(entry.ok()) << entry.error().to_string();
    EXPECT_EQ(entry->claims, (std::vector<std::string>{"features", "ip", "name", "seats", "sub"}));
    ASSERT_TRUE(entry->pseudonyms.has_value());
    EXPECT_EQ(entry->pseudonyms->at("sub"),
              *claim_pseudonym(pseudonymizer, "sub", claims.at("sub")));
    EXPECT_EQ(entry->token_sha256, core::hex_encode(crypto::sha256(core::as_bytes(token))));
    ASSERT_TRUE((*log)->append(*entry).ok());

    // A denied request with a claim whose *name* is not a claim name is recorded without it.
    const nlohmann::json odd = {{"alice@example.com", true}, {"exp", 1}};
    d.result = Outcome::denied;
    d.reason = "policy.claim_forbidden";
    d.token = {};
    d.claims = &odd;
    d.recorded_claims = {};
    auto denied = make_token_entry(d, nullptr);
    ASSERT_TRUE(denied.ok());
    EXPECT_EQ(denied->claims, (std::vector<std::string>{"exp"}));
    ASSERT_TRUE((*log)->append(*denied).ok());
    ASSERT_TRUE((*log)->close().ok());

    const std::string everything = all_files(tmp.path() / "log");
    ASSERT_NE(everything.find("license-server-eu"), std::string::npos);  // the log has content
    for (const std::string& secret :
         {std::string("alice"), std::string("Alice Liddell"), std::string("203.0.113.77"),
          std::string("987654321"), std::string("quantum-flux"), std::string("hyperdrive"), pin,
          token, std::string("c2lnbmF0dXJl")}) {
        EXPECT_EQ(everything.find(secret), std::string::npos) << secret;
    }
}

TEST(AuditPrivacy, RecordingAClaimWithoutAPseudonymKeyFails) {
    const nlohmann::json claims = {{"sub", "alice"}};
    TokenDecision d;
    d.principal = "p";
    d.key = "k";
    d.claims = &claims;
    d.recorded_claims = {"sub"};
    auto e = make_token_entry(d, nullptr);
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.error().code, "audit.no_pseudonymizer");
}

}  // namespace
}  // namespace licentra::audit
