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
#include "keys/key_manager.hpp"
#include "keys/key_store.hpp"
#include "policy/approval.hpp"
#include "policy/engine.hpp"
#include "policy/holder.hpp"
#include "service/service.hpp"
#include "unit/policy/policy_test_util.hpp"

namespace licentra::service {
namespace {

namespace ca = core::action;

// Records in memory; the first `hidden_lists` listings answer as if the token did not yet
// show them.
class LaggingStore : public RequestStore {
  public:
    core::Status create(const std::string& name, const std::string& json) override {
        std::lock_guard lock(mu_);
        records_.emplace(name, json);
        return {};
    }
    core::Result<std::vector<std::pair<std::string, std::string>>> list(
        const std::string& prefix) override {
        std::lock_guard lock(mu_);
        ++lists_;
        std::vector<std::pair<std::string, std::string>> out;
        if (lists_ <= hidden_lists) return out;
        for (const auto& [name, text] : records_) {
            if (name.rfind(prefix, 0) == 0) out.emplace_back(name, text);
        }
        return out;
    }
    core::Status remove(const std::string& name) override {
        std::lock_guard lock(mu_);
        records_.erase(name);
        return {};
    }
    void reload_view(std::string_view why) override {
        std::lock_guard lock(mu_);
        reloads_.emplace_back(why);
    }
    int lists() {
        std::lock_guard lock(mu_);
        return lists_;
    }
    std::vector<std::string> reloads() {
        std::lock_guard lock(mu_);
        return reloads_;
    }
    int hidden_lists = 0;

  private:
    std::mutex mu_;
    std::map<std::string, std::string> records_;
    int lists_ = 0;
    std::vector<std::string> reloads_;
};

// A token with no keys that refuses to make any: enough for the service's tick.
class NoKeys final : public keys::KeyStore {
  public:
    core::Result<hsm::KeyRef> generate_key(const std::string&, unsigned,
                                           crypto::Algorithm) override {
        return refused();
    }
    core::Result<hsm::KeyRef> load_key(const std::string&, const core::Bytes*) override {
        return refused();
    }
    core::Result<std::vector<hsm::KeyInfo>> list_keys(const std::string&) override {
        return std::vector<hsm::KeyInfo>{};
    }
    core::Result<bool> label_exists(const std::string&) override { return false; }
    core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>&) override {
        return std::vector<core::Result<crypto::PublicKey>>{};
    }
    core::Status destroy_private_key(const std::string&, const core::Bytes*) override {
        return refused();
    }
    core::Result<core::Bytes> sign(const hsm::KeyRef&, core::ByteView) override {
        return refused();
    }
    core::Status create_data(const std::string&, core::ByteView) override { return refused(); }
    core::Status delete_data(const std::string&) override { return refused(); }
    core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string&) override {
        return std::vector<std::pair<std::string, core::Bytes>>{};
    }
    void reload_view() override {}

  private:
    static core::Error refused() {
        return core::make_error(core::ErrorKind::hsm_unavailable, "test.no_keys", "no keys here");
    }
};

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
        ASSERT_TRUE(store_.create(id_, r->to_json()).ok());
        auto km = keys::KeyManager::create(std::make_shared<NoKeys>(),
                                           [](const crypto::PublicKey&) { return std::string(); });
        ASSERT_TRUE(km.ok()) << km.error().to_string();
        keys_ = std::move(*km);
        Dependencies deps;
        deps.requests = &store_;
        deps.policy = holder_.get();
        deps.keys = keys_.get();
        deps.clock = [this] {
            std::lock_guard lock(clock_mu_);
            return clock_;
        };
        service_ = std::make_unique<Service>(deps);
    }

    // A close claim of another replica on the request, made at `at`.
    void claimed_at(core::TimePoint at) {
        const std::string nonce(32, 'a');
        const nlohmann::json claim = {
            {"decision", "execute"}, {"by", "replica-b"}, {"at_ms", core::unix_millis(at)}};
        ASSERT_TRUE(store_.create(id_ + "/close/" + nonce + "/off-b", claim.dump()).ok());
    }

    void set_clock(core::TimePoint t) {
        std::lock_guard lock(clock_mu_);
        clock_ = t;
    }

    std::mutex clock_mu_;
    core::TimePoint clock_ = core::Clock::now();
    LaggingStore store_;
    std::unique_ptr<keys::KeyManager> keys_;
    std::unique_ptr<policy::EngineHolder> holder_;
    std::unique_ptr<Service> service_;
    std::string id_;
};

TEST_F(RequestVisibility, ARequestMissingFromTheFirstLooksIsFound) {
    store_.hidden_lists = 2;
    auto got = service_->get_request(Caller{officer_a(), "r1"}, id_);
    ASSERT_TRUE(got.value.has_value()) << got.failure->error.to_string();
    EXPECT_EQ((*got.value)["id"], id_);
    EXPECT_EQ((*got.value)["state"], "pending");
    EXPECT_EQ(store_.lists(), 3);
}

TEST_F(RequestVisibility, AnUnknownRequestIsNotFoundAfterFourLooks) {
    const std::string unknown(id_.size(), '0');
    auto got = service_->get_request(Caller{officer_a(), "r2"}, unknown);
    ASSERT_TRUE(got.failure.has_value());
    EXPECT_EQ(got.failure->error.code, "service.no_such_request");
    EXPECT_EQ(store_.lists(), 4);
}

// Defaults: settle 1 s, so a close that has not finished after 6 x 1 s + 5 s = 11 s is
// suspected.
TEST_F(RequestVisibility, ARequestClosingLongerThanACloseTakesHasTheTokenReadAgainOncePerInterval) {
    const auto now = core::Clock::now();
    claimed_at(now - std::chrono::seconds(20));
    service_->tick(now);
    auto reloads = store_.reloads();
    ASSERT_EQ(reloads.size(), 1u);
    EXPECT_EQ(reloads[0], "request " + id_ +
                              " has read as closing for 20 s with no outcome; reading the token "
                              "again");
    service_->tick(now + std::chrono::seconds(10));  // within the interval: not again
    EXPECT_EQ(store_.reloads().size(), 1u);
    service_->tick(now + std::chrono::seconds(12));  // still closing, the interval passed
    EXPECT_EQ(store_.reloads().size(), 2u);
    auto got = service_->get_request(Caller{officer_a(), "r3"}, id_);
    ASSERT_TRUE(got.value.has_value()) << got.failure->error.to_string();
    EXPECT_EQ((*got.value)["state"], "closing");
}

// A close claim whose replica never wrote an outcome (it died while executing) counts as
// failed exactly five minutes after the claim, on the service's clock.
TEST_F(RequestVisibility, AnAbandonedCloseReadsAsFailedFiveMinutesAfterItsClaim) {
    // Records hold milliseconds.
    const auto claim = core::from_unix_millis(core::unix_millis(core::Clock::now()));
    claimed_at(claim);
    set_clock(claim + std::chrono::minutes(5));
    auto got = service_->get_request(Caller{officer_a(), "r4"}, id_);
    ASSERT_TRUE(got.value.has_value()) << got.failure->error.to_string();
    EXPECT_EQ((*got.value)["state"], "closing");
    set_clock(claim + std::chrono::minutes(5) + std::chrono::milliseconds(1));
    got = service_->get_request(Caller{officer_a(), "r5"}, id_);
    ASSERT_TRUE(got.value.has_value()) << got.failure->error.to_string();
    EXPECT_EQ((*got.value)["state"], "failed");
}

TEST_F(RequestVisibility, ACloseStillWithinItsTimeIsNotSuspected) {
    const auto now = core::Clock::now();
    claimed_at(now - std::chrono::seconds(10));
    service_->tick(now);
    EXPECT_TRUE(store_.reloads().empty());
}

}  // namespace
}  // namespace licentra::service
