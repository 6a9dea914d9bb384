// service::Service::token_receipt against a real audit log: who gets a receipt, and how a receipt
// for an entry no checkpoint covers yet waits for the next checkpoint, times out, or is answered
// at shutdown.
#include <gtest/gtest.h>

#include <future>

#include "audit/checkpoint_waiter.hpp"
#include "audit/log.hpp"
#include "audit/prune.hpp"
#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "licentra/verify.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "support/test_support.hpp"
#include "unit/policy/policy_test_util.hpp"
#include "unit/service/fakes.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::service {
namespace {

using Clock = audit::CheckpointWaiter::Clock;

core::ClientIdentity signer_identity() {
    core::ClientIdentity id;
    id.subject_cn = "ls";
    id.issuer_dn = "CN=Licentra Dev CA";
    return id;
}
core::ClientIdentity officer_identity() {
    core::ClientIdentity id;
    id.spki_sha256.fill(0xaa);
    return id;
}
core::ClientIdentity auditor_identity() {
    core::ClientIdentity id;
    id.subject_cn = "aud";
    id.issuer_dn = "CN=Licentra Dev CA";
    return id;
}

// The answer of one token_receipt call, to block on (no sleeping: the future is the condition).
struct Answer {
    std::promise<core::Result<std::string>> promise;
    std::future<core::Result<std::string>> future = promise.get_future();
    std::function<void(core::Result<std::string>)> callback() {
        return [this](core::Result<std::string> out) { promise.set_value(std::move(out)); };
    }
};

class ServiceReceipt : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
        holder_ = std::make_unique<policy::EngineHolder>(engine_);
        signer_ = test::OpensslSigner::generate(crypto::Algorithm::EdDSA);
        audit::LogOptions o;
        o.dir = dir_.path() / "audit";
        o.origin = "test.example/audit/unit";
        o.key_name = o.origin;
        o.checkpoint_interval = std::chrono::hours(1);  // checkpoints only when the test says
        auto log = audit::AuditLog::open(o, {signer_.get(), &anchor_});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        log_ = std::move(*log);
        waiter_.advance(log_->checkpoint_size());
        vkey_ = log_->verifier().to_string();
    }
    void TearDown() override {
        waiter_.stop();
        service_.reset();
        if (log_) (void)log_->close();
    }
    Service& service(std::chrono::milliseconds wait = std::chrono::hours(1)) {
        Dependencies deps;
        stand_.wire(deps);
        deps.policy = holder_.get();
        deps.audit = log_.get();
        deps.checkpoints = &waiter_;
        deps.receipt_wait = wait;
        deps.receipt_retry_after = std::chrono::seconds(3);
        auto created = Service::create(deps);
        EXPECT_TRUE(created.ok()) << created.error().to_string();
        service_ = std::move(*created);
        return *service_;
    }
    std::uint64_t append(const std::string& action, const std::string& key,
                         audit::Outcome result = audit::Outcome::allowed,
                         const std::string& token = {}) {
        audit::Entry e;
        e.principal = "ls";
        e.action = action;
        e.result = result;
        e.key = key;
        if (!token.empty()) {
            e.token_sha256 = core::hex_encode(crypto::sha256(core::as_bytes(token)));
        }
        auto a = log_->append(std::move(e));
        EXPECT_TRUE(a.ok()) << a.error().to_string();
        return a.ok() ? a->index : 0;
    }
    core::Result<std::string> ask(const core::ClientIdentity& who, std::uint64_t index,
                                  std::optional<std::string> token_sha256 = std::nullopt) {
        Answer a;
        service_->token_receipt(Caller{who, "req"}, index, std::move(token_sha256), a.callback());
        return a.future.get();
    }

    test::TempDir dir_;
    std::shared_ptr<const policy::Engine> engine_;
    std::unique_ptr<policy::EngineHolder> holder_;
    std::unique_ptr<test::OpensslSigner> signer_;
    fake::Stand stand_;
    audit::CheckpointWaiter waiter_;
    audit::WaiterAnchor anchor_{nullptr, waiter_};
    std::unique_ptr<audit::AuditLog> log_;
    std::unique_ptr<Service> service_;
    std::string vkey_;
    const std::string token_ = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl";
};

TEST_F(ServiceReceipt, ACoveredEntryIsAnsweredAtOnceWithAReceiptThatVerifies) {
    service();
    const auto i = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    ASSERT_TRUE(log_->checkpoint_now().ok());
    auto out = ask(signer_identity(), i);
    ASSERT_TRUE(out.ok()) << out.error().to_string();
    auto v = licentra::verify_receipt(token_, *out, vkey_);
    EXPECT_TRUE(v.ok()) << v.message;
    EXPECT_EQ(v.index, i);
}

TEST_F(ServiceReceipt, AnUncoveredEntryWaitsForTheNextCheckpoint) {
    service();
    const auto i = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    Answer a;
    service_->token_receipt(Caller{signer_identity(), "req"}, i, std::nullopt, a.callback());
    // The call returned without an answer: it waits, holding no thread.
    ASSERT_EQ(a.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
    ASSERT_TRUE(log_->checkpoint_now().ok());  // the log tells the waiter through the anchor
    auto out = a.future.get();
    ASSERT_TRUE(out.ok()) << out.error().to_string();
    auto v = licentra::verify_receipt(token_, *out, vkey_);
    EXPECT_TRUE(v.ok()) << v.message;
    EXPECT_EQ(v.tree_size, i + 1);
}

TEST_F(ServiceReceipt, NoCheckpointInTimeIs503WithRetryAfter) {
    service(std::chrono::milliseconds(0));
    const auto i = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    auto out = ask(signer_identity(), i);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().kind, core::ErrorKind::unavailable);
    EXPECT_EQ(out.error().code, "service.receipt_pending");
    EXPECT_EQ(out.error().retry_after, std::chrono::seconds(3));
}

TEST_F(ServiceReceipt, WaitingReceiptsAreAnsweredWhenTheWaiterStops) {
    service();
    const auto i = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    Answer a;
    service_->token_receipt(Caller{signer_identity(), "req"}, i, std::nullopt, a.callback());
    waiter_.stop();
    auto out = a.future.get();
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, "service.receipt_pending");
}

TEST_F(ServiceReceipt, OnlyTheSignerOfTheEntrysKeyGetsAReceiptOfAnIssuedToken) {
    service();
    const auto token = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    const auto other_key = append("token.sign", "other", audit::Outcome::allowed, token_);
    const auto rotation = append("key.rotate.request", "product-a");
    const auto refused = append("token.sign", "product-a", audit::Outcome::denied);
    ASSERT_TRUE(log_->checkpoint_now().ok());
    auto code = [&](const core::ClientIdentity& who, std::uint64_t index) {
        auto out = ask(who, index);
        return out.ok() ? std::string("ok") : out.error().code;
    };
    EXPECT_EQ(code(signer_identity(), token), "ok");
    EXPECT_EQ(code(officer_identity(), token), "policy.action_not_granted");
    EXPECT_EQ(code(auditor_identity(), token), "policy.action_not_granted");
    EXPECT_EQ(code(signer_identity(), other_key), "policy.key_out_of_scope");
    EXPECT_EQ(code(signer_identity(), rotation), "service.not_token_entry");
    EXPECT_EQ(code(signer_identity(), refused), "service.not_token_entry");
    EXPECT_EQ(code(signer_identity(), 1000), "audit.index_out_of_range");
    EXPECT_EQ(code(officer_identity(), 1000), "policy.action_not_granted");
    // The token's hash, when given, must be the one the entry records.
    const std::string hash = core::hex_encode(crypto::sha256(core::as_bytes(token_)));
    EXPECT_TRUE(ask(signer_identity(), token, hash).ok());
    auto mismatch = ask(signer_identity(), token, std::string(64, '0'));
    ASSERT_FALSE(mismatch.ok());
    EXPECT_EQ(mismatch.error().code, "service.token_mismatch");
    EXPECT_EQ(mismatch.error().kind, core::ErrorKind::conflict);
    auto denied = ask(officer_identity(), token);
    EXPECT_EQ(denied.error().kind, core::ErrorKind::denied);
    auto conflict = ask(signer_identity(), rotation);
    EXPECT_EQ(conflict.error().kind, core::ErrorKind::conflict);
    auto missing = ask(signer_identity(), 1000);
    EXPECT_EQ(missing.error().kind, core::ErrorKind::not_found);
}

TEST_F(ServiceReceipt, APrunedEntryHasNoReceipt) {
    // Two segments: pruning rewrites every segment but the last.
    const auto pruned = append("token.sign", "product-a", audit::Outcome::allowed, token_);
    for (int i = 0; i < 3; ++i) append("token.sign", "product-a", audit::Outcome::allowed, "x");
    ASSERT_TRUE(log_->close().ok());
    log_.reset();
    audit::LogOptions o;
    o.dir = dir_.path() / "audit";
    o.origin = "test.example/audit/unit";
    o.key_name = o.origin;
    o.segment_max_bytes = 1;  // every later entry starts a new segment
    {
        auto log = audit::AuditLog::open(o, {signer_.get(), &anchor_});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        ASSERT_TRUE((*log)
                        ->append([] {
                            audit::Entry e;
                            e.principal = "ls";
                            e.action = "token.sign";
                            e.result = audit::Outcome::denied;
                            e.key = "product-a";
                            return e;
                        }())
                        .ok());
        ASSERT_TRUE((*log)->close().ok());
    }
    audit::PruneOptions prune;
    prune.dir = o.dir;
    prune.before = core::Clock::now() + std::chrono::hours(1);
    audit::Finding finding;
    auto report =
        audit::prune_log_directory(prune, audit::NoteVerifier::parse(vkey_).value(), &finding);
    ASSERT_TRUE(report.ok()) << report.error().to_string();
    auto log = audit::AuditLog::open(o, {signer_.get(), &anchor_});
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    log_ = std::move(*log);
    ASSERT_TRUE(log_->pruned(pruned));
    service();
    auto out = ask(signer_identity(), pruned);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.error().code, "service.entry_pruned");
    EXPECT_EQ(out.error().kind, core::ErrorKind::not_found);
}

}  // namespace
}  // namespace licentra::service
