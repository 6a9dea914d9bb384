// A request another replica has just written can be missing from this process's view of the
// token for a moment; the service looks again before it answers "no such request".
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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
    int lists() {
        std::lock_guard lock(mu_);
        return lists_;
    }
    int hidden_lists = 0;

  private:
    std::mutex mu_;
    std::map<std::string, std::string> records_;
    int lists_ = 0;
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
        Dependencies deps;
        deps.requests = &store_;
        deps.policy = holder_.get();
        service_ = std::make_unique<Service>(deps);
    }

    LaggingStore store_;
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

}  // namespace
}  // namespace licentra::service
