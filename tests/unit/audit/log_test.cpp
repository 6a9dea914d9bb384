#include "audit/log.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;
using testing::checkpoint_reaches;
using testing::eventually;
using testing::read_lines;
using testing::sample_entry;
using testing::test_options;
using testing::write_lines;

VerifyReport verify_dir(const fs::path& dir, const NoteVerifier& v,
                        std::optional<std::string> trusted = std::nullopt) {
    VerifyOptions o;
    o.dir = dir;
    o.trusted_checkpoint = std::move(trusted);
    return verify_log_directory(o, v);
}

class AuditLogTest : public ::testing::Test {
  protected:
    core::Result<std::unique_ptr<AuditLog>> open(LogOptions o, FileOps* ops = nullptr) {
        return AuditLog::open(std::move(o), {&signer_, &anchor_, ops});
    }
    LogOptions options() { return test_options(tmp_.path() / "log"); }
    fs::path dir() const { return tmp_.path() / "log"; }
    NoteVerifier verifier() {
        return *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    testing::MemoryAnchor anchor_;
};

TEST_F(AuditLogTest, AppendReturnsIndexAndLeafHashAndSurvivesReopen) {
    auto log = open(options());
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    EXPECT_TRUE((*log)->healthy());
    EXPECT_EQ((*log)->size(), 0u);
    for (std::uint64_t i = 0; i < 5; ++i) {
        auto r = (*log)->append(sample_entry(i));
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        EXPECT_EQ(r->index, i);
        auto lines = (*log)->read_entries(i, i + 1);
        ASSERT_TRUE(lines.ok());
        EXPECT_EQ(r->leaf_hash, leaf_hash(core::as_bytes(lines->at(0))));
        auto parsed = parse_entry(lines->at(0));
        ASSERT_TRUE(parsed.ok());
        EXPECT_EQ(parsed->seq, i);
        EXPECT_EQ(parsed->request_id, "req-" + std::to_string(i));
    }
    const Hash root = (*log)->root();
    EXPECT_EQ(root, *(*log)->root(5));
    ASSERT_TRUE((*log)->close().ok());
    EXPECT_EQ((*log)->state(), LogState::closed);
    EXPECT_EQ((*log)->append(sample_entry(9)).error().code, "audit.log_closed");
    log->reset();

    auto again = open(options());
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ((*again)->size(), 5u);
    EXPECT_EQ((*again)->root(), root);
    EXPECT_FALSE((*again)->recovery().torn_log.has_value());
    EXPECT_EQ((*again)->recovery().anchored_size, 5u);
    EXPECT_EQ((*again)->append(sample_entry(5))->index, 5u);
}

TEST_F(AuditLogTest, MetricsCountBatchesSyncsAndTheCheckpointLag) {
    auto o = options();
    o.checkpoint_every = 1000;
    o.checkpoint_interval = std::chrono::hours(1);
    const auto before_open = core::unix_millis(core::Clock::now());
    auto log = open(o);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    const auto& m = (*log)->metrics();
    // open() signed the checkpoint of the empty log.
    EXPECT_GE(m.checkpoint_unix_ms.load(), before_open);
    EXPECT_EQ((*log)->checkpoint_size(), 0u);
    for (std::uint64_t i = 0; i < 3; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    // Synchronous appends one after another: one batch of one entry each.
    const auto batches = m.batch_entries.snapshot();
    EXPECT_EQ(batches.count, 3u);
    EXPECT_DOUBLE_EQ(batches.sum, 3.0);
    EXPECT_EQ(batches.cumulative.at(0), 3u);  // le="1"
    EXPECT_EQ(m.sync_seconds.snapshot().count, 3u);
    EXPECT_EQ((*log)->size() - (*log)->checkpoint_size(), 3u);  // unsigned entries
    const auto before_checkpoint = core::unix_millis(core::Clock::now());
    ASSERT_TRUE((*log)->checkpoint_now().ok());
    EXPECT_EQ((*log)->checkpoint_size(), 3u);
    EXPECT_GE(m.checkpoint_unix_ms.load(), before_checkpoint);
    ASSERT_TRUE((*log)->close().ok());
    log->reset();

    // Reopened: the newest checkpoint's time is the checkpoints file's modification time.
    const auto mtime = std::filesystem::last_write_time(dir() / "checkpoints");
    auto again = open(o);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ((*again)->checkpoint_size(), 3u);
    const auto expected = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                              .count();
    EXPECT_EQ((*again)->metrics().checkpoint_unix_ms.load(), expected);
}

TEST_F(AuditLogTest, RejectsInvalidEntriesWithoutConsumingAnIndex) {
    auto log = open(options());
    ASSERT_TRUE(log.ok());
    Entry bad = sample_entry(0);
    bad.reason = "free text with spaces";
    auto r = (*log)->append(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::usage);
    EXPECT_EQ((*log)->append(sample_entry(1))->index, 0u);
    EXPECT_TRUE((*log)->healthy());
}

TEST_F(AuditLogTest, ConcurrentAppendersGetDistinctDurableIndexes) {
    auto log = open(options());
    ASSERT_TRUE(log.ok());
    constexpr int kThreads = 8;
    constexpr int kEach = 150;
    std::vector<std::vector<std::uint64_t>> got(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto r = (*log)->append(sample_entry(static_cast<std::uint64_t>(t * 1000 + i)));
                ASSERT_TRUE(r.ok());
                got[static_cast<std::size_t>(t)].push_back(r->index);
            }
        });
    }
    for (auto& t : threads) t.join();
    std::set<std::uint64_t> all;
    for (const auto& v : got) {
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));  // one thread's appends stay in order
        all.insert(v.begin(), v.end());
    }
    EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
    EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kEach - 1));
    // The root equals the root recomputed from the bytes on disk.
    auto lines = (*log)->read_entries(0, (*log)->size());
    ASSERT_TRUE(lines.ok());
    CompactRange range;
    for (const auto& l : *lines) range.append(leaf_hash(core::as_bytes(l)));
    EXPECT_EQ(range.root(), (*log)->root());
}

TEST_F(AuditLogTest, ManyConcurrentSyncAndAsyncAppendersAreContiguousAndSurviveReopen) {
    auto o = options();
    o.checkpoint_every = 37;      // checkpoints while appends are in flight
    o.segment_max_bytes = 16384;  // segment rolls while appends are in flight
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    constexpr int kThreads = 48;
    constexpr int kEach = 25;
    std::vector<std::vector<Appended>> got(kThreads);
    std::mutex async_mu;
    std::vector<Appended> async_got;
    std::atomic<int> async_done{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                const auto n = static_cast<std::uint64_t>(t * 1000 + i);
                if (t % 4 == 3) {
                    (*log)->append_async(sample_entry(n), [&](core::Result<Appended> r) {
                        EXPECT_TRUE(r.ok());
                        if (r.ok()) {
                            std::lock_guard lk(async_mu);
                            async_got.push_back(*r);
                        }
                        ++async_done;
                    });
                } else {
                    auto r = (*log)->append(sample_entry(n));
                    ASSERT_TRUE(r.ok());
                    got[static_cast<std::size_t>(t)].push_back(*r);
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE((*log)->close().ok());
    log->reset();  // releases the directory lock
    EXPECT_EQ(async_done.load(), (kThreads / 4) * kEach);

    std::vector<Appended> all = async_got;
    for (const auto& v : got) {
        for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1].index, v[i].index);
        all.insert(all.end(), v.begin(), v.end());
    }
    constexpr auto kTotal = static_cast<std::size_t>(kThreads * kEach);
    ASSERT_EQ(all.size(), kTotal);
    std::sort(all.begin(), all.end(),
              [](const Appended& a, const Appended& b) { return a.index < b.index; });
    for (std::size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].index, i);  // distinct, no gap

    // After reopening, every acknowledged entry is there, at its index, with its leaf hash,
    // and the lines are in seq order in the files.
    auto again = open(o);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    ASSERT_EQ((*again)->size(), kTotal);
    auto lines = (*again)->read_entries(0, kTotal);
    ASSERT_TRUE(lines.ok());
    for (std::size_t i = 0; i < kTotal; ++i) {
        EXPECT_EQ(*(*again)->leaf(i), all[i].leaf_hash);
        EXPECT_EQ(leaf_hash(core::as_bytes((*lines)[i])), all[i].leaf_hash);
        auto e = parse_entry((*lines)[i]);
        ASSERT_TRUE(e.ok());
        EXPECT_EQ(e->seq, i);
        if (i > 0) {
            EXPECT_LE(parse_entry((*lines)[i - 1])->time, e->time);
        }
    }
    ASSERT_TRUE((*again)->close().ok());
    EXPECT_EQ(verify_dir(dir(), verifier()).status, VerifyStatus::verified);
}

TEST_F(AuditLogTest, AsyncAppendCompletesEveryCallbackOnce) {
    auto log = open(options());
    ASSERT_TRUE(log.ok());
    std::atomic<int> done{0};
    std::atomic<int> ok{0};
    for (int i = 0; i < 200; ++i) {
        (*log)->append_async(sample_entry(static_cast<std::uint64_t>(i)),
                             [&](core::Result<Appended> r) {
                                 if (r.ok()) ++ok;
                                 ++done;
                             });
    }
    Entry bad = sample_entry(0);
    bad.principal.clear();
    (*log)->append_async(bad, [&](core::Result<Appended> r) {
        EXPECT_FALSE(r.ok());
        ++done;
    });
    ASSERT_TRUE((*log)->close().ok());  // close drains the queue
    EXPECT_EQ(done.load(), 201);
    EXPECT_EQ(ok.load(), 200);
}

TEST_F(AuditLogTest, SignsCheckpointsEveryNEntriesWhenIdleAndAtClose) {
    auto o = options();
    o.checkpoint_every = 10;
    o.checkpoint_interval = std::chrono::milliseconds(150);
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    const NoteVerifier v = verifier();
    EXPECT_EQ(v.open_checkpoint((*log)->latest_checkpoint())->size, 0u);  // signed at open
    // The checkpoint thread signs once 10 entries wait, after the appends were answered.
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ASSERT_TRUE(checkpoint_reaches(**log, 10));
    for (int i = 10; i < 20; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ASSERT_TRUE(checkpoint_reaches(**log, 20));
    for (int i = 20; i < 25; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    // Idle: the interval deadline signs the remaining 5 without further appends.
    ASSERT_TRUE(checkpoint_reaches(**log, 25));
    auto cp = v.open_checkpoint((*log)->latest_checkpoint());
    EXPECT_EQ(cp->size, 25u);
    EXPECT_EQ(cp->root, (*log)->root());
    EXPECT_EQ(anchor_.note(), (*log)->latest_checkpoint());
    ASSERT_TRUE((*log)->append(sample_entry(99)).ok());
    ASSERT_TRUE((*log)->close().ok());
    EXPECT_EQ(v.open_checkpoint(*anchor_.note())->size, 26u);  // at clean shutdown

    const VerifyReport report = verify_dir(dir(), v);
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.checkpoints, 5u);  // 0, 10, 20, 25, 26
    EXPECT_EQ(report.size, 26u);
}

TEST_F(AuditLogTest, AHungCheckpointSignatureHoldsUpNoAppend) {
    auto o = options();
    o.checkpoint_every = 2;
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    const NoteVerifier v = verifier();
    signer_.hold = true;
    for (int i = 0; i < 2; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ASSERT_TRUE(eventually([&] { return signer_.held.load() == 1; }));  // signing 2 entries
    // Every append is answered, durable, while the checkpoint signature hangs.
    for (std::uint64_t i = 2; i < 7; ++i) {
        auto appended = (*log)->append(sample_entry(static_cast<int>(i)));
        ASSERT_TRUE(appended.ok());
        EXPECT_EQ(appended->index, i);
    }
    EXPECT_EQ((*log)->size(), 7u);
    EXPECT_EQ(v.open_checkpoint((*log)->latest_checkpoint())->size, 0u);
    signer_.release();
    // The held checkpoint is stored, then one for the entries appended meanwhile.
    ASSERT_TRUE(checkpoint_reaches(**log, 7));
    EXPECT_EQ(signer_.calls.load(), 3);  // at open (0), 2, 7
    ASSERT_TRUE((*log)->close().ok());
    const VerifyReport report = verify_dir(dir(), v);
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.checkpoints, 3u);
}

TEST_F(AuditLogTest, EntriesAppendedWhileACheckpointIsSignedGetTheIntervalDeadline) {
    auto o = options();
    o.checkpoint_every = 1000;
    o.checkpoint_interval = std::chrono::milliseconds(100);
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    signer_.hold = true;
    ASSERT_TRUE((*log)->append(sample_entry(0)).ok());
    ASSERT_TRUE(eventually([&] { return signer_.held.load() == 1; }));  // the deadline of entry 0
    ASSERT_TRUE((*log)->append(sample_entry(1)).ok());
    ASSERT_TRUE((*log)->append(sample_entry(2)).ok());
    signer_.release();
    // No further append and no close: the deadline of entries 1 and 2 signs them.
    ASSERT_TRUE(checkpoint_reaches(**log, 3));
    EXPECT_EQ(signer_.calls.load(), 3);  // at open (0), 1, 3
}

TEST_F(AuditLogTest, CheckpointNowSignsImmediately) {
    auto o = options();
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ASSERT_TRUE((*log)->checkpoint_now().ok());
    EXPECT_EQ(verifier().open_checkpoint((*log)->latest_checkpoint())->size, 3u);
}

TEST_F(AuditLogTest, SigningFailureKeepsAppendingAndIsReported) {
    auto o = options();
    o.checkpoint_every = 2;
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    signer_.fail = true;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ASSERT_TRUE(eventually([&] { return (*log)->checkpoint_error().has_value(); }));
    EXPECT_TRUE((*log)->healthy());
    signer_.fail = false;
    ASSERT_TRUE((*log)->checkpoint_now().ok());
    EXPECT_FALSE((*log)->checkpoint_error().has_value());
    EXPECT_EQ(verifier().open_checkpoint((*log)->latest_checkpoint())->size, 3u);
}

TEST_F(AuditLogTest, ProofsFromTheLogVerifyAgainstSignedCheckpoints) {
    auto o = options();
    o.checkpoint_every = 7;
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    std::vector<Appended> appended;
    for (int i = 0; i < 30; ++i) appended.push_back(*(*log)->append(sample_entry(i)));
    const NoteVerifier v = verifier();
    const Checkpoint cp = *v.open_checkpoint((*log)->latest_checkpoint());
    ASSERT_EQ(cp.size, 28u);
    for (std::uint64_t i = 0; i < cp.size; ++i) {
        auto proof = (*log)->inclusion_proof(i, cp.size);
        ASSERT_TRUE(proof.ok());
        EXPECT_TRUE(verify_inclusion(i, cp.size, appended[i].leaf_hash, *proof, cp.root).ok());
    }
    for (std::uint64_t m = 1; m <= cp.size; ++m) {
        auto proof = (*log)->consistency_proof(m, cp.size);
        ASSERT_TRUE(proof.ok());
        EXPECT_TRUE(verify_consistency(m, cp.size, *(*log)->root(m), cp.root, *proof).ok());
    }
}

TEST_F(AuditLogTest, RollsSegmentsAndReadsAcrossThem) {
    auto o = options();
    o.segment_max_bytes = 1500;
    auto log = open(o);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 40; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    const Hash root = (*log)->root();
    ASSERT_TRUE((*log)->close().ok());
    log->reset();
    EXPECT_TRUE(fs::exists(dir() / "log-000003.jsonl"));
    auto again = open(o);
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ((*again)->root(), root);
    auto lines = (*again)->read_entries(0, 40);
    ASSERT_TRUE(lines.ok());
    for (std::uint64_t i = 0; i < 40; ++i) EXPECT_EQ(parse_entry(lines->at(i))->seq, i);
    EXPECT_EQ(verify_dir(dir(), verifier()).status, VerifyStatus::verified);
}

TEST_F(AuditLogTest, SecondWriterIsRefused) {
    auto log = open(options());
    ASSERT_TRUE(log.ok());
    testing::OsslEd25519Signer other;
    auto second = AuditLog::open(options(), {&other});
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, "audit.locked");
}

TEST_F(AuditLogTest, TornFinalLineIsCutBackAndReported) {
    {
        auto log = open(options());
        ASSERT_TRUE(log.ok());
        for (int i = 0; i < 4; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    }
    const fs::path seg = dir() / "log-000000.jsonl";
    const std::string before = test::read_file(seg);
    test::write_file(seg, before + R"({"action":"token.sign","claims":["ex)");
    const std::string cps_before = test::read_file(dir() / "checkpoints");
    test::write_file(dir() / "checkpoints", cps_before + "licentra.example/audit/node-1\n5\n");

    // The offline verifier reports crash residue but does not call it tampering.
    const VerifyReport report = verify_dir(dir(), verifier());
    EXPECT_EQ(report.status, VerifyStatus::verified);
    ASSERT_TRUE(report.torn_log.has_value());
    EXPECT_EQ(report.torn_log->offset, before.size());

    auto log = open(options());
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    const RecoveryReport& rec = (*log)->recovery();
    ASSERT_TRUE(rec.torn_log.has_value());
    EXPECT_EQ(rec.torn_log->file, "log-000000.jsonl");
    EXPECT_EQ(rec.torn_log->offset, before.size());
    EXPECT_EQ(rec.torn_log->length, 36u);
    ASSERT_TRUE(rec.torn_checkpoint.has_value());
    EXPECT_EQ(rec.torn_checkpoint->offset, cps_before.size());
    EXPECT_EQ(rec.size, 4u);
    EXPECT_EQ(test::read_file(seg), before);
    EXPECT_EQ((*log)->append(sample_entry(4))->index, 4u);
}

TEST_F(AuditLogTest, DamageInTheMiddleRefusesToOpenNamingFileAndOffset) {
    {
        auto log = open(options());
        ASSERT_TRUE(log.ok());
        for (int i = 0; i < 4; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    }
    const fs::path seg = dir() / "log-000000.jsonl";
    auto lines = read_lines(seg);
    const std::size_t offset = lines[0].size() + 1 + lines[1].size() + 1;
    lines[2].insert(1, " ");
    write_lines(seg, lines);
    auto log = open(options());
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(log.error().code, "audit.entry_not_canonical");
    EXPECT_NE(log.error().message.find("log-000000.jsonl at byte " + std::to_string(offset)),
              std::string::npos)
        << log.error().message;
}

// ---- tamper matrix ---------------------------------------------------------------------------

class TamperMatrix : public AuditLogTest {
  protected:
    void SetUp() override {
        auto o = options();
        o.checkpoint_every = 10;
        {
            auto log = open(o);
            ASSERT_TRUE(log.ok());
            for (int i = 0; i < 20; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
            ASSERT_TRUE((*log)->close().ok());
        }
        old_copy_ = tmp_.path() / "old";
        fs::copy(dir(), old_copy_);
        old_anchor_ = *anchor_.note();
        {
            auto log = open(o);
            ASSERT_TRUE(log.ok());
            for (int i = 20; i < 40; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
            ASSERT_TRUE((*log)->close().ok());
        }
        ASSERT_EQ(verify_dir(dir(), verifier()).status, VerifyStatus::verified);
    }

    // Applies a change to a fresh copy of the good log and returns the copy.
    fs::path tampered(const std::function<void(const fs::path&)>& change) {
        const fs::path copy = tmp_.path() / ("case-" + std::to_string(++cases_));
        fs::copy(dir(), copy);
        change(copy);
        return copy;
    }

    // Both the offline verifier and open() must reject with the same reason.
    void expect_reason(const fs::path& copy, const std::string& reason) {
        const VerifyReport r = verify_dir(copy, verifier());
        EXPECT_EQ(r.status, VerifyStatus::tampered) << reason;
        ASSERT_TRUE(r.finding.has_value()) << reason;
        EXPECT_EQ(r.finding->reason, reason) << r.finding->to_error().to_string();
        auto o = test_options(copy);
        testing::MemoryAnchor no_anchor;
        auto log = AuditLog::open(o, {&signer_, &no_anchor});
        ASSERT_FALSE(log.ok()) << reason;
        EXPECT_EQ(log.error().code, reason) << log.error().to_string();
    }

    fs::path old_copy_;
    std::string old_anchor_;
    int cases_ = 0;
};

const char* kSeg = "log-000000.jsonl";

TEST_F(TamperMatrix, FlippedByteIsARootMismatch) {
    auto copy = tampered([](const fs::path& d) {
        std::string data = test::read_file(d / kSeg);
        auto lines = read_lines(d / kSeg);
        std::size_t at = 0;
        for (int i = 0; i < 15; ++i) at += lines[static_cast<std::size_t>(i)].size() + 1;
        at += lines[15].find("license-server-eu") + 4;
        data[at] = static_cast<char>(data[at] ^ 0x01);
        test::write_file(d / kSeg, data);
    });
    expect_reason(copy, "audit.root_mismatch");
    const VerifyReport r = verify_dir(copy, verifier());
    EXPECT_EQ(r.finding->index, 10u);  // after the last checkpoint that still matches (size 10)
}

TEST_F(TamperMatrix, FlippedByteBreakingTheJsonIsMalformed) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg);
        lines[15][0] = '[';
        write_lines(d / kSeg, lines);
    });
    expect_reason(copy, "audit.entry_malformed");
    EXPECT_EQ(verify_dir(copy, verifier()).finding->index, 15u);
}

TEST_F(TamperMatrix, DeletedEntryIsASeqGap) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg);
        lines.erase(lines.begin() + 15);
        write_lines(d / kSeg, lines);
    });
    expect_reason(copy, "audit.seq_gap");
    EXPECT_EQ(verify_dir(copy, verifier()).finding->index, 15u);
}

TEST_F(TamperMatrix, SwappedEntriesAreReported) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg);
        std::swap(lines[15], lines[16]);
        write_lines(d / kSeg, lines);
    });
    expect_reason(copy, "audit.seq_swapped");
}

TEST_F(TamperMatrix, InsertedEntryIsASeqRepeat) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg);
        Entry forged = *parse_entry(lines[15]);
        forged.principal = "intruder";
        lines.insert(lines.begin() + 15, *serialize_entry(forged));
        write_lines(d / kSeg, lines);
    });
    expect_reason(copy, "audit.seq_repeat");
    EXPECT_EQ(verify_dir(copy, verifier()).finding->index, 16u);
}

TEST_F(TamperMatrix, TruncatedTailIsBelowASignedSize) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg);
        lines.resize(33);
        write_lines(d / kSeg, lines);
    });
    expect_reason(copy, "audit.truncated");
}

TEST_F(TamperMatrix, ReplacedCheckpointFailsItsSignature) {
    auto copy = tampered([](const fs::path& d) {
        std::string cps = test::read_file(d / "checkpoints");
        const std::string needle = "licentra.example/audit/node-1\n20\n";
        const auto at = cps.find(needle);
        ASSERT_NE(at, std::string::npos);
        // A different root for size 20 under the original signature line.
        const auto root_at = at + needle.size();
        cps.replace(root_at, 44, core::base64_encode(Hash{}));
        test::write_file(d / "checkpoints", cps);
    });
    expect_reason(copy, "audit.checkpoint_signature_invalid");
}

TEST_F(TamperMatrix, CheckpointBySomeoneElseIsUnsigned) {
    auto copy = tampered([](const fs::path& d) {
        testing::OsslEd25519Signer mallory(core::Bytes(32, 0x66));
        auto cs = *CheckpointSigner::create("licentra.example/audit", mallory);
        test::write_file(d / "checkpoints",
                         *cs.sign(Checkpoint{"licentra.example/audit/node-1", 0, empty_root()}));
    });
    expect_reason(copy, "audit.checkpoint_unsigned");
}

TEST_F(TamperMatrix, RolledBackDirectoryIsCaughtByTheAnchor) {
    // The old copy is internally consistent; only the anchored checkpoint (on the HSM in
    // production) shows that the log once was longer.
    EXPECT_EQ(verify_dir(old_copy_, verifier()).status, VerifyStatus::verified);
    const VerifyReport r = verify_dir(old_copy_, verifier(), anchor_.note());
    EXPECT_EQ(r.status, VerifyStatus::tampered);
    EXPECT_EQ(r.finding->reason, "audit.rolled_back");
    auto log = open(test_options(old_copy_));
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.error().code, "audit.rolled_back");
    // The copy opens against the anchor of its own time.
    testing::MemoryAnchor then;
    then.set(old_anchor_);
    EXPECT_TRUE(AuditLog::open(test_options(old_copy_), {&signer_, &then}).ok());
}

TEST_F(TamperMatrix, RolledBackCheckpointsFileIsCaughtByTheAnchor) {
    auto copy = tampered([&](const fs::path& d) {
        fs::copy_file(old_copy_ / "checkpoints", d / "checkpoints",
                      fs::copy_options::overwrite_existing);
    });
    auto log = open(test_options(copy));
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.error().code, "audit.rolled_back");
}

// ---- disk full -------------------------------------------------------------------------------

TEST_F(AuditLogTest, DiskFullFailsClosedAndTheLogStillVerifies) {
    testing::FailingFileOps ops;
    auto log = open(options(), &ops);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*log)->append(sample_entry(i)).ok());
    ops.budget = 100;  // the next write gets 100 bytes out, then ENOSPC
    ops.armed = true;
    auto r = (*log)->append(sample_entry(10));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::unavailable);
    EXPECT_EQ(r.error().code, "audit.log_failed");
    EXPECT_NE(r.error().message.find("No space left on device"), std::string::npos);
    EXPECT_FALSE((*log)->healthy());
    EXPECT_EQ((*log)->state(), LogState::failed);
    ASSERT_TRUE((*log)->failure().has_value());
    ops.armed = false;  // even with space again, nothing is retried
    auto later = (*log)->append(sample_entry(11));
    ASSERT_FALSE(later.ok());
    EXPECT_EQ(later.error().code, "audit.log_failed");
    bool async_failed = false;
    (*log)->append_async(sample_entry(12),
                         [&](core::Result<Appended> a) { async_failed = !a.ok(); });
    EXPECT_TRUE(async_failed);
    EXPECT_EQ((*log)->size(), 10u);
    EXPECT_FALSE((*log)->close().ok());
    log->reset();

    const VerifyReport report = verify_dir(dir(), verifier());
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.size, 10u);
    ASSERT_TRUE(report.torn_log.has_value());
    EXPECT_EQ(report.torn_log->length, 100u);

    auto again = open(options());
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ((*again)->size(), 10u);
    EXPECT_TRUE((*again)->recovery().torn_log.has_value());
}

TEST_F(AuditLogTest, FailedSyncFailsClosed) {
    testing::FailingFileOps ops;
    auto log = open(options(), &ops);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->append(sample_entry(0)).ok());
    ops.fail_sync = true;
    EXPECT_EQ((*log)->append(sample_entry(1)).error().code, "audit.log_failed");
    ops.fail_sync = false;
    EXPECT_EQ((*log)->append(sample_entry(2)).error().code, "audit.log_failed");
    EXPECT_FALSE((*log)->healthy());
}

}  // namespace
}  // namespace licentra::audit
