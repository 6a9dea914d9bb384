// A request another replica has just written can be missing from this process's view of the
// token for a moment; the service looks again before it answers "no such request". A view that
// stays behind (a request that reads as closing long after any close would have finished) has
// the store read the token again, at most once per interval.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "policy/approval.hpp"
#include "policy/engine.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "unit/policy/policy_test_util.hpp"
#include "unit/service/fakes.hpp"

namespace licentra::service {
namespace {

namespace ca = core::action;

core::ClientIdentity officer_a() {
    core::ClientIdentity id;
    id.spki_sha256.fill(0xaa);
    return id;
}

class RequestVisibility : public ::testing::Test {
  protected:
    void SetUp() override {
        auto engine = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine, nullptr);
        holder_ = std::make_unique<policy::EngineHolder>(engine);
        auto g = engine->authorize<ca::KeyRotateRequest>("off-a", "product-a");
        ASSERT_TRUE(g.ok()) << g.error().to_string();
        auto r = policy::ApprovalRequest::open(*engine, *g, std::nullopt, nlohmann::json::object(),
                                               core::Clock::now());
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        id_ = r->id();
        ASSERT_TRUE(stand_.requests.create(id_, r->to_json()).ok());
        ASSERT_NE(stand_.keys, nullptr);
        ASSERT_NE(audit_.log, nullptr) << audit_.error;
        log_ = audit_.log.get();
        Dependencies deps;
        stand_.wire(deps);
        deps.audit = log_;
        deps.policy = holder_.get();
        deps.claim_wait = [](std::chrono::milliseconds) {};  // claims in memory settle at once
        deps.clock = [this] {
            std::lock_guard lock(clock_mu_);
            return clock_;
        };
        auto service = Service::create(deps);
        ASSERT_TRUE(service.ok()) << service.error().to_string();
        service_ = std::move(*service);
    }

    // A close claim of another replica on the request, made at `at`.
    void claimed_at(core::TimePoint at) {
        const std::string nonce(32, 'a');
        const nlohmann::json claim = {
            {"decision", "execute"}, {"by", "replica-b"}, {"at_ms", core::unix_millis(at)}};
        ASSERT_TRUE(stand_.requests.create(id_ + "/close/" + nonce + "/off-b", claim.dump()).ok());
    }

    void set_clock(core::TimePoint t) {
        std::lock_guard lock(clock_mu_);
        clock_ = t;
    }

    void TearDown() override { service_.reset(); }

    std::mutex clock_mu_;
    core::TimePoint clock_ = core::Clock::now();
    fake::Stand stand_;
    fake::TestLog audit_;
    audit::AuditLog* log_ = nullptr;
    std::unique_ptr<policy::EngineHolder> holder_;
    std::unique_ptr<Service> service_;
    std::string id_;
};

TEST_F(RequestVisibility, ARequestMissingFromTheFirstLooksIsFound) {
    stand_.requests.hidden_lists = 2;
    auto got = service_->get_request(Caller{officer_a(), "r1"}, id_);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ((*got)["id"], id_);
    EXPECT_EQ((*got)["state"], "pending");
    EXPECT_EQ(stand_.requests.lists(), 3);
}

TEST_F(RequestVisibility, AnUnknownRequestIsNotFoundAfterFourLooks) {
    const std::string unknown(id_.size(), '0');
    auto got = service_->get_request(Caller{officer_a(), "r2"}, unknown);
    ASSERT_TRUE(!got.ok());
    EXPECT_EQ(got.error().code, "service.no_such_request");
    EXPECT_EQ(stand_.requests.lists(), 4);
}

// Defaults: settle 1 s, so a close that has not finished after 6 x 1 s + 5 s = 11 s is
// suspected.
TEST_F(RequestVisibility, ARequestClosingLongerThanACloseTakesHasTheTokenReadAgainOncePerInterval) {
    const auto now = core::Clock::now();
    claimed_at(now - std::chrono::seconds(20));
    service_->tick(now);
    auto reloads = stand_.requests.reloads();
    ASSERT_EQ(reloads.size(), 1u);
    EXPECT_EQ(reloads[0], "request " + id_ +
                              " has read as closing for 20 s with no outcome; reading the token "
                              "again");
    service_->tick(now + std::chrono::seconds(10));  // within the interval: not again
    EXPECT_EQ(stand_.requests.reloads().size(), 1u);
    service_->tick(now + std::chrono::seconds(12));  // still closing, the interval passed
    EXPECT_EQ(stand_.requests.reloads().size(), 2u);
    auto got = service_->get_request(Caller{officer_a(), "r3"}, id_);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ((*got)["state"], "closing");
}

// A close claim whose replica never wrote an outcome (it died while executing) counts as
// failed exactly five minutes after the claim, on the service's clock.
TEST_F(RequestVisibility, AnAbandonedCloseReadsAsFailedFiveMinutesAfterItsClaim) {
    // Records hold milliseconds.
    const auto claim = core::from_unix_millis(core::unix_millis(core::Clock::now()));
    claimed_at(claim);
    set_clock(claim + std::chrono::minutes(5));
    auto got = service_->get_request(Caller{officer_a(), "r4"}, id_);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ((*got)["state"], "closing");
    set_clock(claim + std::chrono::minutes(5) + std::chrono::milliseconds(1));
    got = service_->get_request(Caller{officer_a(), "r5"}, id_);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ((*got)["state"], "failed");
}

// An approved request that reads as pending with no close claim after the approvers' replicas
// had their time (4 x settle) is executed by the tick, but only on a view of the token read
// afresh: the tick that finds it asks for the re-read and closes nothing; the next tick (its
// view now read again) executes it. The stand-in token holds no version of the key, so the
// rotation fails and the request is closed as failed with that reason.
TEST_F(RequestVisibility, AnApprovedRequestNobodyClosedIsExecutedOnlyAfterTheTokenIsReadAgain) {
    const auto now = core::Clock::now();
    const auto approved = now - std::chrono::seconds(5);
    for (const char* who : {"off-b", "off-c"}) {
        const nlohmann::json a = {{"at_ms", core::unix_millis(approved)}};
        ASSERT_TRUE(stand_.requests.create(id_ + "/approval/" + who, a.dump()).ok());
    }
    set_clock(now);
    service_->tick(now);
    auto reloads = stand_.requests.reloads();
    ASSERT_EQ(reloads.size(), 1u);
    EXPECT_EQ(reloads[0], "request " + id_ +
                              " has had its quorum for 5 s and reads as pending with no close; "
                              "reading the token again");
    auto closes = stand_.requests.list(id_ + "/close/");
    ASSERT_TRUE(closes.ok());
    EXPECT_TRUE(closes->empty());
    const auto later = now + std::chrono::seconds(1);
    set_clock(later);
    service_->tick(later);
    EXPECT_EQ(stand_.requests.reloads().size(), 1u);  // once per interval
    // The execution ran on the second tick, as the act of the approval that completed the
    // quorum.
    ASSERT_EQ(log_->size(), 1u);
    auto lines = log_->read_entries(0, 1);
    ASSERT_TRUE(lines.ok()) << lines.error().to_string();
    const auto entry = nlohmann::json::parse((*lines)[0]);
    EXPECT_EQ(entry["action"], "key.rotate.execute");
    EXPECT_EQ(entry["result"], "failed");
    EXPECT_EQ(entry["reason"], "keys.no_versions");
    EXPECT_EQ(entry["principal"], "off-c");
    auto got = service_->get_request(Caller{officer_a(), "r6"}, id_);
    ASSERT_TRUE(got.ok()) << got.error().to_string();
    EXPECT_EQ((*got)["state"], "failed");
}

TEST_F(RequestVisibility, ACloseStillWithinItsTimeIsNotSuspected) {
    const auto now = core::Clock::now();
    claimed_at(now - std::chrono::seconds(10));
    service_->tick(now);
    EXPECT_TRUE(stand_.requests.reloads().empty());
}

}  // namespace
}  // namespace licentra::service
