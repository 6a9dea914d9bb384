// Service::create refuses a service that could not work: each required dependency missing, an
// empty replica name, claim timings without a margin, waits that are not positive. The error
// names the first thing wrong; a complete set builds a service that answers, and its reads of
// the audit log go through the reader's grant.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "audit/log.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "unit/policy/policy_test_util.hpp"
#include "unit/service/fakes.hpp"

namespace licentra::service {
namespace {

class ServiceCreate : public ::testing::Test {
  protected:
    void SetUp() override {
        auto engine = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine, nullptr);
        holder_ = std::make_unique<policy::EngineHolder>(engine);
        ASSERT_NE(stand_.keys, nullptr);
        ASSERT_NE(audit_.log, nullptr) << audit_.error;
        log_ = audit_.log.get();
    }
    Dependencies complete() {
        Dependencies d;
        stand_.wire(d);
        d.policy = holder_.get();
        d.audit = log_;
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

    std::unique_ptr<policy::EngineHolder> holder_;
    fake::Stand stand_;
    fake::TestLog audit_;
    audit::AuditLog* log_ = nullptr;
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
    ASSERT_TRUE(keys.ok()) << keys.error().to_string();
    EXPECT_EQ(*keys, nlohmann::json::parse(R"({"keys":[]})")) << keys->dump();
}

// A principal's reads go through its grant: the audit.read grant opens a view of the log that
// reads what the log holds, and the service answers an auditor with exactly those lines while
// an officer, who holds no audit.read, is refused.
TEST_F(ServiceCreate, AnAuditReadGrantOpensTheLogToItsPrincipalOnly) {
    for (const char* action : {"a.one", "a.two", "a.three"}) {
        audit::Entry e;
        e.principal = "system";
        e.action = action;
        e.result = audit::Outcome::allowed;
        ASSERT_TRUE(log_->append(std::move(e)).ok());
    }
    auto grant = holder_->current()->authorize<core::action::AuditRead>("aud");
    ASSERT_TRUE(grant.ok()) << grant.error().to_string();
    const audit::GrantedRead read = log_->reader(*grant);
    EXPECT_EQ(read.principal(), "aud");
    auto direct = log_->read_entries(0, 3);
    auto granted = read.read_entries(0, 3);
    ASSERT_TRUE(direct.ok() && granted.ok());
    EXPECT_EQ(*granted, *direct);
    EXPECT_EQ(read.latest_checkpoint(), log_->latest_checkpoint());

    auto s = Service::create(complete());
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    core::ClientIdentity auditor;
    auditor.subject_cn = "aud";
    auditor.issuer_dn = "CN=Licentra Dev CA";
    auto lines = (*s)->audit_entries(Caller{auditor, "r2"}, 0, 100);  // clamped to the size
    ASSERT_TRUE(lines.ok()) << lines.error().to_string();
    EXPECT_EQ(*lines, (*direct)[0] + "\n" + (*direct)[1] + "\n" + (*direct)[2] + "\n");
    core::ClientIdentity officer;
    officer.spki_sha256.fill(0xaa);
    auto refused = (*s)->audit_entries(Caller{officer, "r3"}, 0, 3);
    ASSERT_TRUE(!refused.ok());
    EXPECT_EQ(refused.error().kind, core::ErrorKind::denied);
}

}  // namespace
}  // namespace licentra::service
