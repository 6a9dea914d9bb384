// Service::create refuses a service that could not work: each required dependency missing, an
// empty replica name, claim timings without a margin, waits that are not positive. The error
// names the first thing wrong; a complete set builds a service that answers.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "audit/log.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "support/test_support.hpp"
#include "unit/policy/policy_test_util.hpp"
#include "unit/service/fakes.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::service {
namespace {

class ServiceCreate : public ::testing::Test {
  protected:
    void SetUp() override {
        auto engine = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine, nullptr);
        holder_ = std::make_unique<policy::EngineHolder>(engine);
        keys_ = fake::key_manager_without_keys();
        ASSERT_NE(keys_, nullptr);
        signer_ = test::OpensslSigner::generate(crypto::Algorithm::EdDSA);
        audit::LogOptions o;
        o.dir = dir_.path() / "audit";
        o.origin = "test.example/audit/unit";
        o.key_name = o.origin;
        auto log = audit::AuditLog::open(o, {signer_.get()});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        log_ = std::move(*log);
    }
    void TearDown() override {
        if (log_) (void)log_->close();
    }
    Dependencies complete() {
        Dependencies d;
        d.requests = &requests_;
        d.policy = holder_.get();
        d.keys = keys_.get();
        d.audit = log_.get();
        d.pseudonymizer = &pseudonymizer_;
        d.executor = &executor_;
        return d;
    }
    // The error create() answers after `change` is applied to a complete set.
    std::string refusal(const std::function<void(Dependencies&)>& change) {
        Dependencies d = complete();
        change(d);
        auto s = Service::create(d);
        if (s.ok()) return "created";
        EXPECT_EQ(s.error().kind, core::ErrorKind::usage);
        return s.error().code + ": " + s.error().message;
    }

    test::TempDir dir_;
    std::unique_ptr<policy::EngineHolder> holder_;
    std::unique_ptr<keys::KeyManager> keys_;
    std::unique_ptr<test::OpensslSigner> signer_;
    std::unique_ptr<audit::AuditLog> log_;
    fake::MemoryRequestStore requests_;
    fake::NoPseudonyms pseudonymizer_;
    fake::InlineExecutor executor_;
};

TEST_F(ServiceCreate, EachMissingDependencyIsNamed) {
    EXPECT_EQ(refusal([](Dependencies& d) { d.requests = nullptr; }),
              "service.missing_dependency: the service needs a request store");
    EXPECT_EQ(refusal([](Dependencies& d) { d.policy = nullptr; }),
              "service.missing_dependency: the service needs the policy");
    EXPECT_EQ(refusal([](Dependencies& d) { d.keys = nullptr; }),
              "service.missing_dependency: the service needs the key manager");
    EXPECT_EQ(refusal([](Dependencies& d) { d.audit = nullptr; }),
              "service.missing_dependency: the service needs the audit log");
    EXPECT_EQ(refusal([](Dependencies& d) { d.pseudonymizer = nullptr; }),
              "service.missing_dependency: the service needs the pseudonymizer");
    EXPECT_EQ(refusal([](Dependencies& d) { d.executor = nullptr; }),
              "service.missing_dependency: the service needs an executor");
    // The first one missing is named.
    EXPECT_EQ(refusal([](Dependencies& d) { d = Dependencies{}; }),
              "service.missing_dependency: the service needs a request store");
}

TEST_F(ServiceCreate, ValuesThatCannotWorkAreRefused) {
    using std::chrono::milliseconds;
    EXPECT_EQ(refusal([](Dependencies& d) { d.replica.clear(); }),
              "service.bad_dependency: the replica name is empty");
    const std::string timing =
        "service.bad_dependency: claim timings need 0 < write_bound < settle";
    EXPECT_EQ(refusal([](Dependencies& d) {
                  d.claims = {milliseconds(0), milliseconds(10)};
              }),
              timing);
    EXPECT_EQ(refusal([](Dependencies& d) {
                  d.claims = {milliseconds(10), milliseconds(10)};
              }),
              timing);
    EXPECT_EQ(refusal([](Dependencies& d) {
                  d.claims = {milliseconds(10), milliseconds(11)};
              }),
              "created");
    EXPECT_EQ(refusal([](Dependencies& d) { d.outcome_wait = milliseconds(0); }),
              "service.bad_dependency: the outcome wait must be positive");
    const std::string receipt =
        "service.bad_dependency: the receipt wait must not be negative and Retry-After must be "
        "positive";
    EXPECT_EQ(refusal([](Dependencies& d) { d.receipt_wait = milliseconds(-1); }), receipt);
    EXPECT_EQ(refusal([](Dependencies& d) { d.receipt_retry_after = std::chrono::seconds(0); }),
              receipt);
    EXPECT_EQ(refusal([](Dependencies& d) { d.receipt_wait = milliseconds(0); }), "created");
    // Checkpoints are optional: receipts are then served once covered.
    EXPECT_EQ(refusal([](Dependencies& d) { d.checkpoints = nullptr; }), "created");
}

TEST_F(ServiceCreate, ACompleteSetBuildsAServiceThatAnswers) {
    auto s = Service::create(complete());
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    core::ClientIdentity auditor;
    auditor.subject_cn = "aud";
    auditor.issuer_dn = "CN=Licentra Dev CA";
    auto keys = (*s)->list_keys(Caller{auditor, "r1"});
    ASSERT_TRUE(keys.value.has_value()) << keys.failure->error.to_string();
    EXPECT_EQ(*keys.value, nlohmann::json::parse(R"({"keys":[]})")) << keys.value->dump();
}

}  // namespace
}  // namespace licentra::service
