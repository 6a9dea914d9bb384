#include "service/request_records.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "policy/engine.hpp"
#include "unit/policy/policy_test_util.hpp"

namespace licentra::service {
namespace {

namespace ca = core::action;
using policy::RequestState;

std::string at_json(std::int64_t at_ms) { return R"({"at_ms":)" + std::to_string(at_ms) + "}"; }

class RequestRecords : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
        auto g = engine_->authorize<ca::KeyRotateRequest>("off-a", "product-a");
        ASSERT_TRUE(g.ok()) << g.error().to_string();
        auto r = policy::ApprovalRequest::open(*engine_, *g, std::nullopt, nlohmann::json::object(),
                                               core::from_unix_millis(kT0));
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        id_ = r->id();
        base_ = r->to_json();
        expires_ms_ = core::unix_millis(r->expires());
        ASSERT_EQ(r->quorum(), 2u);
    }

    std::pair<std::string, std::string> base() const { return {id_, base_}; }
    std::pair<std::string, std::string> approval(const std::string& principal,
                                                 std::int64_t at_ms) const {
        return {id_ + "/approval/" + principal, at_json(at_ms)};
    }
    std::pair<std::string, std::string> close_claim(char nonce, const std::string& principal,
                                                    std::int64_t at_ms) const {
        nlohmann::json j = {{"decision", "execute"}, {"by", "replica-a"}, {"at_ms", at_ms}};
        return {id_ + "/close/" + std::string(32, nonce) + "/" + principal, j.dump()};
    }
    std::pair<std::string, std::string> outcome(char nonce, const OutcomeRecord& o) const {
        return {id_ + "/outcome/" + std::string(32, nonce), o.to_json()};
    }

    StoredRequest fold_ok(const RecordList& records, std::int64_t now_ms = kT0 + 1000) const {
        auto r = fold_request(id_, records, core::from_unix_millis(now_ms));
        EXPECT_TRUE(r.ok()) << r.error().to_string();
        if (!r.ok() || !r->has_value()) {
            ADD_FAILURE() << "request not folded";
            return StoredRequest{*policy::ApprovalRequest::from_json(base_), {}, {}};
        }
        return std::move(**r);
    }
    void expect_malformed(const RecordList& records) const {
        auto r = fold_request(id_, records, core::from_unix_millis(kT0 + 1000));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
        EXPECT_EQ(r.error().code, "service.request_record_malformed") << r.error().to_string();
    }

    static std::vector<std::pair<std::string, std::int64_t>> approvals_of(const StoredRequest& s) {
        std::vector<std::pair<std::string, std::int64_t>> out;
        for (const auto& a : s.request.approvals()) {
            out.emplace_back(a.principal, core::unix_millis(a.at));
        }
        return out;
    }

    static constexpr std::int64_t kT0 = 1'800'000'000'000;
    std::shared_ptr<const policy::Engine> engine_;
    std::string id_;
    std::string base_;
    std::int64_t expires_ms_ = 0;
};

OutcomeRecord outcome_of(Decision d, RequestState result, const std::string& principal,
                         std::int64_t at_ms) {
    OutcomeRecord o;
    o.decision = d;
    o.result = result;
    o.principal = principal;
    o.by = "replica-b";
    o.at_ms = at_ms;
    return o;
}

// ---- approvals ----

TEST_F(RequestRecords, BaseAloneIsAPendingRequestWithoutApprovals) {
    const StoredRequest s = fold_ok({base()});
    EXPECT_EQ(s.request.id(), id_);
    EXPECT_EQ(s.request.state(), RequestState::pending);
    EXPECT_TRUE(s.request.approvals().empty());
    EXPECT_EQ(s.request.quorum_completed_by(), std::nullopt);
    EXPECT_EQ(s.outcome, std::nullopt);
    EXPECT_EQ(s.closing_since_ms, std::nullopt);
}

TEST_F(RequestRecords, ApprovalsFromSeveralRecordsAccumulateInAnyOrder) {
    const RecordList forward = {base(), approval("off-b", kT0 + 10), approval("off-c", kT0 + 20)};
    const RecordList backward = {approval("off-c", kT0 + 20), approval("off-b", kT0 + 10), base()};
    const StoredRequest a = fold_ok(forward);
    const StoredRequest b = fold_ok(backward);
    const std::vector<std::pair<std::string, std::int64_t>> expected = {{"off-b", kT0 + 10},
                                                                        {"off-c", kT0 + 20}};
    EXPECT_EQ(approvals_of(a), expected);
    EXPECT_EQ(approvals_of(b), expected);
    EXPECT_EQ(a.request.to_json(), b.request.to_json());
    EXPECT_EQ(a.request.state(), RequestState::pending);
    EXPECT_TRUE(a.request.executable(core::from_unix_millis(kT0 + 1000)));
}

TEST_F(RequestRecords, RequesterRepeatAndLateApprovalsAreIgnored) {
    const RecordList records = {
        base(),
        approval("off-a", kT0 + 5),          // the requester
        approval("off-b", kT0 + 10),         //
        approval("off-b", kT0 + 10),         // the same approval listed twice
        approval("off-c", expires_ms_),      // at expiry
        approval("off-d", expires_ms_ + 1),  // after expiry
    };
    const StoredRequest s = fold_ok(records);
    EXPECT_EQ(approvals_of(s),
              (std::vector<std::pair<std::string, std::int64_t>>{{"off-b", kT0 + 10}}));
    EXPECT_FALSE(s.request.executable(core::from_unix_millis(kT0 + 1000)));
    EXPECT_EQ(s.request.quorum_completed_by(), std::nullopt);
}

TEST_F(RequestRecords, ApprovalJustBeforeExpiryCounts) {
    const StoredRequest s = fold_ok({base(), approval("off-b", expires_ms_ - 1)});
    EXPECT_EQ(approvals_of(s),
              (std::vector<std::pair<std::string, std::int64_t>>{{"off-b", expires_ms_ - 1}}));
}

TEST_F(RequestRecords, QuorumIsCompletedByTheQuorumThApprovalByTimeThenPrincipal) {
    // Quorum 2: off-e first, then off-b and off-c in the same millisecond (off-b by name).
    std::vector<std::pair<std::string, std::string>> records = {
        base(), approval("off-d", kT0 + 5), approval("off-c", kT0 + 3), approval("off-b", kT0 + 3),
        approval("off-e", kT0 + 1)};
    std::sort(records.begin(), records.end());
    do {
        const StoredRequest s = fold_ok(records);
        EXPECT_EQ(s.request.quorum_completed_by(), "off-b");
        EXPECT_EQ(
            approvals_of(s),
            (std::vector<std::pair<std::string, std::int64_t>>{
                {"off-e", kT0 + 1}, {"off-b", kT0 + 3}, {"off-c", kT0 + 3}, {"off-d", kT0 + 5}}));
    } while (std::next_permutation(records.begin(), records.end()));
}

TEST_F(RequestRecords, SameTimeApprovalsCompleteTheQuorumByPrincipalName) {
    for (const RecordList& records :
         {RecordList{base(), approval("off-c", kT0 + 3), approval("off-b", kT0 + 3)},
          RecordList{base(), approval("off-b", kT0 + 3), approval("off-c", kT0 + 3)}}) {
        const StoredRequest s = fold_ok(records);
        EXPECT_EQ(s.request.quorum_completed_by(), "off-c");
    }
}

// ---- closing ----

TEST_F(RequestRecords, OutcomeRecordClosesTheRequestWithItsResult) {
    struct Case {
        Decision decision;
        RequestState result;
        std::string principal;
    };
    const std::vector<Case> cases = {
        {Decision::execute, RequestState::executed, "off-c"},
        {Decision::reject, RequestState::rejected, "off-b"},
        {Decision::expire, RequestState::expired, "system"},
        {Decision::execute, RequestState::failed, "off-c"},
    };
    for (const Case& c : cases) {
        const OutcomeRecord o = outcome_of(c.decision, c.result, c.principal, kT0 + 500);
        const StoredRequest s =
            fold_ok({base(), approval("off-b", kT0 + 10), close_claim('1', c.principal, kT0 + 400),
                     outcome('2', o)});
        const std::string name(policy::request_state_name(c.result));
        EXPECT_EQ(s.request.state(), c.result) << name;
        ASSERT_TRUE(s.outcome.has_value()) << name;
        EXPECT_EQ(s.outcome->to_json(), o.to_json()) << name;
        EXPECT_EQ(s.closing_since_ms, std::nullopt) << name;
        if (c.result == RequestState::rejected) {
            ASSERT_TRUE(s.request.rejection().has_value());
            EXPECT_EQ(s.request.rejection()->principal, "off-b");
            EXPECT_EQ(core::unix_millis(s.request.rejection()->at), kT0 + 500);
        } else {
            EXPECT_EQ(s.request.rejection(), std::nullopt) << name;
        }
    }
}

TEST_F(RequestRecords, CloseClaimWithoutOutcomeLeavesTheRequestClosingSinceTheNewestClaim) {
    const RecordList records = {base(), close_claim('b', "off-c", kT0 + 400),
                                close_claim('a', "off-b", kT0 + 450)};
    const StoredRequest s = fold_ok(records, kT0 + 1000);
    EXPECT_EQ(s.closing_since_ms, kT0 + 450);
    EXPECT_EQ(s.request.state(), RequestState::pending);
    EXPECT_EQ(s.outcome, std::nullopt);

    // Exactly kCloseAbandoned after the newest claim it is still closing.
    const std::int64_t abandoned_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(kCloseAbandoned).count();
    const StoredRequest edge = fold_ok(records, kT0 + 450 + abandoned_ms);
    EXPECT_EQ(edge.closing_since_ms, kT0 + 450);
    EXPECT_EQ(edge.request.state(), RequestState::pending);
}

TEST_F(RequestRecords, CloseClaimAbandonedPastTheLimitCountsAsFailed) {
    const std::int64_t abandoned_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(kCloseAbandoned).count();
    const RecordList records = {base(), approval("off-b", kT0 + 10),
                                close_claim('a', "off-b", kT0 + 400)};
    const StoredRequest s = fold_ok(records, kT0 + 400 + abandoned_ms + 1);
    EXPECT_EQ(s.request.state(), RequestState::failed);
    EXPECT_EQ(s.closing_since_ms, std::nullopt);
    EXPECT_EQ(s.outcome, std::nullopt);
    EXPECT_EQ(s.request.rejection(), std::nullopt);
}

TEST_F(RequestRecords, OfTwoOutcomeRecordsTheLowestNameWins) {
    const OutcomeRecord rejected =
        outcome_of(Decision::reject, RequestState::rejected, "off-b", kT0 + 600);
    const OutcomeRecord executed =
        outcome_of(Decision::execute, RequestState::executed, "off-c", kT0 + 500);
    for (const RecordList& records :
         {RecordList{base(), outcome('a', rejected), outcome('b', executed)},
          RecordList{outcome('b', executed), base(), outcome('a', rejected)}}) {
        const StoredRequest s = fold_ok(records);
        EXPECT_EQ(s.request.state(), RequestState::rejected);
        ASSERT_TRUE(s.outcome.has_value());
        EXPECT_EQ(s.outcome->to_json(), rejected.to_json());
        ASSERT_TRUE(s.request.rejection().has_value());
        EXPECT_EQ(s.request.rejection()->principal, "off-b");
    }
}

// ---- missing and malformed records ----

TEST_F(RequestRecords, MissingBaseFoldsToNothing) {
    auto r = fold_request(
        id_,
        {approval("off-b", kT0 + 10),
         outcome('a', outcome_of(Decision::execute, RequestState::executed, "off-c", kT0 + 20))},
        core::from_unix_millis(kT0 + 1000));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, std::nullopt);
    auto empty = fold_request(id_, {}, core::from_unix_millis(kT0));
    ASSERT_TRUE(empty.ok());
    EXPECT_EQ(*empty, std::nullopt);
}

TEST_F(RequestRecords, MalformedApprovalRecordIsAnIntegrityError) {
    const std::string name = id_ + "/approval/off-b";
    for (const std::string& text :
         {std::string("not json"), std::string("[]"), std::string("{}"),
          std::string(R"({"at_ms":"1"})"), std::string(R"({"at_ms":1.5})"),
          std::string(R"({"at_ms":1,"by":"x"})")}) {
        SCOPED_TRACE(text);
        expect_malformed({base(), {name, text}});
    }
}

// The name is "<id>/approval/<principal>" and principal names are 1-64 of [a-z0-9._-]: a name
// without one is as malformed as a bad body, and must not count towards the quorum.
TEST_F(RequestRecords, ApprovalRecordWithoutAValidPrincipalNameIsAnIntegrityError) {
    for (const std::string& name : {id_ + "/approval/", id_ + "/approval/off-b/extra"}) {
        SCOPED_TRACE(name);
        expect_malformed({base(), approval("off-c", kT0 + 10), {name, at_json(kT0 + 20)}});
    }
}

TEST_F(RequestRecords, MalformedCloseClaimIsAnIntegrityError) {
    const std::string name = id_ + "/close/" + std::string(32, 'a') + "/off-b";
    for (const std::string& text :
         {std::string("not json"), std::string(R"({"decision":"execute"})")}) {
        SCOPED_TRACE(text);
        expect_malformed({base(), {name, text}});
    }
}

TEST_F(RequestRecords, MalformedOutcomeRecordIsAnIntegrityError) {
    const std::string name = id_ + "/outcome/" + std::string(32, 'a');
    const std::string good =
        outcome_of(Decision::execute, RequestState::executed, "off-c", kT0).to_json();
    nlohmann::json unknown_decision = nlohmann::json::parse(good);
    unknown_decision["decision"] = "approve";
    nlohmann::json pending_result = nlohmann::json::parse(good);
    pending_result["result"] = "pending";
    nlohmann::json extra = nlohmann::json::parse(good);
    extra["note"] = "x";
    nlohmann::json missing = nlohmann::json::parse(good);
    missing.erase("by");
    for (const std::string& text : {std::string("not json"), unknown_decision.dump(),
                                    pending_result.dump(), extra.dump(), missing.dump()}) {
        SCOPED_TRACE(text);
        expect_malformed({base(), {name, text}});
    }
}

// JSON readers disagree on which of two equal member names counts: every request record with
// one is malformed, whichever of the two values the fold would have used.
TEST_F(RequestRecords, ARecordWithADuplicateMemberIsMalformed) {
    const std::string at = std::to_string(kT0);
    const std::string approval = id_ + "/approval/off-b";
    const std::string claim = id_ + "/close/" + std::string(32, 'a') + "/off-b";
    const std::string outcome = id_ + "/outcome/" + std::string(32, 'a');
    const std::string good =
        outcome_of(Decision::execute, RequestState::executed, "off-c", kT0).to_json();
    const std::string twice_by = R"({"by":"replica-c",)" + good.substr(1);
    for (const auto& [name, text] :
         {std::pair{approval, R"({"at_ms":)" + at + R"(,"at_ms":)" + at + "}"},
          std::pair{claim, R"({"decision":"execute","by":"r","at_ms":1,"at_ms":)" + at + "}"},
          std::pair{outcome, twice_by}}) {
        SCOPED_TRACE(text);
        auto r = fold_request(id_, {base(), {name, text}}, core::from_unix_millis(kT0 + 1000));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
        EXPECT_EQ(r.error().code, "service.request_record_malformed");
        EXPECT_NE(r.error().message.find("duplicate member"), std::string::npos)
            << r.error().message;
    }
    auto refused = OutcomeRecord::from_json(twice_by);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, "service.request_record_malformed");
    EXPECT_EQ(refused.error().message, "request record outcome: duplicate member \"by\"");
}

TEST_F(RequestRecords, BaseWhoseIdDoesNotMatchItsNameIsAnError) {
    const std::string other(32, '0');
    auto r = fold_request(other, {{other, base_}}, core::from_unix_millis(kT0));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(r.error().code, "service.request_record_malformed");
}

TEST_F(RequestRecords, UnreadableBaseIsAnIntegrityError) {
    auto r = fold_request(id_, {{id_, "{}"}}, core::from_unix_millis(kT0));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
}

TEST_F(RequestRecords, RecordsOfOtherKindsUnderTheIdAreIgnored) {
    const StoredRequest s =
        fold_ok({base(), {id_ + "/note/x", "not json"}, {id_ + "/approvalx", "not json"}});
    EXPECT_TRUE(s.request.approvals().empty());
    EXPECT_EQ(s.request.state(), RequestState::pending);
}

// ---- OutcomeRecord ----

TEST(OutcomeRecordJson, RoundTripsWithEveryMember) {
    OutcomeRecord o;
    o.decision = Decision::execute;
    o.result = RequestState::failed;
    o.principal = "off-c";
    o.by = "replica-a";
    o.at_ms = 1'800'000'000'123;
    o.reason = "hsm.unavailable";
    o.version = 7;
    o.state = "pre-active";
    o.kid = "kid-7";
    auto back = OutcomeRecord::from_json(o.to_json());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->decision, Decision::execute);
    EXPECT_EQ(back->result, RequestState::failed);
    EXPECT_EQ(back->principal, "off-c");
    EXPECT_EQ(back->by, "replica-a");
    EXPECT_EQ(back->at_ms, 1'800'000'000'123);
    EXPECT_EQ(back->reason, "hsm.unavailable");
    EXPECT_EQ(back->version, 7u);
    EXPECT_EQ(back->state, "pre-active");
    EXPECT_EQ(back->kid, "kid-7");
    EXPECT_EQ(back->to_json(), o.to_json());
}

TEST(OutcomeRecordJson, RoundTripsWithoutOptionalMembers) {
    OutcomeRecord o = outcome_of(Decision::expire, RequestState::expired, "system", 42);
    EXPECT_EQ(o.to_json(),
              R"({"at_ms":42,"by":"replica-b","decision":"expire","principal":"system",)"
              R"("result":"expired"})");
    auto back = OutcomeRecord::from_json(o.to_json());
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->decision, Decision::expire);
    EXPECT_EQ(back->result, RequestState::expired);
    EXPECT_EQ(back->reason, std::nullopt);
    EXPECT_EQ(back->version, std::nullopt);
    EXPECT_EQ(back->state, std::nullopt);
    EXPECT_EQ(back->kid, std::nullopt);
    EXPECT_EQ(back->to_json(), o.to_json());
}

TEST(OutcomeRecordJson, UnknownMembersAndBadTypesAreRefused) {
    const std::string base =
        R"({"at_ms":42,"by":"r","decision":"reject","principal":"p","result":"rejected")";
    for (const std::string& text :
         {base + R"(,"extra":1})", base + R"(,"version":-1})", base + R"(,"version":4294967296})",
          base + R"(,"version":"7"})", base + R"(,"kid":7})", base + R"(,"reason":null})",
          base + R"(,"state":true})", std::string(R"({"at_ms":42})"), std::string("[]")}) {
        SCOPED_TRACE(text);
        auto r = OutcomeRecord::from_json(text);
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
        EXPECT_EQ(r.error().code, "service.request_record_malformed");
    }
    EXPECT_TRUE(OutcomeRecord::from_json(base + "}").ok());
}

// ---- grouping ----

TEST(GroupByRequest, GroupsRecordsByIdAndLeavesOutOtherNames) {
    const std::string a(32, 'a');
    const std::string b = "0123456789abcdef0123456789abcdef";
    const RecordList records = {
        {a, "base-a"},
        {"scheduled/product-a/" + std::string(32, 'c'), "{}"},
        {b + "/approval/off-b", "{}"},
        {a + "/approval/off-c", "{}"},
        {"scheduled", "{}"},
        {std::string(31, 'a'), "{}"},
        {std::string(32, 'A'), "{}"},
        {b, "base-b"},
    };
    const auto groups = group_by_request(records);
    ASSERT_EQ(groups.size(), 2u);
    EXPECT_EQ(groups.at(a), (RecordList{{a, "base-a"}, {a + "/approval/off-c", "{}"}}));
    EXPECT_EQ(groups.at(b), (RecordList{{b + "/approval/off-b", "{}"}, {b, "base-b"}}));
}

TEST(GroupByRequest, EmptyListingHasNoRequests) { EXPECT_TRUE(group_by_request({}).empty()); }

// A time outside the record range (1970-2099) is refused before it is converted or compared:
// a record written with a huge at_ms is malformed, not an overflow.
TEST_F(RequestRecords, TimesOutsideTheRecordRangeAreMalformed) {
    const std::int64_t huge = 9'000'000'000'000'000;
    expect_malformed({base(), approval("off-b", huge)});
    expect_malformed({base(), approval("off-b", -1)});
    expect_malformed({base(), close_claim('a', "off-b", huge)});
}

}  // namespace
}  // namespace licentra::service
