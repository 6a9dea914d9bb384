#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "policy/approval.hpp"
#include "policy/engine.hpp"
#include "policy_test_util.hpp"

namespace licentra::policy {
namespace {

namespace ca = core::action;
using nlohmann::json;

class PolicyApproval : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = test::load_ok(test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
        now_ = core::from_unix_millis(1'800'000'000'123);
    }
    ApprovalRequest open_rotation() {
        auto g = engine_->authorize<ca::KeyRotateRequest>("off-a", "product-a");
        EXPECT_TRUE(g.ok());
        auto r = ApprovalRequest::open(*engine_, *g, std::nullopt, json{{"force", true}}, now_);
        EXPECT_TRUE(r.ok()) << r.error().to_string();
        return std::move(r).value();
    }
    static void expect_refused(const core::Status& s, core::ErrorKind kind, const char* code) {
        ASSERT_FALSE(s.ok());
        EXPECT_EQ(s.error().kind, kind) << s.error().to_string();
        EXPECT_EQ(s.error().code, code) << s.error().to_string();
    }
    std::shared_ptr<const Engine> engine_;
    core::TimePoint now_;
};

TEST_F(PolicyApproval, OpenRecordsTheRequestUnderThePolicy) {
    ApprovalRequest r = open_rotation();
    EXPECT_EQ(r.operation(), Operation::rotate);
    EXPECT_EQ(r.key(), "product-a");
    EXPECT_EQ(r.requester(), "off-a");
    EXPECT_EQ(r.policy_sha256(), engine_->sha256());
    EXPECT_EQ(r.nonce().size(), 16u);
    EXPECT_EQ(r.quorum(), 2u);
    EXPECT_EQ(r.expires() - r.created(), std::chrono::hours(1));
    EXPECT_EQ(r.state(), RequestState::pending);
    EXPECT_EQ(r.id().size(), 32u);
    EXPECT_FALSE(r.executable(now_));
}

TEST_F(PolicyApproval, NoncesMakeDigestsUnique) {
    EXPECT_NE(open_rotation().digest(), open_rotation().digest());
}

TEST_F(PolicyApproval, BecomesExecutableAtQuorumOfDistinctApprovers) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    EXPECT_FALSE(r.executable(now_));
    auto early = engine_->execution_grant(r, now_);
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().code, "policy.quorum_not_reached");
    const auto d = r.digest();
    ASSERT_TRUE(r.approve(*engine_, "off-c", now_, &d).ok());
    EXPECT_TRUE(r.executable(now_));
    auto g = engine_->execution_grant(r, now_);
    ASSERT_TRUE(g.ok()) << g.error().to_string();
    EXPECT_EQ(g->key(), "product-a");
    EXPECT_EQ(g->principal(), "off-a");
    ASSERT_TRUE(r.mark_executed(*g).ok());
    EXPECT_EQ(r.state(), RequestState::executed);
    auto again = engine_->execution_grant(r, now_);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "policy.request_closed");
}

TEST_F(PolicyApproval, RequesterCannotApprove) {
    ApprovalRequest r = open_rotation();
    expect_refused(r.approve(*engine_, "off-a", now_), core::ErrorKind::denied,
                   "policy.requester_cannot_approve");
}

TEST_F(PolicyApproval, RepeatApproverIsRefused) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    expect_refused(r.approve(*engine_, "off-b", now_), core::ErrorKind::conflict,
                   "policy.duplicate_approval");
    EXPECT_EQ(r.approvals().size(), 1u);
}

TEST_F(PolicyApproval, PrincipalWithoutApproveIsRefused) {
    ApprovalRequest r = open_rotation();
    expect_refused(r.approve(*engine_, "ls", now_), core::ErrorKind::denied,
                   "policy.action_not_granted");
    expect_refused(r.approve(*engine_, "aud", now_), core::ErrorKind::denied,
                   "policy.action_not_granted");
    expect_refused(r.approve(*engine_, "mallory", now_), core::ErrorKind::denied,
                   "policy.unknown_principal");
    expect_refused(r.approve(*engine_, "system", now_), core::ErrorKind::denied,
                   "policy.unknown_principal");
}

TEST_F(PolicyApproval, ExpiredRequestIsRefused) {
    ApprovalRequest r = open_rotation();
    const auto later = r.expires();
    expect_refused(r.approve(*engine_, "off-b", later), core::ErrorKind::conflict,
                   "policy.request_expired");
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    ASSERT_TRUE(r.approve(*engine_, "off-c", now_).ok());
    EXPECT_FALSE(r.executable(later));
    auto g = engine_->execution_grant(r, later);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, "policy.request_expired");
}

TEST_F(PolicyApproval, DigestMismatchIsRefused) {
    ApprovalRequest r = open_rotation();
    crypto::Sha256Digest other = r.digest();
    other[0] ^= 1;
    expect_refused(r.approve(*engine_, "off-b", now_, &other), core::ErrorKind::conflict,
                   "policy.request_digest_mismatch");
}

TEST_F(PolicyApproval, ReloadedPolicyInvalidatesOpenRequests) {
    ApprovalRequest r = open_rotation();
    auto next = test::load_ok(test::kBasePolicy + "# edited\n");
    expect_refused(r.approve(*next, "off-b", now_), core::ErrorKind::conflict,
                   "policy.request_policy_changed");
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    ASSERT_TRUE(r.approve(*engine_, "off-c", now_).ok());
    auto g = next->execution_grant(r, now_);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, "policy.request_policy_changed");
}

TEST_F(PolicyApproval, RejectionByAnEligibleOfficerClosesTheRequest) {
    ApprovalRequest r = open_rotation();
    expect_refused(r.reject(*engine_, "aud", now_), core::ErrorKind::denied,
                   "policy.action_not_granted");
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    ASSERT_TRUE(r.reject(*engine_, "off-c", now_).ok());
    EXPECT_EQ(r.state(), RequestState::rejected);
    ASSERT_TRUE(r.rejection().has_value());
    EXPECT_EQ(r.rejection()->principal, "off-c");
    expect_refused(r.approve(*engine_, "off-c", now_), core::ErrorKind::conflict,
                   "policy.request_closed");
    EXPECT_FALSE(r.executable(now_));
    EXPECT_FALSE(engine_->execution_grant(r, now_).ok());
}

TEST_F(PolicyApproval, RequesterMayWithdraw) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.reject(*engine_, "off-a", now_).ok());
    EXPECT_EQ(r.state(), RequestState::rejected);
}

TEST_F(PolicyApproval, VersionAndParamsAreValidated) {
    auto retire = engine_->authorize<ca::KeyRetireRequest>("off-a", "product-a");
    ASSERT_TRUE(retire.ok());
    auto r = ApprovalRequest::open(*engine_, *retire, std::nullopt, json::object(), now_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "policy.request_version");
    r = ApprovalRequest::open(*engine_, *retire, 3u, json::object(), now_);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->version(), 3u);
    EXPECT_EQ(r->quorum(), 2u);
    auto rotate = engine_->authorize<ca::KeyRotateRequest>("off-a", "product-a");
    auto bad = ApprovalRequest::open(*engine_, *rotate, 1u, json::object(), now_);
    EXPECT_FALSE(bad.ok());
    bad = ApprovalRequest::open(*engine_, *rotate, std::nullopt, json{{"x", json::array()}}, now_);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "policy.request_params");
    bad = ApprovalRequest::open(*engine_, *rotate, std::nullopt, json{{"Bad Name", 1}}, now_);
    EXPECT_FALSE(bad.ok());
}

TEST_F(PolicyApproval, GrantFromAnOlderPolicyIsReChecked) {
    // A grant minted under a policy where off-a may rotate is re-checked by the newer engine.
    auto g = engine_->authorize<ca::KeyRotateRequest>("off-a", "product-a");
    ASSERT_TRUE(g.ok());
    auto stricter = test::load_ok(test::mutate(
        "    identity: {spki_sha256: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n    roles: [officer]",
        "    identity: {spki_sha256: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n    roles: [reader]\n"
        "  - name: off-d\n    identity: {san_dns: off-d.example.org}\n    roles: [officer]"));
    ASSERT_NE(stricter, nullptr);
    auto r = ApprovalRequest::open(*stricter, *g, std::nullopt, json::object(), now_);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "policy.action_not_granted");
}

TEST_F(PolicyApproval, JsonRoundTripIsCanonicalAndTamperEvident) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    const std::string text = r.to_json();
    EXPECT_EQ(text.find(' '), std::string::npos);
    auto back = ApprovalRequest::from_json(text);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->to_json(), text);
    EXPECT_EQ(back->digest(), r.digest());
    EXPECT_EQ(back->approvals().size(), 1u);
    EXPECT_EQ(back->created(), r.created());

    json j = json::parse(text);
    j["key"] = "other";  // changes the digest, not the stored id
    auto tampered = ApprovalRequest::from_json(j.dump());
    ASSERT_FALSE(tampered.ok());
    EXPECT_EQ(tampered.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(tampered.error().code, "policy.request_digest_mismatch");

    j = json::parse(text);
    j["extra"] = 1;
    EXPECT_EQ(ApprovalRequest::from_json(j.dump()).error().code, "policy.request_malformed");
    j = json::parse(text);
    j.erase("nonce");
    EXPECT_EQ(ApprovalRequest::from_json(j.dump()).error().code, "policy.request_malformed");
    j = json::parse(text);
    j["quorum"] = "2";
    EXPECT_EQ(ApprovalRequest::from_json(j.dump()).error().code, "policy.request_malformed");
    EXPECT_FALSE(ApprovalRequest::from_json("not json").ok());
    EXPECT_FALSE(ApprovalRequest::from_json("[]").ok());
}

// JSON readers disagree on which of two equal member names counts: such a request is refused,
// in the request itself and in its nested approval records.
TEST_F(PolicyApproval, AStoredRequestWithADuplicateMemberIsRefused) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    const std::string text = r.to_json();
    ASSERT_TRUE(ApprovalRequest::from_json(text).ok());
    const std::string duplicate_key = R"({"key":"other",)" + text.substr(1);
    auto refused = ApprovalRequest::from_json(duplicate_key);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(refused.error().code, "policy.request_malformed");
    EXPECT_EQ(refused.error().message, "request: duplicate member \"key\"");

    std::string nested = text;
    const std::string principal = R"("principal":"off-b")";
    const auto at = nested.find(principal);
    ASSERT_NE(at, std::string::npos);
    nested.insert(at, R"("principal":"off-a",)");
    auto refused_nested = ApprovalRequest::from_json(nested);
    ASSERT_FALSE(refused_nested.ok());
    EXPECT_EQ(refused_nested.error().code, "policy.request_malformed");
    EXPECT_EQ(refused_nested.error().message, "request: duplicate member \"principal\"");
}

// A stored time Clock::duration cannot hold (created_ms 9223372036854775807 made
// duration_cast overflow: UBSan in fuzz_policy_request) is refused before any conversion, as is
// every time outside core's record bounds (tests/fuzz/corpus/policy_request/huge_time.json).
TEST_F(PolicyApproval, StoredTimesOutsideTheRecordRangeAreRefusedBeforeAnyArithmetic) {
    ApprovalRequest r = open_rotation();
    ASSERT_TRUE(r.approve(*engine_, "off-b", now_).ok());
    const json valid = json::parse(r.to_json());
    const json out_of_range[] = {json(std::numeric_limits<std::int64_t>::max()),
                                 json(std::numeric_limits<std::int64_t>::min()),
                                 json(std::numeric_limits<std::uint64_t>::max()),
                                 json(core::kMaxRecordUnixMillis + 1), json(-1)};
    for (const json& t : out_of_range) {
        for (const char* field : {"created_ms", "expires_ms"}) {
            json j = valid;
            j[field] = t;
            auto back = ApprovalRequest::from_json(j.dump());
            ASSERT_FALSE(back.ok()) << field << " " << t.dump();
            EXPECT_EQ(back.error().code, "policy.request_malformed");
            EXPECT_EQ(back.error().message.rfind("request " + std::string(field) + ": time ", 0),
                      0u)
                << back.error().message;
            EXPECT_NE(back.error().message.find("out"), std::string::npos) << back.error().message;
        }
        json j = valid;
        j["approvals"][0]["at_ms"] = t;
        auto approval = ApprovalRequest::from_json(j.dump());
        ASSERT_FALSE(approval.ok()) << t.dump();
        EXPECT_EQ(approval.error().message.rfind("approval at_ms: time ", 0), 0u)
            << approval.error().message;
    }
    json latest = valid;
    latest["approvals"][0]["at_ms"] = core::kMaxRecordUnixMillis;
    EXPECT_TRUE(ApprovalRequest::from_json(latest.dump()).ok());
}

TEST_F(PolicyApproval, ExecutionGrantIgnoresForgedApprovals) {
    // Approvals edited into stored JSON (requester, duplicates, non-officers) do not count.
    ApprovalRequest r = open_rotation();
    json j = json::parse(r.to_json());
    j["approvals"] = json::array({{{"principal", "off-a"}, {"at_ms", 1}},
                                  {{"principal", "off-b"}, {"at_ms", 1}},
                                  {{"principal", "off-b"}, {"at_ms", 2}},
                                  {{"principal", "ls"}, {"at_ms", 3}}});
    auto forged = ApprovalRequest::from_json(j.dump());
    ASSERT_TRUE(forged.ok()) << forged.error().to_string();  // approvals are not in the digest
    auto g = engine_->execution_grant(*forged, now_);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(g.error().code, "policy.quorum_not_reached");
}

TEST_F(PolicyApproval, ScheduledRotationRequestsComeFromSystem) {
    auto bad = ApprovalRequest::open_scheduled(*engine_, "product-a", now_);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "policy.approval_not_required");
    auto e = test::load_ok(
        test::mutate("verify_grace: 30d}", "verify_grace: 30d, requires_approval: true}"));
    ASSERT_NE(e, nullptr);
    auto r = ApprovalRequest::open_scheduled(*e, "product-a", now_);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->requester(), "system");
    ASSERT_TRUE(r->approve(*e, "off-a", now_).ok());
    ASSERT_TRUE(r->approve(*e, "off-b", now_).ok());
    auto g = e->execution_grant(*r, now_);
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(g->principal(), "system");
}

}  // namespace
}  // namespace licentra::policy
