// Pseudonym epochs on a real SoftHSM token, at injected instants: each epoch's HMAC key is
// made ahead of use, pseudonyms differ between epochs and agree across processes' views, and
// an epoch past its retention loses its key, after which its pseudonyms cannot be recomputed.
#include <gtest/gtest.h>

#include <algorithm>

#include "app/wiring/audit_hsm.hpp"
#include "audit/pseudonym_epoch.hpp"
#include "audit/record.hpp"
#include "hsm/hsm.hpp"
#include "support/softhsm.hpp"

namespace licentra::audit {
namespace {

using namespace std::chrono_literals;

core::TimePoint at_s(std::int64_t s) { return core::TimePoint(std::chrono::seconds(s)); }

class PseudonymEpochsOnTheToken : public ::testing::Test {
  protected:
    void SetUp() override {
        auto m = hsm::Module::load(test::SoftHsmToken::module_path());
        ASSERT_TRUE(m.ok()) << m.error().to_string();
        module_ = *m;
        hsm::TokenOptions opts;
        opts.uri = fixture_.uri();
        auto t = hsm::Token::open(module_, opts);
        ASSERT_TRUE(t.ok()) << t.error().to_string();
        token_ = std::move(*t);
    }
    void TearDown() override {
        token_.reset();
        module_.reset();
    }
    std::vector<std::string> epoch_keys() {
        auto l = token_->list_hmac_keys("licentra/pseudonym/");
        EXPECT_TRUE(l.ok()) << l.error().to_string();
        return l.ok() ? *l : std::vector<std::string>{};
    }

    test::SoftHsmToken fixture_;
    std::shared_ptr<hsm::Module> module_;
    std::shared_ptr<hsm::Token> token_;
};

TEST_F(PseudonymEpochsOnTheToken, KeysAreMadeAheadAndDestroyedAfterRetention) {
    app::wiring::HsmPseudonymizer p(token_);
    const auto length = 100s;
    const auto retention = 50s;
    const auto now = at_s(1'000'000'050);
    const PseudonymEpoch e{1'000'000'000, 100};
    auto first = p.maintain(now, length, retention);
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    EXPECT_TRUE(first->empty());
    EXPECT_EQ(epoch_keys(), (std::vector<std::string>{"licentra/pseudonym/e1000000000-100",
                                                      "licentra/pseudonym/e1000000100-100"}));

    const nlohmann::json sub = "customer-42";
    auto mac = claim_pseudonym(p, "sub", sub, e);
    ASSERT_TRUE(mac.ok()) << mac.error().to_string();
    EXPECT_EQ(*claim_pseudonym(p, "sub", sub, e), *mac);
    EXPECT_NE(*claim_pseudonym(p, "sub", sub, e.next()), *mac);  // epochs do not link
    EXPECT_NE(*claim_pseudonym(p, "sub", "customer-43", e), *mac);
    // Another daemon on the same token computes the same pseudonym.
    app::wiring::HsmPseudonymizer other(token_);
    EXPECT_EQ(*claim_pseudonym(other, "sub", sub, e), *mac);

    // One millisecond before its destruction time the key stays; at that time it goes.
    auto early = p.maintain(e.destroy_at(retention) - 1ms, length, retention);
    ASSERT_TRUE(early.ok()) << early.error().to_string();
    EXPECT_TRUE(early->empty());
    auto due = p.maintain(e.destroy_at(retention), length, retention);
    ASSERT_TRUE(due.ok()) << due.error().to_string();
    EXPECT_EQ(*due, std::vector<PseudonymEpoch>{e});
    auto keys = epoch_keys();
    EXPECT_EQ(std::count(keys.begin(), keys.end(), e.label()), 0);
    // Another daemon's maintenance finds nothing left to destroy (one audit entry in all).
    auto again = other.maintain(e.destroy_at(retention), length, retention);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_TRUE(again->empty());

    // Nobody can recompute the destroyed epoch's pseudonyms: no key is made for an ended epoch.
    for (auto* who : {&p, &other}) {
        auto gone = claim_pseudonym(*who, "sub", sub, e);
        ASSERT_FALSE(gone.ok());
        EXPECT_EQ(gone.error().code, "hsm.key_not_found");
    }
    app::wiring::HsmPseudonymizer fresh(token_);
    EXPECT_EQ(claim_pseudonym(fresh, "sub", sub, e).error().code, "hsm.key_not_found");
    // The single deployment key is not an epoch key and is never destroyed by maintenance.
    ASSERT_TRUE(p.ensure_key().ok());
    ASSERT_TRUE(p.maintain(at_s(4'000'000'000), length, retention).ok());
    keys = epoch_keys();
    EXPECT_EQ(std::count(keys.begin(), keys.end(), "licentra/pseudonym/v1"), 1);
}

}  // namespace
}  // namespace licentra::audit
