// Pruning while the log runs (AuditLog::prune_before, the daemon's audit.prune_after): it prunes
// exactly what the offline prune would, read_entries answers pruned entries at once, a second
// call changes nothing, appends and reads go on meanwhile, and the directory verifies after.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "audit/log.hpp"
#include "audit/prune.hpp"
#include "audit/pruned.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "pruned_log_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;
using testing::log_epoch;
using testing::snapshot;

core::TimePoint minutes(int m) { return log_epoch() + std::chrono::minutes(m); }

// Whether line is what read_entries must answer for entry index of log: its pruned line, or an
// entry with that seq hashing to its leaf.
bool reads_as_entry(const AuditLog& log, std::uint64_t index, const std::string& line) {
    auto leaf = log.leaf(index);
    if (!leaf) return false;
    if (line == pruned_entry_line(index, *leaf)) return true;
    auto entry = parse_entry(line);
    return entry.ok() && entry->seq == index && leaf_hash(core::as_bytes(line)) == *leaf;
}

class AuditLivePrune : public ::testing::Test {
  protected:
    // 50 entries in segments of 12 (the last, open one holds 48-49), a checkpoint every 10.
    void SetUp() override {
        testing::CraftedLog spec;
        spec.segments = {12, 12, 12, 12, 2};
        spec.checkpoints = {0, 10, 20, 30, 40, 50};
        lines_ = testing::write_crafted_log(dir(), spec, signer_);
    }
    fs::path dir() const { return tmp_.path() / "log"; }
    NoteVerifier verifier() {
        return *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
    }
    VerifyReport verify(const fs::path& d) {
        VerifyOptions o;
        o.dir = d;
        return verify_log_directory(o, verifier());
    }
    std::unique_ptr<AuditLog> open(LogOptions options) {
        auto log = AuditLog::open(std::move(options), {&signer_, &anchor_});
        EXPECT_TRUE(log.ok()) << log.error().to_string();
        return log.ok() ? std::move(log).value() : nullptr;
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    testing::MemoryAnchor anchor_;
    std::vector<std::string> lines_;
};

TEST_F(AuditLivePrune, PrunesWhatTheOfflinePruneWouldAndReadsPrunedEntriesAtOnce) {
    // The offline prune of a copy is the reference.
    const fs::path copy = tmp_.path() / "copy";
    fs::copy(dir(), copy);
    PruneOptions po;
    po.dir = copy;
    po.before = minutes(42);
    ASSERT_TRUE(prune_log_directory(po, verifier(), nullptr).ok());

    auto log = open(testing::test_options(dir()));
    ASSERT_NE(log, nullptr);
    auto r = log->prune_before(minutes(42));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->size, 50u);
    EXPECT_EQ(r->newest_checkpoint, 50u);
    EXPECT_EQ(r->limit, 48u);  // the open segment starts at 48
    EXPECT_EQ(r->newly_pruned, 42u);
    EXPECT_EQ(r->newly_pruned_ranges, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(r->pruned, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(r->rewritten, (std::vector<std::string>{"log-000000.jsonl", "log-000001.jsonl",
                                                      "log-000002.jsonl", "log-000003.jsonl"}));

    EXPECT_TRUE(log->pruned(0));
    EXPECT_TRUE(log->pruned(41));
    EXPECT_FALSE(log->pruned(42));
    auto all = log->read_entries(0, 50);
    ASSERT_TRUE(all.ok()) << all.error().to_string();
    for (std::uint64_t i = 0; i < 50; ++i) {
        const std::string want =
            i < 42 ? pruned_entry_line(i, leaf_hash(core::as_bytes(lines_[i]))) : lines_[i];
        EXPECT_EQ(all->at(i), want) << "entry " << i;
    }
    auto some = log->read_entries(40, 44);  // across a record and a kept entry of one segment
    ASSERT_TRUE(some.ok());
    EXPECT_EQ(some->at(1), pruned_entry_line(41, leaf_hash(core::as_bytes(lines_[41]))));
    EXPECT_EQ(some->at(2), lines_[42]);

    // The segments hold the same bytes as the offline prune's.
    auto live = snapshot(dir());
    auto offline = snapshot(copy);
    for (const std::string& name : r->rewritten) EXPECT_EQ(live[name], offline[name]) << name;

    // A second call changes nothing.
    auto again = log->prune_before(minutes(42));
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ(again->newly_pruned, 0u);
    EXPECT_TRUE(again->rewritten.empty());
    EXPECT_EQ(again->pruned, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(snapshot(dir()), live);

    // Appending goes on; the directory verifies and reopens with the same pruned entries.
    for (std::uint64_t i = 50; i < 53; ++i) ASSERT_TRUE(log->append(testing::sample_entry(i)).ok());
    ASSERT_TRUE(log->close().ok());
    log.reset();
    const VerifyReport v = verify(dir());
    ASSERT_EQ(v.status, VerifyStatus::verified) << v.finding->to_error().to_string();
    EXPECT_EQ(v.size, 53u);
    EXPECT_EQ(v.pruned, (std::vector<PrunedRange>{{0, 42}}));
    auto reopened = open(testing::test_options(dir()));
    ASSERT_NE(reopened, nullptr);
    EXPECT_TRUE(reopened->pruned(41));
    EXPECT_FALSE(reopened->pruned(42));
}

TEST_F(AuditLivePrune, AppendsAndReadsGoOnWhilePruningAndEverythingReadsAndVerifiesAfter) {
    LogOptions o = testing::test_options(dir());
    o.segment_max_bytes = 4096;  // a new segment every dozen entries or so
    o.checkpoint_every = 7;
    o.max_batch = 8;
    auto log = open(o);
    ASSERT_NE(log, nullptr);

    constexpr std::uint64_t kPerAppender = 150;
    std::atomic<int> appenders_running{2};
    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> reads{0};
    auto appender = [&](std::uint64_t base) {
        for (std::uint64_t i = 0; i < kPerAppender; ++i) {
            if (!log->append(testing::sample_entry(base + i)).ok()) failed = true;
        }
        --appenders_running;
    };
    // Every read while the segments are rewritten answers each entry as itself or as pruned.
    auto reader = [&] {
        do {
            const std::uint64_t size = log->size();
            const std::uint64_t start = size > 200 ? size - 200 : 0;
            for (std::uint64_t from : {std::uint64_t{0}, start}) {
                auto read = log->read_entries(from, std::min(size, from + 200));
                if (!read) {
                    failed = true;
                    continue;
                }
                for (std::size_t k = 0; k < read->size(); ++k) {
                    if (!reads_as_entry(*log, from + k, (*read)[k])) failed = true;
                }
            }
            ++reads;
        } while (appenders_running.load() > 0);
    };
    std::uint64_t pruned_while_appending = 0;
    std::uint64_t prunes = 0;
    std::thread a1(appender, 1000);
    std::thread a2(appender, 2000);
    std::thread r1(reader);
    // Everything written so far is older than this; the log keeps appending newer entries.
    do {
        auto r = log->prune_before(core::Clock::now());
        if (!r) {
            ADD_FAILURE() << r.error().to_string();  // the threads are joined below
            break;
        }
        pruned_while_appending += r->newly_pruned;
        ++prunes;
    } while (appenders_running.load() > 0);
    a1.join();
    a2.join();
    r1.join();
    EXPECT_FALSE(failed.load());
    EXPECT_GT(prunes, 0u);
    EXPECT_GE(pruned_while_appending, 48u);  // the crafted entries 0-47 went at the first call
    EXPECT_GT(reads.load(), 0u);

    // Once everything is signed and sealed but the open segment, one more call prunes the rest.
    ASSERT_TRUE(log->checkpoint_now().ok());
    auto last = log->prune_before(core::Clock::now());
    ASSERT_TRUE(last.ok()) << last.error().to_string();
    const std::uint64_t size = log->size();
    EXPECT_EQ(size, 50 + 2 * kPerAppender);
    ASSERT_EQ(last->pruned.size(), 1u);
    EXPECT_EQ(last->pruned[0].first, 0u);
    EXPECT_EQ(last->pruned[0].count, last->limit);  // every entry below the limit
    EXPECT_GT(last->limit, 50u);                    // segments sealed while appending
    EXPECT_EQ(pruned_while_appending + last->newly_pruned, last->limit);
    for (std::uint64_t i = 0; i < size; ++i) {
        EXPECT_EQ(log->pruned(i), i < last->limit) << "entry " << i;
    }
    auto all = log->read_entries(0, size);
    ASSERT_TRUE(all.ok()) << all.error().to_string();
    for (std::uint64_t i = 0; i < size; ++i) {
        EXPECT_TRUE(reads_as_entry(*log, i, all->at(i))) << "entry " << i;
    }
    auto again = log->prune_before(core::Clock::now());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->newly_pruned, 0u);
    EXPECT_TRUE(again->rewritten.empty());

    ASSERT_TRUE(log->close().ok());
    log.reset();
    const VerifyReport v = verify(dir());
    ASSERT_EQ(v.status, VerifyStatus::verified) << v.finding->to_error().to_string();
    EXPECT_EQ(v.size, size);
    EXPECT_EQ(v.pruned, last->pruned);
}

TEST_F(AuditLivePrune, AnEntryChangedOnDiskSinceOpenIsNotPrunedIntoARecord) {
    auto log = open(testing::test_options(dir()));
    ASSERT_NE(log, nullptr);
    // Entry 13 (segment 1) rewritten as another canonical entry with the same seq and time.
    Entry e = *parse_entry(lines_[13]);
    e.request_id = "req-forged";
    auto lines = testing::read_lines(dir() / "log-000001.jsonl");
    lines[1] = *serialize_entry(e);
    testing::write_lines(dir() / "log-000001.jsonl", lines);

    auto r = log->prune_before(minutes(42));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(r.error().code, "audit.entry_changed");
    EXPECT_NE(r.error().message.find("entry 13"), std::string::npos) << r.error().message;
    // Segment 0 was pruned before the scan reached segment 1; segment 1 stays as it was.
    EXPECT_TRUE(log->pruned(11));
    EXPECT_FALSE(log->pruned(12));
    EXPECT_FALSE(fs::exists(dir() / ("log-000001.jsonl" + std::string(kPruneTempSuffix))));
}

TEST_F(AuditLivePrune, OpenRemovesTheTemporaryFileOfAnInterruptedPrune) {
    // A prune_before killed after writing half of segment 1's replacement, before the rename.
    const std::string tmp_name = "log-000001.jsonl" + std::string(kPruneTempSuffix);
    test::write_file(dir() / tmp_name, "{\"pruned\":{\"cou");
    auto log = open(testing::test_options(dir()));
    ASSERT_NE(log, nullptr);
    EXPECT_FALSE(fs::exists(dir() / tmp_name));
    EXPECT_EQ(log->size(), 50u);
    auto r = log->prune_before(minutes(42));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->newly_pruned, 42u);
    ASSERT_TRUE(log->close().ok());
    log.reset();
    EXPECT_EQ(verify(dir()).status, VerifyStatus::verified);
}

}  // namespace
}  // namespace licentra::audit
