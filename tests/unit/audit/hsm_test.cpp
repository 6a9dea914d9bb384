// The audit log against a real SoftHSM token: checkpoints signed by the Ed25519 key
// licentra/audit/v1 inside the token, the newest checkpoint anchored as a CKO_DATA object, and
// claim pseudonyms computed with the token's HMAC key licentra/pseudonym/v1.
#include "hsm/hsm.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "app/wiring/audit_hsm.hpp"
#include "audit/log.hpp"
#include "audit/record.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "support/key_capabilities.hpp"
#include "support/softhsm.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;

struct HsmFixture {
    HsmFixture() {
        auto m = hsm::Module::load(test::SoftHsmToken::module_path());
        EXPECT_TRUE(m.ok()) << m.error().to_string();
        module = *m;
        hsm::TokenOptions opts;
        opts.uri = fixture.uri();
        auto t = hsm::Token::open(module, opts);
        EXPECT_TRUE(t.ok()) << t.error().to_string();
        token = std::move(*t);
    }
    ~HsmFixture() {
        token.reset();
        module.reset();
    }
    test::SoftHsmToken fixture;
    std::shared_ptr<hsm::Module> module;
    std::shared_ptr<hsm::Token> token;
};

TEST(AuditHsm, CheckpointsAnchorsAndPseudonymsLiveInTheToken) {
    HsmFixture hsm;
    ASSERT_TRUE(hsm.token);
    ASSERT_TRUE(hsm.token
                    ->generate_key(licentra::test::generate_capability("audit"), 1,
                                   crypto::Algorithm::EdDSA)
                    .ok());
    auto signer =
        app::wiring::make_audit_signer(hsm.token, 1, licentra::test::sign_capability("audit"));
    ASSERT_TRUE(signer.ok()) << signer.error().to_string();
    EXPECT_EQ((*signer)->key().label, "licentra/audit/v1");
    const std::string origin = "licentra.example/audit/node-1";
    app::wiring::HsmCheckpointAnchor anchor(hsm.token, origin);
    EXPECT_EQ(anchor.label(), "licentra/audit-checkpoint/" + origin);
    app::wiring::HsmPseudonymizer pseudonymizer(hsm.token);
    ASSERT_TRUE(pseudonymizer.ensure_key().ok());
    ASSERT_TRUE(pseudonymizer.ensure_key().ok());  // idempotent

    test::TempDir tmp;
    LogOptions o = testing::test_options(tmp.path() / "log");
    o.checkpoint_every = 4;
    const nlohmann::json claims = {{"sub", "alice@example.com"}, {"seats", 987654321}};
    std::string first_pseudonym;
    {
        auto log = AuditLog::open(o, {signer->get(), &anchor});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        for (int i = 0; i < 10; ++i) {
            TokenDecision d;
            d.principal = "license-server-eu";
            d.key = "acme-prod";
            d.result = Outcome::allowed;
            d.token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
            d.claims = &claims;
            d.recorded_claims = {"sub"};
            auto e = make_token_entry(d, &pseudonymizer);
            ASSERT_TRUE(e.ok()) << e.error().to_string();
            if (i == 0) first_pseudonym = e->pseudonyms->at("sub");
            EXPECT_EQ(e->pseudonyms->at("sub"), first_pseudonym);  // same value, same pseudonym
            ASSERT_TRUE((*log)->append(*e).ok());
            // The checkpoint thread signs every 4 entries; wait for it, for exact sizes.
            if ((i + 1) % 4 == 0) {
                ASSERT_TRUE(testing::checkpoint_reaches(**log, static_cast<std::uint64_t>(i + 1)));
            }
        }
        ASSERT_TRUE((*log)->close().ok());
    }
    EXPECT_EQ(first_pseudonym.size(), 64u);

    // The anchor on the token holds the final checkpoint, signed by the token's key.
    auto stored = anchor.load();
    ASSERT_TRUE(stored.ok() && stored->has_value());
    auto verifier =
        NoteVerifier::from_public_key("licentra.example/audit", (*signer)->public_key());
    ASSERT_TRUE(verifier.ok());
    auto cp = verifier->open_checkpoint(**stored);
    ASSERT_TRUE(cp.ok()) << cp.error().to_string();
    EXPECT_EQ(cp->size, 10u);
    VerifyOptions vo;
    vo.dir = o.dir;
    vo.trusted_checkpoint = **stored;
    const VerifyReport report = verify_log_directory(vo, *verifier);
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.checkpoints, 4u);  // 0, 4, 8, 10

    // No claim value, PIN or token text in the files.
    std::string everything;
    for (const auto& f : fs::directory_iterator(o.dir)) everything += test::read_file(f.path());
    for (const std::string& secret :
         {std::string("alice"), std::string("987654321"), hsm.fixture.user_pin(),
          hsm.fixture.so_pin(), std::string("eyJhbGciOiJFZERTQSJ9")}) {
        EXPECT_EQ(everything.find(secret), std::string::npos) << secret;
    }

    // A copy rolled back to before the anchored checkpoint refuses to open.
    const fs::path old_copy = tmp.path() / "old";
    fs::copy(o.dir, old_copy);
    {
        auto log = AuditLog::open(o, {signer->get(), &anchor});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        ASSERT_TRUE((*log)->append(testing::sample_entry(10)).ok());
        ASSERT_TRUE((*log)->close().ok());
    }
    LogOptions rolled = o;
    rolled.dir = old_copy;
    auto refused = AuditLog::open(rolled, {signer->get(), &anchor});
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "audit.rolled_back");
}

// A PKCS#11 module without EdDSA can serve: an ES256 audit key signs checkpoints as C2SP
// signed-note ECDSA (type 0x02), converted from the token's raw r||s to DER.
TEST(AuditHsm, Es256AuditKeyGeneratedOnTheTokenSignsVerifiableCheckpoints) {
    HsmFixture hsm;
    ASSERT_TRUE(hsm.token);
    ASSERT_TRUE(hsm.token
                    ->generate_key(licentra::test::generate_capability("audit"), 1,
                                   crypto::Algorithm::ES256)
                    .ok());
    auto signer =
        app::wiring::make_audit_signer(hsm.token, 1, licentra::test::sign_capability("audit"));
    ASSERT_TRUE(signer.ok()) << signer.error().to_string();
    EXPECT_EQ((*signer)->algorithm(), crypto::Algorithm::ES256);
    const std::string origin = "licentra.example/audit/node-es256";
    app::wiring::HsmCheckpointAnchor anchor(hsm.token, origin);

    test::TempDir tmp;
    LogOptions o = testing::test_options(tmp.path() / "log");
    o.origin = origin;
    o.checkpoint_every = 3;
    std::string vkey;
    {
        auto log = AuditLog::open(o, {signer->get(), &anchor});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        EXPECT_EQ((*log)->verifier().signature_type(), 0x02);
        vkey = (*log)->verifier().to_string();
        for (std::uint64_t i = 0; i < 7; ++i) {
            ASSERT_TRUE((*log)->append(testing::sample_entry(i)).ok());
        }
        ASSERT_TRUE((*log)->close().ok());
    }
    auto verifier = NoteVerifier::parse(vkey);
    ASSERT_TRUE(verifier.ok()) << verifier.error().to_string();
    auto stored = anchor.load();
    ASSERT_TRUE(stored.ok() && stored->has_value());
    auto cp = verifier->open_checkpoint(**stored);
    ASSERT_TRUE(cp.ok()) << cp.error().to_string();
    EXPECT_EQ(cp->size, 7u);
    VerifyOptions vo;
    vo.dir = o.dir;
    vo.trusted_checkpoint = **stored;
    const VerifyReport report = verify_log_directory(vo, *verifier);
    EXPECT_EQ(report.status, VerifyStatus::verified);
    // Reopening checks the ES256 checkpoints and the anchor again.
    auto again = AuditLog::open(o, {signer->get(), &anchor});
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ((*again)->size(), 7u);
}

}  // namespace
}  // namespace licentra::audit
