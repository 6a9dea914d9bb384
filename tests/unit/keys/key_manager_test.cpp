// The key lifecycle against an in-memory key store that can fail any call: every transition
// (bootstrap, rotation, activation by time, retirement, destruction), the times at which they
// happen (an injected `now`, never the wall clock's progress), every refusal, and what a fault
// in each step leaves behind.
#include "keys/key_manager.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "crypto/ossl.hpp"
#include "crypto/random.hpp"
#include "keys/key_store.hpp"
#include "policy/engine.hpp"
#include "unit/keys/fake_key_store.hpp"
#include "unit/policy/policy_test_util.hpp"

namespace licentra::keys {
namespace {

using test::FakeKeyStore;

using namespace std::chrono_literals;
namespace ca = core::action;
using core::ErrorKind;

std::string kid_of(const crypto::PublicKey& k) {
    return core::hex_encode(crypto::sha256(k.spki_der())).substr(0, 16);
}

core::Error device_fault() {
    return core::make_error(ErrorKind::hsm_unavailable, "hsm.device_error", "injected");
}

class KeyLifecycle : public ::testing::Test {
  protected:
    void SetUp() override {
        engine_ = policy::test::load_ok(policy::test::kBasePolicy);
        ASSERT_NE(engine_, nullptr);
        auto g = engine_->system_grant("product-a", policy::Engine::SystemPurpose::bootstrap);
        ASSERT_TRUE(g.ok()) << g.error().to_string();
        grant_.emplace(*g);
        auto s = engine_->authorize<ca::TokenSign>("ls", "product-a");
        ASSERT_TRUE(s.ok()) << s.error().to_string();
        sign_grant_.emplace(*s);
        auto km = KeyManager::create(store_, kid_of, options());
        ASSERT_TRUE(km.ok()) << km.error().to_string();
        km_ = std::move(*km);
        km_->set_observer([this](std::string_view event, const KeyVersion& v) {
            events_.push_back(std::string(event) + " v" + std::to_string(v.record.version));
        });
        timing_.publish_ahead = 1h;
        timing_.max_validity = 24h;
        timing_.verify_grace = 1h;
    }

    ClusterOptions options() {
        ClusterOptions o;
        o.replica = "replica-a";
        o.min_pre_active = 0ms;
        o.claims.write_bound = 1000ms;
        o.claims.settle = 1001ms;
        o.wait = [this](std::chrono::milliseconds) {
            ++waits_;
        };  // one process: nothing to wait for
        return o;
    }

    void bootstrap() {
        auto b = km_->bootstrap(*grant_, crypto::Algorithm::EdDSA);
        ASSERT_TRUE(b.ok()) << b.error().to_string();
        ASSERT_TRUE(b->has_value());
        ASSERT_EQ((*b)->record.version, 1u);
        t0_ = core::Clock::now();
    }
    TransitionHook hook() {
        return [this](std::string_view event, const KeyVersion& v) {
            hooked_.push_back(std::string(event) + " v" + std::to_string(v.record.version));
        };
    }
    std::string states() const {
        std::string out;
        for (const auto& v : km_->versions("product-a")) {
            out += "v" + std::to_string(v.record.version) + ":" +
                   std::string(state_name(v.record.state)) + " ";
        }
        return out;
    }
    std::vector<unsigned> published(core::TimePoint at) const {
        std::vector<unsigned> out;
        for (const auto& v : km_->published(at)) out.push_back(v.record.version);
        return out;
    }
    unsigned signing_version() {
        auto lease = km_->lease(*sign_grant_);
        EXPECT_TRUE(lease.ok()) << lease.error().to_string();
        if (!lease.ok()) return 0;
        const core::Bytes msg = {'h', 'i'};
        auto sig = lease->sign(msg);
        EXPECT_TRUE(sig.ok()) << sig.error().to_string();
        if (sig.ok()) {
            EXPECT_TRUE(lease->version().public_key->verify(msg, *sig).ok());
        }
        return lease->version().record.version;
    }

    std::shared_ptr<const policy::Engine> engine_;
    std::shared_ptr<FakeKeyStore> store_ = std::make_shared<FakeKeyStore>();
    std::unique_ptr<KeyManager> km_;
    std::optional<core::Grant<ca::KeyLifecycleExecute>> grant_;
    std::optional<core::Grant<ca::TokenSign>> sign_grant_;
    Timing timing_;
    core::TimePoint t0_;
    std::vector<std::string> events_;
    std::vector<std::string> hooked_;
    int waits_ = 0;
};

TEST_F(KeyLifecycle, BootstrapActivatesVersionOneOnceAndItSigns) {
    bootstrap();
    EXPECT_EQ(states(), "v1:active ");
    EXPECT_EQ(events_, std::vector<std::string>{"key.activate v1"});
    EXPECT_EQ(waits_, 1);  // one claim on version 1
    auto again = km_->bootstrap(*grant_, crypto::Algorithm::EdDSA);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_FALSE(again->has_value());
    EXPECT_EQ(store_->calls("generate_key"), 1);
    EXPECT_EQ(signing_version(), 1u);
}

TEST_F(KeyLifecycle, ARotationIsPreActiveUntilItsTimeThenSignsAndRetiresTheOldVersion) {
    bootstrap();
    auto v2 = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, hook());
    ASSERT_TRUE(v2.ok()) << v2.error().to_string();
    EXPECT_EQ(v2->record.version, 2u);
    EXPECT_EQ(hooked_, std::vector<std::string>{"key.rotate v2"});
    const auto activate = t0_ + 1h;
    EXPECT_EQ(v2->record.activate_at_ms, core::unix_millis(activate));
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
    EXPECT_EQ(published(t0_), (std::vector<unsigned>{1, 2}));  // verifiers learn v2 first
    EXPECT_EQ(signing_version(), 1u);

    ASSERT_TRUE(km_->refresh(activate - 1ms).ok());
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
    ASSERT_TRUE(km_->refresh(activate).ok());
    EXPECT_EQ(states(), "v1:retired v2:active ");
    EXPECT_EQ(signing_version(), 2u);
    EXPECT_EQ(events_,
              (std::vector<std::string>{"key.activate v1", "key.activate v2", "key.retire v1"}));
    // v1 stays published while tokens it signed can be valid: max_validity + verify_grace.
    const auto v1 = km_->versions("product-a").front();
    const auto until = activate + 25h;
    EXPECT_EQ(v1.record.verify_until_ms, core::unix_millis(until));
    EXPECT_EQ(published(until - 1ms), (std::vector<unsigned>{1, 2}));
    EXPECT_EQ(published(until), (std::vector<unsigned>{2}));
}

TEST_F(KeyLifecycle, RotationsAreRefusedWhileOneIsPendingAndForAKeyWithoutVersions) {
    auto none = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, core::Clock::now(), {});
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code, "keys.no_versions");
    EXPECT_EQ(none.error().kind, ErrorKind::not_found);
    bootstrap();
    ASSERT_TRUE(km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {}).ok());
    auto second = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_ + 1min, {});
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, "keys.rotation_pending");
    EXPECT_EQ(second.error().kind, ErrorKind::conflict);
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
}

TEST_F(KeyLifecycle, RetiringTheActiveVersionLeavesTheKeyWithoutASigner) {
    bootstrap();
    auto r = km_->retire(*grant_, 1, timing_, t0_, hook());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->record.state, KeyState::retired);
    EXPECT_EQ(r->record.verify_until_ms, core::unix_millis(t0_ + 25h));
    EXPECT_EQ(hooked_, std::vector<std::string>{"key.retire v1"});
    auto lease = km_->lease(*sign_grant_);
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.error().code, "keys.no_active_version");
    auto again = km_->retire(*grant_, 1, timing_, t0_, {});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "keys.bad_state");
    auto missing = km_->retire(*grant_, 7, timing_, t0_, {});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "keys.no_such_version");
}

TEST_F(KeyLifecycle, DestructionIsRefusedForTheActiveAndStillVerifyingVersionsUnlessForced) {
    bootstrap();
    auto active = km_->destroy(*grant_, 1, false, t0_, {});
    ASSERT_FALSE(active.ok());
    EXPECT_EQ(active.error().code, "keys.destroy_active");
    ASSERT_TRUE(km_->retire(*grant_, 1, timing_, t0_, {}).ok());
    const auto until = t0_ + 25h;
    auto early = km_->destroy(*grant_, 1, false, until - 1ms, {});
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().code, "keys.destroy_still_verifying");
    EXPECT_TRUE(store_->has_private("licentra/product-a/v1"));
    auto done = km_->destroy(*grant_, 1, false, until, hook());
    ASSERT_TRUE(done.ok()) << done.error().to_string();
    EXPECT_EQ(done->record.state, KeyState::destroyed);
    EXPECT_EQ(done->public_key, nullptr);
    EXPECT_FALSE(store_->has_private("licentra/product-a/v1"));
    EXPECT_EQ(hooked_, std::vector<std::string>{"key.destroy v1"});
    EXPECT_TRUE(published(until).empty());
    auto again = km_->destroy(*grant_, 1, true, until, {});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "keys.bad_state");
}

TEST_F(KeyLifecycle, ForceDestroysTheActiveVersion) {
    bootstrap();
    auto done = km_->destroy(*grant_, 1, true, t0_, {});
    ASSERT_TRUE(done.ok()) << done.error().to_string();
    EXPECT_EQ(states(), "v1:destroyed ");
    EXPECT_FALSE(store_->has_private("licentra/product-a/v1"));
    EXPECT_EQ(km_->lease(*sign_grant_).error().code, "keys.no_active_version");
}

TEST_F(KeyLifecycle, AFailedGenerationCreatesNoVersionAndItsNumberIsNeverReused) {
    bootstrap();
    store_->fail("generate_key", 1, device_fault());
    auto failed = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, hook());
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, "hsm.device_error");
    EXPECT_EQ(states(), "v1:active ");
    EXPECT_TRUE(hooked_.empty());
    EXPECT_EQ(signing_version(), 1u);
    auto next = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {});
    ASSERT_TRUE(next.ok()) << next.error().to_string();
    EXPECT_EQ(next->record.version, 3u);  // v2's claim stays on the token: the number is taken
}

TEST_F(KeyLifecycle, AFailedRecordWriteLeavesAStrayPairThatIsNeverAVersion) {
    bootstrap();
    // create_data: 1st the claim, 2nd the version's record.
    store_->fail("create_data", 2, device_fault());
    auto failed = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {});
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, "hsm.device_error");
    EXPECT_EQ(store_->pairs("licentra/product-a/v2"), 1u);
    EXPECT_EQ(states(), "v1:active ");
    EXPECT_EQ(signing_version(), 1u);
}

// Once its record is written the version exists: a fault in re-reading the key state right
// after must not make the rotation look failed (its caller would create another version).
TEST_F(KeyLifecycle, ARotationWhoseStateCannotBeReadAgainIsStillCreated) {
    bootstrap();
    // The rotation's refresh before creating, then the one after the record: the second fails.
    store_->fail("list_keys", 2, device_fault());
    auto v2 = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {});
    ASSERT_TRUE(v2.ok()) << v2.error().to_string();
    EXPECT_EQ(v2->record.version, 2u);
    EXPECT_EQ(v2->record.state, KeyState::pre_active);
    ASSERT_NE(v2->public_key, nullptr);
    EXPECT_EQ(v2->kid, kid_of(*v2->public_key));
    ASSERT_TRUE(km_->refresh(t0_).ok());
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
    EXPECT_EQ(km_->versions("product-a").back().kid, v2->kid);
    auto again = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {});
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code, "keys.rotation_pending");
}

// An object another replica writes or destroys at this instant can vanish between being listed
// and being read: an operation reads the state again instead of failing (a rotation that
// failed for it would close its request as failed).
TEST_F(KeyLifecycle, ARotationReadsTheStateAgainWhenAnObjectVanishedWhileRead) {
    bootstrap();
    store_->fail("list_data", 1,
                 core::make_error(ErrorKind::not_found, "hsm.object_gone",
                                  "an object changed while it was read"));
    const int lists = store_->calls("list_data");
    auto v2 = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {});
    ASSERT_TRUE(v2.ok()) << v2.error().to_string();
    EXPECT_EQ(v2->record.version, 2u);
    EXPECT_GT(store_->calls("list_data"), lists + 1);  // the vanished read, then again
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
}

TEST_F(KeyLifecycle, ARefreshThatFailsKeepsTheLastGoodStateServing) {
    bootstrap();
    ASSERT_TRUE(km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {}).ok());
    store_->fail("list_data", 1, device_fault());
    auto st = km_->refresh(t0_ + 1h);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "hsm.device_error");
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
    EXPECT_EQ(signing_version(), 1u);
    ASSERT_TRUE(km_->refresh(t0_ + 1h).ok());  // the fault passed: the state catches up
    EXPECT_EQ(states(), "v1:retired v2:active ");
    EXPECT_EQ(signing_version(), 2u);
}

// A version that becomes active while this replica cannot see its private key is active all the
// same, without a signing handle here (503 keys.key_unreadable): the refresh goes on, so the
// rotation that replaces it can run. A version that was already signing and loses its private
// key keeps the last good state instead (keys.key_vanished).
TEST_F(KeyLifecycle, AVersionActivatedWithoutAVisiblePrivateKeyLetsTheRotationReplaceIt) {
    bootstrap();
    ASSERT_TRUE(km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_, {}).ok());
    // Another replica, which never held a handle of v2, reads the token.
    auto other = KeyManager::create(store_, kid_of, options());
    ASSERT_TRUE(other.ok()) << other.error().to_string();
    std::swap(km_, *other);
    ASSERT_TRUE(km_->refresh(t0_).ok());
    EXPECT_EQ(states(), "v1:active v2:pre-active ");
    store_->lose_private("licentra/product-a/v2");
    const int reloads = store_->calls("reload_view");

    ASSERT_TRUE(km_->refresh(t0_ + 1h).ok());  // v2's activation time
    EXPECT_EQ(states(), "v1:retired v2:active ");
    auto lease = km_->lease(*sign_grant_);
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.error().code, "keys.key_unreadable");
    EXPECT_EQ(store_->calls("reload_view"), reloads + 1);  // asked to read the token again

    auto v3 = km_->rotate(*grant_, crypto::Algorithm::EdDSA, timing_, t0_ + 1h, {});
    ASSERT_TRUE(v3.ok()) << v3.error().to_string();
    EXPECT_EQ(v3->record.version, 3u);
    ASSERT_TRUE(km_->refresh(t0_ + 2h).ok());
    EXPECT_EQ(states(), "v1:retired v2:retired v3:active ");
    EXPECT_EQ(signing_version(), 3u);

    store_->lose_private("licentra/product-a/v3");
    auto st = km_->refresh(t0_ + 2h + 1s);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, "keys.key_vanished");
    EXPECT_EQ(states(), "v1:retired v2:retired v3:active ");
}

TEST_F(KeyLifecycle, AFailedSignatureIsTheStoresErrorAndTheLeaseStaysUsable) {
    bootstrap();
    auto lease = km_->lease(*sign_grant_);
    ASSERT_TRUE(lease.ok());
    store_->fail("sign", 1, device_fault());
    const core::Bytes msg = {'x'};
    auto failed = lease->sign(msg);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, "hsm.device_error");
    EXPECT_TRUE(lease->sign(msg).ok());
}

TEST_F(KeyLifecycle, ADestroyWhosePrivateObjectSurvivedIsCompletedByTheNextDestroy) {
    bootstrap();
    store_->fail("destroy_private_key", 1, device_fault());
    auto failed = km_->destroy(*grant_, 1, true, t0_, {});
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, "hsm.device_error");
    // The destroyed record came first: the version never signs again.
    ASSERT_TRUE(km_->refresh(t0_).ok());
    EXPECT_EQ(states(), "v1:destroyed ");
    EXPECT_TRUE(store_->has_private("licentra/product-a/v1"));
    auto again = km_->destroy(*grant_, 1, true, t0_, {});
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_FALSE(store_->has_private("licentra/product-a/v1"));
}

TEST(KeyManagerCreate, RefusesMissingDependenciesAndUnworkableClaimTimings) {
    auto store = std::make_shared<FakeKeyStore>();
    auto code = [](const core::Result<std::unique_ptr<KeyManager>>& r) {
        return r.ok() ? std::string("ok") : r.error().code;
    };
    EXPECT_EQ(code(KeyManager::create(nullptr, kid_of)), "keys.bad_options");
    EXPECT_EQ(code(KeyManager::create(store, KidFunction{})), "keys.bad_options");
    ClusterOptions unnamed;
    unnamed.replica.clear();
    EXPECT_EQ(code(KeyManager::create(store, kid_of, unnamed)), "keys.bad_options");
    ClusterOptions settle;
    settle.claims.settle = settle.claims.write_bound;
    EXPECT_EQ(code(KeyManager::create(store, kid_of, settle)), "keys.bad_options");
    ClusterOptions zero;
    zero.claims.write_bound = 0ms;
    EXPECT_EQ(code(KeyManager::create(store, kid_of, zero)), "keys.bad_options");
    EXPECT_EQ(code(KeyManager::create(store, kid_of)), "ok");
}

}  // namespace
}  // namespace licentra::keys
