#include "keys/claim.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace licentra::keys {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPrefix = "licentra/product-a/v2/claim/";
const std::string kLowNonce(32, '0');
const std::string kHighNonce(32, 'f');

// Never reached by a test that does not mean to: every timed step of the in-memory storage
// takes microseconds.
constexpr ClaimTiming kRelaxed{std::chrono::hours(1), std::chrono::hours(2)};

// The token as claim() sees it: labelled objects, created and removed, never rewritten.
class MemoryStore {
  public:
    ClaimStorage storage() {
        ClaimStorage s;
        s.list = [this](const std::string& prefix) -> core::Result<std::vector<std::string>> {
            std::lock_guard lock(mutex_);
            ++lists_;
            std::vector<std::string> out;
            for (const auto& [label, value] : objects_) {
                if (label.rfind(prefix, 0) == 0) out.push_back(label);
            }
            return out;
        };
        s.create = [this](const std::string& label, core::ByteView value) -> core::Status {
            put(label, std::string(core::as_chars(value)));
            return core::ok_status();
        };
        s.remove = [this](const std::string& label) -> core::Status {
            std::lock_guard lock(mutex_);
            removed_.push_back(label);
            objects_.erase(label);
            return core::ok_status();
        };
        s.wait = [this](std::chrono::milliseconds d) {
            std::lock_guard lock(mutex_);
            waits_.push_back(d);
        };
        return s;
    }
    void put(const std::string& label, const std::string& value) {
        std::lock_guard lock(mutex_);
        ++creates_;
        objects_[label] = value;
    }
    std::map<std::string, std::string> objects() const {
        std::lock_guard lock(mutex_);
        return objects_;
    }
    std::vector<std::string> labels() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& [label, value] : objects_) out.push_back(label);
        return out;
    }
    int creates() const {
        std::lock_guard lock(mutex_);
        return creates_;
    }
    int lists() const {
        std::lock_guard lock(mutex_);
        return lists_;
    }
    std::vector<std::string> removed() const {
        std::lock_guard lock(mutex_);
        return removed_;
    }
    std::vector<std::chrono::milliseconds> waits() const {
        std::lock_guard lock(mutex_);
        return waits_;
    }

  private:
    mutable std::mutex mutex_;
    std::map<std::string, std::string> objects_;
    std::vector<std::string> removed_;
    std::vector<std::chrono::milliseconds> waits_;
    int creates_ = 0;
    int lists_ = 0;
};

core::Result<ClaimOutcome> claim_in(const ClaimStorage& storage, const std::string& author = "",
                                    const ClaimTiming& timing = kRelaxed,
                                    const std::function<core::Result<bool>()>& pre_check = {}) {
    static const std::string kValue = R"({"by":"replica"})";
    return claim(storage, kPrefix, author, core::as_bytes(kValue), timing, pre_check);
}

// ---- claim() ----

TEST(Claim, LoneClaimerWinsAndLeavesItsClaim) {
    MemoryStore store;
    const ClaimTiming timing{100ms, 250ms};
    auto r = claim_in(store.storage(), "", timing);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    const auto objects = store.objects();
    ASSERT_EQ(objects.size(), 1u);
    const std::string& label = objects.begin()->first;
    const std::string nonce = claim_nonce(kPrefix, label);
    EXPECT_EQ(nonce.size(), 32u);
    EXPECT_EQ(label, kPrefix + nonce);
    EXPECT_EQ(objects.begin()->second, R"({"by":"replica"})");
    // Waited exactly once, for the settle time, and read the claims back afterwards.
    EXPECT_EQ(store.waits(), std::vector<std::chrono::milliseconds>{250ms});
    EXPECT_EQ(store.lists(), 2);
    EXPECT_TRUE(store.removed().empty());
}

TEST(Claim, AuthorIsAppendedToTheClaimLabel) {
    MemoryStore store;
    auto r = claim_in(store.storage(), "replica-b");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    const auto labels = store.labels();
    ASSERT_EQ(labels.size(), 1u);
    const std::string nonce = claim_nonce(kPrefix, labels[0]);
    ASSERT_EQ(nonce.size(), 32u);
    EXPECT_EQ(labels[0], kPrefix + nonce + "/replica-b");
}

TEST(Claim, FreshNoncesDifferBetweenClaims) {
    MemoryStore a;
    MemoryStore b;
    ASSERT_TRUE(claim_in(a.storage()).ok());
    ASSERT_TRUE(claim_in(b.storage()).ok());
    EXPECT_NE(a.labels(), b.labels());
}

TEST(Claim, ExistingClaimMakesTheClaimerLoseWithoutWriting) {
    MemoryStore store;
    store.put(kPrefix + kHighNonce + "/replica-a", "{}");
    auto r = claim_in(store.storage());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::lost);
    EXPECT_EQ(store.creates(), 1);  // only the existing claim
    EXPECT_EQ(store.labels(), std::vector<std::string>{kPrefix + kHighNonce + "/replica-a"});
    EXPECT_TRUE(store.waits().empty());
}

TEST(Claim, ObjectsUnderThePrefixThatAreNotClaimsDoNotBlock) {
    MemoryStore store;
    store.put(std::string(kPrefix) + "not-a-claim", "{}");
    auto r = claim_in(store.storage());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    EXPECT_EQ(store.labels().size(), 2u);
}

TEST(Claim, PreCheckFalseLosesWithoutWriting) {
    MemoryStore store;
    int checks = 0;
    auto r = claim_in(store.storage(), "", kRelaxed, [&]() -> core::Result<bool> {
        ++checks;
        return false;
    });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::lost);
    EXPECT_EQ(checks, 1);
    EXPECT_EQ(store.creates(), 0);
    EXPECT_TRUE(store.waits().empty());
}

TEST(Claim, PreCheckTrueLetsTheClaimerWin) {
    MemoryStore store;
    auto r = claim_in(store.storage(), "", kRelaxed, []() -> core::Result<bool> { return true; });
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    EXPECT_EQ(store.creates(), 1);
}

TEST(Claim, PreCheckErrorIsReturnedWithoutWriting) {
    MemoryStore store;
    auto r = claim_in(store.storage(), "", kRelaxed, []() -> core::Result<bool> {
        return core::make_error(core::ErrorKind::hsm_unavailable, "hsm.test", "down");
    });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "hsm.test");
    EXPECT_EQ(store.creates(), 0);
}

TEST(Claim, PreCheckIsNotConsultedWhenAClaimExists) {
    MemoryStore store;
    store.put(kPrefix + kLowNonce, "{}");
    bool consulted = false;
    auto r = claim_in(store.storage(), "", kRelaxed, [&]() -> core::Result<bool> {
        consulted = true;
        return true;
    });
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, ClaimOutcome::lost);
    EXPECT_FALSE(consulted);
}

TEST(Claim, ListErrorIsReturned) {
    MemoryStore store;
    ClaimStorage s = store.storage();
    s.list = [](const std::string&) -> core::Result<std::vector<std::string>> {
        return core::make_error(core::ErrorKind::hsm_unavailable, "hsm.test", "down");
    };
    auto r = claim_in(s);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::hsm_unavailable);
    EXPECT_EQ(store.creates(), 0);
}

TEST(Claim, CreateErrorIsReturnedWithoutWaiting) {
    MemoryStore store;
    ClaimStorage s = store.storage();
    s.create = [](const std::string&, core::ByteView) -> core::Status {
        return core::make_error(core::ErrorKind::hsm_unavailable, "hsm.test", "full");
    };
    auto r = claim_in(s);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "hsm.test");
    EXPECT_TRUE(store.waits().empty());
}

// A competing replica's claim appears during the settle wait (it checked before this claimer
// wrote, so neither saw the other): the lowest nonce wins, seen alike from both sides.
TEST(Claim, CompetingLowerClaimWrittenDuringSettleWins) {
    MemoryStore store;
    ClaimStorage s = store.storage();
    const std::string rival = kPrefix + kLowNonce + "/replica-b";
    s.wait = [&](std::chrono::milliseconds) { store.put(rival, "{}"); };
    auto r = claim_in(s, "replica-a");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::lost);
    // Both claims stay; the rival, reading the same labels, finds its own nonce lowest.
    const auto labels = store.labels();
    ASSERT_EQ(labels.size(), 2u);
    EXPECT_EQ(lowest_claim(kPrefix, labels), kLowNonce);
    EXPECT_TRUE(store.removed().empty());
}

TEST(Claim, CompetingHigherClaimWrittenDuringSettleLoses) {
    MemoryStore store;
    ClaimStorage s = store.storage();
    const std::string rival = kPrefix + kHighNonce + "/replica-b";
    s.wait = [&](std::chrono::milliseconds) { store.put(rival, "{}"); };
    auto r = claim_in(s, "replica-a");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    const auto labels = store.labels();
    ASSERT_EQ(labels.size(), 2u);
    // The rival computes the same winner: not itself.
    const std::string winner = lowest_claim(kPrefix, labels);
    EXPECT_NE(winner, kHighNonce);
    EXPECT_EQ(labels[0], kPrefix + winner + "/replica-a");
}

// Two claimers that both pass their check before either writes, the second one's whole claim
// running inside the first one's settle wait: the second sees the first's claim after its own
// settle. Exactly one wins, and it is the one with the lower nonce.
TEST(Claim, InterleavedClaimersAgreeOnTheLowestNonce) {
    for (int round = 0; round < 50; ++round) {
        MemoryStore store;
        ClaimStorage first = store.storage();
        ClaimStorage second = store.storage();
        // Both check against the empty store: the second claimer's first list is answered
        // as the store was before the first claimer wrote.
        const ClaimStorage plain = store.storage();
        int second_lists = 0;
        second.list = [&](const std::string& prefix) -> core::Result<std::vector<std::string>> {
            if (second_lists++ == 0) return std::vector<std::string>{};
            return plain.list(prefix);
        };
        std::optional<core::Result<ClaimOutcome>> second_result;
        first.wait = [&](std::chrono::milliseconds) {
            second_result.emplace(claim_in(second, "replica-b"));
        };
        auto first_result = claim_in(first, "replica-a");
        ASSERT_TRUE(first_result.ok()) << first_result.error().to_string();
        ASSERT_TRUE(second_result.has_value());
        ASSERT_TRUE(second_result->ok()) << second_result->error().to_string();

        const auto labels = store.labels();
        ASSERT_EQ(labels.size(), 2u);
        const std::string winner = lowest_claim(kPrefix, labels);
        const bool first_lower = labels[0].ends_with("/replica-a");
        EXPECT_EQ(*first_result, first_lower ? ClaimOutcome::won : ClaimOutcome::lost);
        EXPECT_EQ(**second_result, first_lower ? ClaimOutcome::lost : ClaimOutcome::won);
        EXPECT_EQ(labels[0], kPrefix + winner + (first_lower ? "/replica-a" : "/replica-b"));
    }
}

// N replicas on real threads. The pre-check barrier holds every claimer between its check and
// its write until all have checked (nobody sees another's claim early); the settle barrier
// holds every claimer until all have written. Every claim is visible to every claimer.
void race(std::ptrdiff_t claimers, int rounds) {
    for (int round = 0; round < rounds; ++round) {
        MemoryStore store;
        std::barrier checked(claimers);
        std::barrier written(claimers);
        ClaimStorage s = store.storage();
        s.wait = [&](std::chrono::milliseconds) { written.arrive_and_wait(); };
        auto pre_check = [&]() -> core::Result<bool> {
            checked.arrive_and_wait();
            return true;
        };
        std::vector<std::optional<core::Result<ClaimOutcome>>> results(
            static_cast<std::size_t>(claimers));
        std::vector<std::string> seen_winner(static_cast<std::size_t>(claimers));
        {
            std::vector<std::jthread> threads;
            for (std::size_t i = 0; i < results.size(); ++i) {
                threads.emplace_back([&, i] {
                    results[i].emplace(claim_in(s, "r" + std::to_string(i), kRelaxed, pre_check));
                    seen_winner[i] = lowest_claim(kPrefix, store.labels());
                });
            }
        }
        const auto labels = store.labels();
        ASSERT_EQ(labels.size(), static_cast<std::size_t>(claimers)) << "round " << round;
        const std::string winner = lowest_claim(kPrefix, labels);
        int won = 0;
        for (std::size_t i = 0; i < results.size(); ++i) {
            ASSERT_TRUE(results[i].has_value());
            ASSERT_TRUE(results[i]->ok()) << results[i]->error().to_string();
            EXPECT_EQ(seen_winner[i], winner) << "round " << round;
            const bool mine =
                store.objects().count(kPrefix + winner + "/r" + std::to_string(i)) == 1;
            EXPECT_EQ(**results[i], mine ? ClaimOutcome::won : ClaimOutcome::lost)
                << "round " << round << " claimer " << i;
            if (**results[i] == ClaimOutcome::won) ++won;
        }
        EXPECT_EQ(won, 1) << "round " << round;
    }
}

TEST(Claim, TwoConcurrentClaimersProduceExactlyOneWinnerPerRound) { race(2, 200); }

TEST(Claim, ThreeConcurrentClaimersProduceExactlyOneWinnerPerRound) { race(3, 200); }

// The check-then-write step took longer than write_bound: others may have decided without
// seeing this claim, so it is removed and the claimer neither waits nor wins.
TEST(Claim, ClaimerWhoseCreateOutlastsWriteBoundWithdrawsItsClaim) {
    MemoryStore store;
    ClaimStorage s = store.storage();
    const ClaimTiming timing{5ms, 10ms};
    std::string created;
    std::chrono::steady_clock::duration create_took{};
    s.create = [&](const std::string& label, core::ByteView value) -> core::Status {
        const auto start = std::chrono::steady_clock::now();
        store.put(label, std::string(core::as_chars(value)));
        created = label;
        // A slow token: the write returns only once the bound has passed.
        while (std::chrono::steady_clock::now() - start <= timing.write_bound) {
            std::this_thread::yield();
        }
        create_took = std::chrono::steady_clock::now() - start;
        return core::ok_status();
    };
    auto r = claim_in(s, "replica-a", timing);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::withdrawn);
    EXPECT_GT(create_took, timing.write_bound);
    EXPECT_EQ(store.removed(), std::vector<std::string>{created});
    EXPECT_TRUE(store.labels().empty());
    EXPECT_TRUE(store.waits().empty());
}

// ---- claim labels ----

TEST(ClaimLabel, NonceIsReadFromABareOrAuthoredClaim) {
    const std::string nonce = "0123456789abcdef0123456789abcdef";
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce), nonce);
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce + "/replica-a"), nonce);
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce + "/"), nonce);
}

TEST(ClaimLabel, MalformedLabelsAreNotClaims) {
    const std::string nonce = "0123456789abcdef0123456789abcdef";
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce.substr(1)), "");               // 31 hex
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce + "0"), "");                   // 33 hex
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + nonce + "x/replica"), "");           // no slash after
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + std::string(32, 'A')), "");          // uppercase
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix + std::string(31, '0') + "g"), "");    // not hex
    EXPECT_EQ(claim_nonce(kPrefix, "licentra/product-a/v3/claim/" + nonce), "");  // other prefix
    EXPECT_EQ(claim_nonce(kPrefix, nonce), "");
    EXPECT_EQ(claim_nonce(kPrefix, ""), "");
    EXPECT_EQ(claim_nonce(kPrefix, kPrefix), "");
}

TEST(ClaimLabel, LowestClaimIgnoresMalformedLabels) {
    const std::vector<std::string> labels = {
        kPrefix + std::string(32, 'b') + "/r1",
        kPrefix + std::string(32, '0') + "x",  // not a claim, though it would sort lowest
        kPrefix + std::string(32, 'A'),        // not a claim (uppercase)
        kPrefix + std::string(32, 'a'),
        kPrefix + std::string(32, 'c') + "/r0",
        "licentra/other/" + std::string(32, '0'),
    };
    EXPECT_EQ(lowest_claim(kPrefix, labels), std::string(32, 'a'));
}

TEST(ClaimLabel, LowestClaimOfNoClaimsIsEmpty) {
    EXPECT_EQ(lowest_claim(kPrefix, {}), "");
    EXPECT_EQ(lowest_claim(kPrefix, {kPrefix + std::string("short"), "unrelated"}), "");
}

}  // namespace
}  // namespace licentra::keys
