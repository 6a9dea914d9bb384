#include "keys/claim.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
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
                                    const std::function<core::Result<bool>()>& pre_check = {},
                                    ClaimReport* report = nullptr) {
    static const std::string kValue = R"({"by":"replica"})";
    return claim(storage, kPrefix, author, core::as_bytes(kValue), timing, pre_check, report);
}

// ---- claim() ----

TEST(Claim, LoneClaimerWinsAndLeavesItsClaim) {
    MemoryStore store;
    const ClaimTiming timing{100ms, 250ms};
    ClaimReport report;
    auto r = claim_in(store.storage(), "", timing, {}, &report);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::won);
    const auto objects = store.objects();
    ASSERT_EQ(objects.size(), 1u);
    const std::string& label = objects.begin()->first;
    EXPECT_EQ(report.claimed, label);  // what the winner releases once it is done
    EXPECT_LE(report.step, timing.write_bound);
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

// store's storage, appending the label of every claim it creates to *created.
ClaimStorage recording(MemoryStore& store, std::vector<std::string>* created) {
    ClaimStorage s = store.storage();
    s.create = [&store, created](const std::string& label, core::ByteView value) -> core::Status {
        created->push_back(label);
        store.put(label, std::string(core::as_chars(value)));
        return core::ok_status();
    };
    return s;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// A rival replica's claim appears during the settle wait (it checked before this claimer wrote,
// so neither saw the other at its check). The claimer sees a claim that is not its own: it
// stands back and removes its claim, whatever the two nonces. The rival's claim is the rival's
// own business.
void expect_rival_written_during_settle_makes_the_claimer_lose(const std::string& rival_nonce) {
    MemoryStore store;
    std::vector<std::string> created;
    ClaimStorage s = recording(store, &created);
    const std::string rival = kPrefix + rival_nonce + "/replica-b";
    s.wait = [&](std::chrono::milliseconds) { store.put(rival, "{}"); };
    auto r = claim_in(s, "replica-a");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::lost);
    ASSERT_EQ(created.size(), 1u);
    EXPECT_TRUE(created[0].ends_with("/replica-a"));
    EXPECT_EQ(store.removed(), created);
    EXPECT_EQ(store.labels(), std::vector<std::string>{rival});
}

TEST(Claim, RivalClaimWithALowerNonceWrittenDuringSettleMakesTheClaimerLoseAndRemoveItsClaim) {
    expect_rival_written_during_settle_makes_the_claimer_lose(kLowNonce);
}

TEST(Claim, RivalClaimWithAHigherNonceWrittenDuringSettleMakesTheClaimerLoseAndRemoveItsClaim) {
    expect_rival_written_during_settle_makes_the_claimer_lose(kHighNonce);
}

// Two claimers that both pass their check before either writes, the second one's whole claim
// running inside the first one's settle wait. The second sees both claims after its settle: it
// stands back and removes its claim. The first then sees only its own claim and wins.
TEST(Claim, InterleavedClaimerThatSeesOnlyItsOwnClaimWins) {
    for (int round = 0; round < 50; ++round) {
        MemoryStore store;
        std::vector<std::string> first_created;
        std::vector<std::string> second_created;
        ClaimStorage first = recording(store, &first_created);
        ClaimStorage second = recording(store, &second_created);
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

        EXPECT_EQ(*first_result, ClaimOutcome::won) << "round " << round;
        EXPECT_EQ(**second_result, ClaimOutcome::lost) << "round " << round;
        ASSERT_EQ(first_created.size(), 1u);
        ASSERT_EQ(second_created.size(), 1u);
        EXPECT_EQ(store.labels(), first_created) << "round " << round;
        EXPECT_EQ(store.removed(), second_created) << "round " << round;
        // Only the second claimer waited on the store's clock (the first one's wait ran it).
        EXPECT_EQ(store.waits(), std::vector<std::chrono::milliseconds>{kRelaxed.settle});
    }
}

// Two claimers on real threads that check before either writes, write before either reads the
// claims back, and read them back before either removes anything: each sees the other's claim,
// both stand back, and no claim is left behind.
TEST(Claim, InterleavedClaimersThatSeeEachOtherBothLoseAndLeaveNoClaim) {
    for (int round = 0; round < 50; ++round) {
        MemoryStore store;
        std::barrier checked(2);
        std::barrier written(2);
        std::barrier listed(2);
        std::array<std::vector<std::string>, 2> created;
        std::array<std::optional<core::Result<ClaimOutcome>>, 2> results;
        {
            std::vector<std::jthread> threads;
            for (std::size_t i = 0; i < results.size(); ++i) {
                threads.emplace_back([&, i] {
                    ClaimStorage s = recording(store, &created[i]);
                    const ClaimStorage plain = store.storage();
                    int lists = 0;
                    s.list = [&](const std::string& prefix) {
                        auto labels = plain.list(prefix);
                        // The second list is the one after the settle.
                        if (++lists == 2) listed.arrive_and_wait();
                        return labels;
                    };
                    s.wait = [&](std::chrono::milliseconds) { written.arrive_and_wait(); };
                    results[i].emplace(
                        claim_in(s, "r" + std::to_string(i), kRelaxed, [&]() -> core::Result<bool> {
                            checked.arrive_and_wait();
                            return true;
                        }));
                });
            }
        }
        std::vector<std::string> all;
        for (std::size_t i = 0; i < results.size(); ++i) {
            ASSERT_TRUE(results[i].has_value());
            ASSERT_TRUE(results[i]->ok()) << results[i]->error().to_string();
            EXPECT_EQ(**results[i], ClaimOutcome::lost) << "round " << round << " claimer " << i;
            ASSERT_EQ(created[i].size(), 1u);
            all.push_back(created[i][0]);
        }
        EXPECT_TRUE(store.labels().empty()) << "round " << round;
        EXPECT_EQ(sorted(store.removed()), sorted(all)) << "round " << round;
    }
}

// A module whose per-process view missed a write that raced the process's own write
// (docs/adr/0004): replica-a's listings never show replica-b's claim. The two race as above
// (check, write and read back in step, nobody removing before both have read back). replica-a
// sees only its own claim and wins; replica-b sees both and stands back, so there is still only
// one winner. (Under "lowest nonce wins", replica-b would also win whenever its nonce was lower.)
TEST(Claim, ClaimerBlindToARacingClaimStillLeavesAtMostOneWinner) {
    for (int round = 0; round < 50; ++round) {
        MemoryStore store;
        std::barrier checked(2);
        std::barrier written(2);
        std::barrier listed(2);
        const std::array<std::string, 2> authors = {"replica-a", "replica-b"};
        std::array<std::vector<std::string>, 2> created;
        std::array<std::optional<core::Result<ClaimOutcome>>, 2> results;
        int hidden_after_settle = 0;  // replica-a's thread only
        {
            std::vector<std::jthread> threads;
            for (std::size_t i = 0; i < results.size(); ++i) {
                threads.emplace_back([&, i] {
                    ClaimStorage s = recording(store, &created[i]);
                    const ClaimStorage plain = store.storage();
                    int lists = 0;
                    s.list =
                        [&](const std::string& prefix) -> core::Result<std::vector<std::string>> {
                        auto labels = plain.list(prefix);
                        if (!labels) return labels;
                        ++lists;
                        if (i == 0) {
                            const auto n = std::erase_if(*labels, [](const std::string& l) {
                                return l.ends_with("/replica-b");
                            });
                            if (lists == 2) hidden_after_settle += static_cast<int>(n);
                        }
                        if (lists == 2) listed.arrive_and_wait();
                        return labels;
                    };
                    s.wait = [&](std::chrono::milliseconds) { written.arrive_and_wait(); };
                    results[i].emplace(
                        claim_in(s, authors[i], kRelaxed, [&]() -> core::Result<bool> {
                            checked.arrive_and_wait();
                            return true;
                        }));
                });
            }
        }
        for (std::size_t i = 0; i < results.size(); ++i) {
            ASSERT_TRUE(results[i].has_value());
            ASSERT_TRUE(results[i]->ok()) << results[i]->error().to_string();
            ASSERT_EQ(created[i].size(), 1u);
        }
        // replica-a really missed replica-b's claim when it read back.
        EXPECT_EQ(hidden_after_settle, 1) << "round " << round;
        EXPECT_EQ(**results[0], ClaimOutcome::won) << "round " << round;
        EXPECT_EQ(**results[1], ClaimOutcome::lost) << "round " << round;
        EXPECT_EQ(store.labels(), created[0]) << "round " << round;
        EXPECT_EQ(store.removed(), created[1]) << "round " << round;
    }
}

// N replicas on real threads. The pre-check barrier holds every claimer between its check and
// its write until all have checked (nobody sees another's claim at its check); the settle
// barrier holds every claimer until all have written, so every claimer reads back after every
// claim exists. An early reader sees the others' claims and stands back; a later one may find
// them already removed and win. So at most one wins, and no loser leaves its claim behind.
void race_once(std::ptrdiff_t claimers, int rounds) {
    const auto n = static_cast<std::size_t>(claimers);
    for (int round = 0; round < rounds; ++round) {
        MemoryStore store;
        std::barrier checked(claimers);
        std::barrier written(claimers);
        std::vector<std::vector<std::string>> created(n);
        std::vector<std::optional<core::Result<ClaimOutcome>>> results(n);
        {
            std::vector<std::jthread> threads;
            for (std::size_t i = 0; i < n; ++i) {
                threads.emplace_back([&, i] {
                    ClaimStorage s = recording(store, &created[i]);
                    s.wait = [&](std::chrono::milliseconds) { written.arrive_and_wait(); };
                    results[i].emplace(
                        claim_in(s, "r" + std::to_string(i), kRelaxed, [&]() -> core::Result<bool> {
                            checked.arrive_and_wait();
                            return true;
                        }));
                });
            }
        }
        std::vector<std::string> winners;
        std::vector<std::string> losers;
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_TRUE(results[i].has_value());
            ASSERT_TRUE(results[i]->ok()) << results[i]->error().to_string();
            ASSERT_EQ(created[i].size(), 1u) << "round " << round << " claimer " << i;
            if (**results[i] == ClaimOutcome::won) {
                winners.push_back(created[i][0]);
            } else {
                EXPECT_EQ(**results[i], ClaimOutcome::lost)
                    << "round " << round << " claimer " << i;
                losers.push_back(created[i][0]);
            }
        }
        EXPECT_LE(winners.size(), 1u) << "round " << round;
        // Only a winner's claim is left; every loser removed its own.
        EXPECT_EQ(store.labels(), winners) << "round " << round;
        EXPECT_EQ(sorted(store.removed()), sorted(losers)) << "round " << round;
    }
}

TEST(Claim, TwoConcurrentClaimersProduceAtMostOneWinnerPerRound) { race_once(2, 200); }

TEST(Claim, ThreeConcurrentClaimersProduceAtMostOneWinnerPerRound) { race_once(3, 200); }

// Simulated monotonic time for claimers on real threads. wait(d) blocks until every other
// thread is waiting too (or has finished) and no other waiter is due earlier, then moves the
// clock to its deadline; ties go to the lower thread index. The steps between waits take no
// simulated time.
class SimulatedClock {
  public:
    explicit SimulatedClock(std::size_t threads) : running_(threads) {}

    void wait(std::size_t thread, std::chrono::milliseconds d) {
        std::unique_lock lock(mutex_);
        const std::pair<std::chrono::milliseconds, std::size_t> due{now_ + d, thread};
        waiting_.insert(due);
        --running_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return running_ == 0 && *waiting_.begin() == due; });
        waiting_.erase(waiting_.begin());
        now_ = due.first;
        ++running_;
    }

    void finish() {
        std::lock_guard lock(mutex_);
        --running_;
        changed_.notify_all();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::chrono::milliseconds now_{0};
    std::size_t running_;
    std::set<std::pair<std::chrono::milliseconds, std::size_t>> waiting_;
};

// The race above, then what callers do with a lost claim: retry after retry_delay, at most
// kRetries times and only while nobody has won. retry_delay is replaced by a deterministic
// stagger taken through the injected wait (claimer i retries i/N of the settle later), and the
// retries' settle waits run on the same simulated clock. In even rounds the claimers also read
// back in step (nobody removes before all have read back), so all of them lose the first
// attempt; in odd rounds one may already win it. Every round ends with exactly one winner whose
// claim is the only one left.
void race_with_retries(std::ptrdiff_t claimers, int rounds) {
    constexpr int kRetries = 5;
    const auto n = static_cast<std::size_t>(claimers);
    for (int round = 0; round < rounds; ++round) {
        MemoryStore store;
        std::barrier checked(claimers);
        std::barrier written(claimers);
        std::barrier listed(claimers);
        const bool in_step = round % 2 == 0;
        SimulatedClock clock(n);
        std::atomic<bool> someone_won{false};
        std::vector<std::vector<std::string>> created(n);
        std::vector<std::optional<core::Result<ClaimOutcome>>> first(n);
        std::vector<std::optional<core::Result<ClaimOutcome>>> last(n);
        {
            std::vector<std::jthread> threads;
            for (std::size_t i = 0; i < n; ++i) {
                threads.emplace_back([&, i] {
                    const std::string author = "r" + std::to_string(i);
                    ClaimStorage contended = recording(store, &created[i]);
                    contended.wait = [&](std::chrono::milliseconds) { written.arrive_and_wait(); };
                    const ClaimStorage plain = store.storage();
                    int lists = 0;
                    contended.list = [&](const std::string& prefix) {
                        auto labels = plain.list(prefix);
                        if (++lists == 2 && in_step) listed.arrive_and_wait();
                        return labels;
                    };
                    auto r = claim_in(contended, author, kRelaxed, [&]() -> core::Result<bool> {
                        checked.arrive_and_wait();
                        return true;
                    });
                    first[i].emplace(r);
                    ClaimStorage retrying = recording(store, &created[i]);
                    retrying.wait = [&](std::chrono::milliseconds d) { clock.wait(i, d); };
                    const std::chrono::milliseconds stagger{kRelaxed.settle.count() *
                                                            static_cast<long>(i) / claimers};
                    for (int retry = 0; retry < kRetries && r.ok() && *r != ClaimOutcome::won;
                         ++retry) {
                        retrying.wait(stagger);
                        if (someone_won) break;
                        r = claim_in(retrying, author);
                    }
                    if (r.ok() && *r == ClaimOutcome::won) someone_won = true;
                    last[i].emplace(std::move(r));
                    clock.finish();
                });
            }
        }
        bool won_at_first = false;
        std::size_t winner = n;
        int won = 0;
        std::vector<std::string> all;
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_TRUE(first[i].has_value());
            ASSERT_TRUE(first[i]->ok()) << first[i]->error().to_string();
            ASSERT_TRUE(last[i].has_value());
            ASSERT_TRUE(last[i]->ok()) << last[i]->error().to_string();
            won_at_first |= **first[i] == ClaimOutcome::won;
            if (**last[i] == ClaimOutcome::won) {
                ++won;
                winner = i;
            } else {
                EXPECT_EQ(**last[i], ClaimOutcome::lost) << "round " << round << " claimer " << i;
            }
            all.insert(all.end(), created[i].begin(), created[i].end());
        }
        ASSERT_EQ(won, 1) << "round " << round;
        if (in_step) {
            EXPECT_FALSE(won_at_first) << "round " << round;
        }
        if (!won_at_first) {
            // Everybody stood back at first; the claimer with no stagger retried alone and won,
            // and the others, retrying inside its settle, saw its claim and wrote nothing.
            EXPECT_EQ(winner, 0u) << "round " << round;
            EXPECT_EQ(all.size(), n + 1) << "round " << round;
        } else {
            EXPECT_EQ(all.size(), n) << "round " << round;
        }
        // The winner's last claim is the only one left; every other claim was removed.
        const std::string winning = created[winner].back();
        EXPECT_EQ(store.labels(), std::vector<std::string>{winning}) << "round " << round;
        std::erase(all, winning);
        EXPECT_EQ(sorted(store.removed()), sorted(all)) << "round " << round;
    }
}

TEST(Claim, TwoConcurrentClaimersRetryingAfterAStaggeredDelayProduceExactlyOneWinnerPerRound) {
    race_with_retries(2, 200);
}

TEST(Claim, ThreeConcurrentClaimersRetryingAfterAStaggeredDelayProduceExactlyOneWinnerPerRound) {
    race_with_retries(3, 200);
}

TEST(Claim, RetryDelayStaysAtOrAboveZeroAndBelowTheSettle) {
    const ClaimTiming timing{100ms, 250ms};
    std::set<std::chrono::milliseconds> seen;
    for (int i = 0; i < 1000; ++i) {
        const auto d = retry_delay(timing);
        EXPECT_GE(d, 0ms);
        EXPECT_LT(d, timing.settle);
        seen.insert(d);
    }
    // Random, so that replicas that contended retry at different times.
    EXPECT_GT(seen.size(), 1u);
    // A settle of 1 ms leaves only zero.
    for (int i = 0; i < 100; ++i) EXPECT_EQ(retry_delay(ClaimTiming{0ms, 1ms}), 0ms);
}

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
    ClaimReport report;
    auto r = claim_in(s, "replica-a", timing, {}, &report);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*r, ClaimOutcome::withdrawn);
    EXPECT_GT(create_took, timing.write_bound);
    // The report says how long the step took (for the caller's log) and names no claim.
    EXPECT_GT(report.step, timing.write_bound);
    EXPECT_EQ(report.claimed, "");
    EXPECT_EQ(store.removed(), std::vector<std::string>{created});
    EXPECT_TRUE(store.labels().empty());
    EXPECT_TRUE(store.waits().empty());
}

TEST(Claim, AWithdrawnClaimIsDescribedWithItsStepAndTheBound) {
    ClaimReport report;
    report.step = 612ms;
    EXPECT_EQ(withdrawn_note(report, ClaimTiming{500ms, 1000ms}),
              "took 612 ms, longer than cluster.claim_write_bound (500 ms); withdrawn");
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
