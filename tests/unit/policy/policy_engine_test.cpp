#include <gtest/gtest.h>

#include "policy/engine.hpp"
#include "policy_test_util.hpp"

namespace licentra::policy {
namespace {

namespace ca = core::action;

class PolicyEngine : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = test::load_ok(test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
    }
    void expect_denied(const core::Status& s, const char* code) {
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().kind, core::ErrorKind::denied);
        EXPECT_EQ(s.error().code, code);
    }
    template <class T>
    void expect_denied(const core::Result<T>& r, const char* code) {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, core::ErrorKind::denied) << r.error().to_string();
        EXPECT_EQ(r.error().code, code);
    }
    std::shared_ptr<const Engine> engine_;
};

core::ClientIdentity cn_identity(std::string cn, std::string issuer = "CN=Licentra Dev CA") {
    core::ClientIdentity id;
    id.subject_cn = std::move(cn);
    id.issuer_dn = std::move(issuer);
    return id;
}

TEST_F(PolicyEngine, IdentifiesBySubjectCnAndIssuer) {
    auto p = engine_->identify(cn_identity("ls"));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->name, "ls");
}

TEST_F(PolicyEngine, SameCnFromAnotherCaIsUnknown) {
    expect_denied(engine_->identify(cn_identity("ls", "CN=Some Other CA")),
                  "policy.unknown_principal");
}

TEST_F(PolicyEngine, IdentifiesByPinnedSpki) {
    core::ClientIdentity id = cn_identity("whatever", "CN=anything");
    id.spki_sha256.fill(0xaa);
    auto p = engine_->identify(id);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ((*p)->name, "off-a");
}

TEST_F(PolicyEngine, IdentifiesBySanUriAndSanDns) {
    core::ClientIdentity uri;
    uri.san_uris = {"https://unrelated", "spiffe://example.org/off-b"};
    ASSERT_TRUE(engine_->identify(uri).ok());
    EXPECT_EQ((*engine_->identify(uri))->name, "off-b");
    core::ClientIdentity dns;
    dns.san_dns = {"OFF-C.Example.ORG"};  // DNS names compare case-insensitively
    ASSERT_TRUE(engine_->identify(dns).ok());
    EXPECT_EQ((*engine_->identify(dns))->name, "off-c");
}

TEST_F(PolicyEngine, UnknownCaSignedCertificateMapsToNoPrincipal) {
    core::ClientIdentity id = cn_identity("mallory");
    id.san_uris = {"spiffe://example.org/mallory"};
    expect_denied(engine_->identify(id), "policy.unknown_principal");
}

TEST_F(PolicyEngine, CertificateMatchingTwoPrincipalsIsAmbiguous) {
    core::ClientIdentity id = cn_identity("ls");
    id.san_dns = {"off-c.example.org"};
    expect_denied(engine_->identify(id), "policy.ambiguous_identity");
}

TEST_F(PolicyEngine, SignerMaySignItsKeys) {
    const Principal* ls = engine_->find_principal("ls");
    ASSERT_NE(ls, nullptr);
    auto g = engine_->authorize<ca::TokenSign>(*ls, "product-a");
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->principal(), "ls");
    EXPECT_EQ(g->key(), "product-a");
    EXPECT_EQ(g->action(), "token.sign");
    EXPECT_TRUE(engine_->authorize<ca::JwksRead>("ls").ok());
    EXPECT_TRUE(engine_->authorize<ca::KeysRead>("ls", "product-a").ok());
}

TEST_F(PolicyEngine, DeniesWithStableReasonCodes) {
    expect_denied(engine_->authorize<ca::TokenSign>("ls", "other"), "policy.key_out_of_scope");
    expect_denied(engine_->authorize<ca::TokenSign>("ls", "nope"), "policy.unknown_key");
    expect_denied(engine_->authorize<ca::TokenSign>("ls"), "policy.key_required");
    expect_denied(engine_->authorize<ca::AuditRead>("ls"), "policy.action_not_granted");
    expect_denied(engine_->authorize<ca::AuditRead>("aud", "product-a"),
                  "policy.key_not_applicable");
    expect_denied(engine_->authorize<ca::TokenSign>("mallory", "product-a"),
                  "policy.unknown_principal");
    expect_denied(engine_->authorize<ca::TokenSign>("", "product-a"), "policy.unknown_principal");
}

TEST_F(PolicyEngine, SeparationOfDutiesHoldsInDecisions) {
    // The license server cannot manage keys or read the audit log.
    for (const char* key : {"product-a", "other"}) {
        expect_denied(engine_->authorize<ca::KeyRotateRequest>("ls", key),
                      "policy.action_not_granted");
        expect_denied(engine_->authorize<ca::KeyDestroyRequest>("ls", key),
                      "policy.action_not_granted");
        expect_denied(engine_->authorize<ca::RequestApprove>("ls", key),
                      "policy.action_not_granted");
        // Officers cannot sign.
        expect_denied(engine_->authorize<ca::TokenSign>("off-a", key), "policy.action_not_granted");
        // Auditors change nothing.
        expect_denied(engine_->authorize<ca::KeyRetireRequest>("aud", key),
                      "policy.action_not_granted");
        expect_denied(engine_->authorize<ca::RequestReject>("aud", key),
                      "policy.action_not_granted");
        EXPECT_TRUE(engine_->authorize<ca::RequestApprove>("off-b", key).ok());
    }
    EXPECT_TRUE(engine_->authorize<ca::AuditRead>("aud").ok());
    expect_denied(engine_->authorize<ca::AuditRead>("off-a"), "policy.action_not_granted");
}

TEST_F(PolicyEngine, PrincipalFromAnotherSnapshotIsRefused) {
    auto other = test::load_ok(test::kBasePolicy + "# v2\n");
    const Principal* p = other->find_principal("ls");
    ASSERT_NE(p, nullptr);
    auto g = engine_->authorize<ca::TokenSign>(*p, "product-a");
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().kind, core::ErrorKind::internal);
    EXPECT_EQ(g.error().code, "policy.foreign_principal");
}

TEST_F(PolicyEngine, CheckMatchesAuthorize) {
    EXPECT_TRUE(engine_->check("ls", Action::token_sign, "product-a").ok());
    expect_denied(engine_->check("ls", Action::token_sign, "other"), "policy.key_out_of_scope");
    expect_denied(engine_->check("x", Action::jwks_read), "policy.unknown_principal");
}

TEST_F(PolicyEngine, SystemGrants) {
    auto boot = engine_->system_grant("other", Engine::SystemPurpose::bootstrap);
    ASSERT_TRUE(boot.ok());
    EXPECT_EQ(boot->principal(), "system");
    EXPECT_EQ(boot->key(), "other");
    EXPECT_EQ(boot->action(), "key.lifecycle.execute");
    EXPECT_TRUE(engine_->system_grant("product-a", Engine::SystemPurpose::scheduled_rotation).ok());
    expect_denied(engine_->system_grant("other", Engine::SystemPurpose::scheduled_rotation),
                  "policy.no_rotation_schedule");
    expect_denied(engine_->system_grant("nope", Engine::SystemPurpose::bootstrap),
                  "policy.unknown_key");
    auto approval = test::load_ok(
        test::mutate("verify_grace: 30d}", "verify_grace: 30d, requires_approval: true}"));
    ASSERT_NE(approval, nullptr);
    expect_denied(approval->system_grant("product-a", Engine::SystemPurpose::scheduled_rotation),
                  "policy.approval_required");
}

TEST_F(PolicyEngine, ApproversAreThePrincipalsWithRequestApprove) {
    std::vector<std::string> names;
    for (const Principal* p : engine_->approvers("product-a")) names.push_back(p->name);
    EXPECT_EQ(names, (std::vector<std::string>{"off-a", "off-b", "off-c"}));
    EXPECT_TRUE(engine_->approvers("nope").empty());
}

TEST_F(PolicyEngine, RenderMatrixIsDeterministic) {
    const std::string m = engine_->render_matrix();
    EXPECT_EQ(m, test::load_ok(test::kBasePolicy)->render_matrix());
    EXPECT_NE(m.find("ls         token.sign           product-a\n"), std::string::npos) << m;
    EXPECT_EQ(m.find("ls         token.sign           other"), std::string::npos) << m;
    EXPECT_NE(m.find("aud        audit.read           -\n"), std::string::npos) << m;
}

TEST(PolicyActions, NamesRoundTrip) {
    for (Action a : kAllActions) EXPECT_EQ(action_from_name(action_name(a)), a);
    EXPECT_FALSE(action_from_name("key.lifecycle.execute").has_value());
    EXPECT_EQ(action_for<ca::TokenSign>(), Action::token_sign);
    EXPECT_EQ(action_for<ca::RequestReject>(), Action::request_reject);
    for (Operation op : kAllOperations) EXPECT_EQ(operation_from_name(operation_name(op)), op);
}

}  // namespace
}  // namespace licentra::policy
