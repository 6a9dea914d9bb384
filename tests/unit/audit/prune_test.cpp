// Payload pruning (`licentra audit prune`): the pruned log still verifies whole, proofs made
// before pruning still check against the checkpoints, a second run changes nothing, an
// interrupted run loses nothing, the daemon's log reopens the directory and appends, and the
// pruned-log cases of the tamper matrix each give their exact finding.
#include "audit/prune.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "audit/log.hpp"
#include "audit/pruned.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "pruned_log_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;
using testing::log_epoch;
using testing::read_lines;
using testing::snapshot;
using testing::write_lines;

core::TimePoint minutes(int m) { return log_epoch() + std::chrono::minutes(m); }

class AuditPrune : public ::testing::Test {
  protected:
    // 50 entries in segments of 12 (the last, open one holds 48-49), a checkpoint every 10.
    void SetUp() override { lines_ = write(dir(), standard()); }

    static testing::CraftedLog standard() {
        testing::CraftedLog spec;
        spec.segments = {12, 12, 12, 12, 2};
        spec.checkpoints = {0, 10, 20, 30, 40, 50};
        return spec;
    }
    std::vector<std::string> write(const fs::path& d, const testing::CraftedLog& spec) {
        return testing::write_crafted_log(d, spec, signer_);
    }
    fs::path dir() const { return tmp_.path() / "log"; }
    NoteVerifier verifier() {
        return *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
    }
    core::Result<PruneReport> prune(const fs::path& d, core::TimePoint before,
                                    Finding* finding = nullptr, FileOps* ops = nullptr) {
        PruneOptions o;
        o.dir = d;
        o.before = before;
        o.file_ops = ops;
        return prune_log_directory(o, verifier(), finding);
    }
    VerifyReport verify(const fs::path& d) {
        VerifyOptions o;
        o.dir = d;
        return verify_log_directory(o, verifier());
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    std::vector<std::string> lines_;
};

TEST_F(AuditPrune, PruneThenVerifyReportsTheExactPrunedRange) {
    const VerifyReport before = verify(dir());
    ASSERT_EQ(before.status, VerifyStatus::verified);
    EXPECT_TRUE(before.pruned.empty());

    auto r = prune(dir(), minutes(42));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->size, 50u);
    EXPECT_EQ(r->newest_checkpoint, 50u);
    EXPECT_EQ(r->limit, 48u);  // the open segment starts at 48
    EXPECT_EQ(r->newly_pruned, 42u);
    EXPECT_EQ(r->pruned, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(r->rewritten, (std::vector<std::string>{"log-000000.jsonl", "log-000001.jsonl",
                                                      "log-000002.jsonl", "log-000003.jsonl"}));

    const VerifyReport after = verify(dir());
    ASSERT_EQ(after.status, VerifyStatus::verified) << after.finding->to_error().to_string();
    EXPECT_EQ(after.size, 50u);
    EXPECT_EQ(after.checkpoints, 6u);
    EXPECT_EQ(after.newest, before.newest);
    EXPECT_EQ(after.pruned, (std::vector<PrunedRange>{{0, 42}}));

    // Segment 0 is one record of its 12 leaf hashes; segment 3 keeps 42-47 byte for byte.
    const auto seg0 = read_lines(dir() / "log-000000.jsonl");
    ASSERT_EQ(seg0.size(), 1u);
    PrunedRecord want;
    want.first = 0;
    for (int i = 0; i < 12; ++i) want.leaves.push_back(leaf_hash(core::as_bytes(lines_[i])));
    EXPECT_EQ(seg0[0], serialize_pruned_record(want));
    const auto seg3 = read_lines(dir() / "log-000003.jsonl");
    ASSERT_EQ(seg3.size(), 7u);
    EXPECT_EQ(parse_pruned_record(seg3[0])->first, 36u);
    EXPECT_EQ(parse_pruned_record(seg3[0])->leaves.size(), 6u);
    for (std::size_t k = 1; k < 7; ++k) EXPECT_EQ(seg3[k], lines_[41 + k]);
    EXPECT_EQ(read_lines(dir() / "log-000004.jsonl"),
              (std::vector<std::string>{lines_[48], lines_[49]}));
    // No payload of a pruned entry is left anywhere in the directory.
    for (const auto& [name, bytes] : snapshot(dir())) {
        for (int i = 0; i < 42; ++i) {
            EXPECT_EQ(bytes.find("\"req-" + std::to_string(i) + "\""), std::string::npos)
                << name << " still holds entry " << i;
        }
    }
}

TEST_F(AuditPrune, ProofsMadeBeforePruningStillVerifyAgainstTheCheckpointsAfter) {
    Finding f;
    auto old_scan = scan_log_directory(dir(), &f);
    ASSERT_TRUE(old_scan.ok());
    const MerkleTree& old_tree = old_scan->tree;
    ASSERT_TRUE(prune(dir(), minutes(42)).ok());

    auto new_scan = scan_log_directory(dir(), &f);
    ASSERT_TRUE(new_scan.ok()) << f.to_error().to_string();
    ASSERT_EQ(new_scan->tree.size(), 50u);
    const NoteVerifier v = verifier();
    std::vector<Checkpoint> cps;
    for (const auto& stored : new_scan->checkpoints) cps.push_back(*v.open_checkpoint(stored.note));
    ASSERT_EQ(cps.size(), 6u);
    for (const Checkpoint& cp : cps) {
        for (std::uint64_t i = 0; i < cp.size; ++i) {
            const auto before = *old_tree.inclusion_proof(i, cp.size);
            EXPECT_TRUE(verify_inclusion(i, cp.size, old_tree.leaf(i), before, cp.root).ok())
                << i << " in " << cp.size;
            EXPECT_EQ(*new_scan->tree.inclusion_proof(i, cp.size), before);
            EXPECT_EQ(new_scan->tree.leaf(i), old_tree.leaf(i));
        }
        for (const Checkpoint& later : cps) {
            if (cp.size == 0 || later.size < cp.size) continue;
            const auto before = *old_tree.consistency_proof(cp.size, later.size);
            EXPECT_TRUE(verify_consistency(cp.size, later.size, cp.root, later.root, before).ok());
            EXPECT_EQ(*new_scan->tree.consistency_proof(cp.size, later.size), before);
        }
    }
}

TEST_F(AuditPrune, ASecondRunChangesNothingAndTwoStepsEqualOne) {
    ASSERT_TRUE(prune(dir(), minutes(42)).ok());
    const auto once = snapshot(dir());
    auto again = prune(dir(), minutes(42));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->newly_pruned, 0u);
    EXPECT_TRUE(again->rewritten.empty());
    EXPECT_EQ(again->pruned, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(snapshot(dir()), once);
    // An earlier date changes nothing either.
    ASSERT_EQ(prune(dir(), minutes(5))->newly_pruned, 0u);
    EXPECT_EQ(snapshot(dir()), once);

    // Pruning up to 20 and then up to 42 gives the same bytes as pruning up to 42 at once.
    const fs::path stepwise = tmp_.path() / "stepwise";
    write(stepwise, standard());
    auto first = prune(stepwise, minutes(20));
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->pruned, (std::vector<PrunedRange>{{0, 20}}));
    auto second = prune(stepwise, minutes(42));
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->newly_pruned, 22u);
    EXPECT_EQ(second->rewritten, (std::vector<std::string>{"log-000001.jsonl", "log-000002.jsonl",
                                                           "log-000003.jsonl"}));
    EXPECT_EQ(snapshot(stepwise), once);
}

TEST_F(AuditPrune, NeverPrunesPastTheNewestCheckpointOrTheOpenSegment) {
    // Checkpoints up to 30: entries 30-49 are not signed yet.
    testing::CraftedLog spec = standard();
    spec.checkpoints = {0, 10, 20, 30};
    const fs::path unsigned_tail = tmp_.path() / "unsigned";
    write(unsigned_tail, spec);
    auto r = prune(unsigned_tail, minutes(1000));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->limit, 30u);
    EXPECT_EQ(r->pruned, (std::vector<PrunedRange>{{0, 30}}));
    EXPECT_EQ(verify(unsigned_tail).pruned, (std::vector<PrunedRange>{{0, 30}}));

    // Everything signed: the open segment (48-49) stays.
    auto all = prune(dir(), minutes(1000));
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->pruned, (std::vector<PrunedRange>{{0, 48}}));
    EXPECT_EQ(read_lines(dir() / "log-000004.jsonl"),
              (std::vector<std::string>{lines_[48], lines_[49]}));

    // One segment only: it is the open one, nothing is pruned.
    testing::CraftedLog single;
    single.segments = {20};
    single.checkpoints = {0, 20};
    const fs::path one = tmp_.path() / "one";
    write(one, single);
    const auto bytes = snapshot(one);
    auto none = prune(one, minutes(1000));
    ASSERT_TRUE(none.ok());
    EXPECT_EQ(none->limit, 0u);
    EXPECT_EQ(none->newly_pruned, 0u);
    EXPECT_EQ(snapshot(one), bytes);
}

TEST_F(AuditPrune, ALongRunIsSplitIntoRecordsOf1024FromItsFirstEntry) {
    testing::CraftedLog spec;
    spec.segments = {2100, 5};
    spec.checkpoints = {0, 1000, 2105};
    const fs::path once = tmp_.path() / "once";
    const fs::path steps = tmp_.path() / "steps";
    write(once, spec);
    write(steps, spec);
    auto r = prune(once, minutes(100000));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->pruned, (std::vector<PrunedRange>{{0, 2100}}));
    const auto seg0 = read_lines(once / "log-000000.jsonl");
    ASSERT_EQ(seg0.size(), 3u);
    EXPECT_EQ(parse_pruned_record(seg0[0])->first, 0u);
    EXPECT_EQ(parse_pruned_record(seg0[0])->leaves.size(), 1024u);
    EXPECT_EQ(parse_pruned_record(seg0[1])->first, 1024u);
    EXPECT_EQ(parse_pruned_record(seg0[1])->leaves.size(), 1024u);
    EXPECT_EQ(parse_pruned_record(seg0[2])->first, 2048u);
    EXPECT_EQ(parse_pruned_record(seg0[2])->leaves.size(), 52u);
    const VerifyReport v = verify(once);
    ASSERT_EQ(v.status, VerifyStatus::verified) << v.finding->to_error().to_string();
    EXPECT_EQ(v.pruned, (std::vector<PrunedRange>{{0, 2100}}));

    // 0-1499 first (records 1024 + 476), then the rest: the records are merged again.
    EXPECT_EQ(prune(steps, minutes(1500))->pruned, (std::vector<PrunedRange>{{0, 1500}}));
    EXPECT_EQ(read_lines(steps / "log-000000.jsonl").size(), 2u + 600u);
    EXPECT_EQ(prune(steps, minutes(100000))->newly_pruned, 600u);
    EXPECT_EQ(snapshot(steps), snapshot(once));
}

TEST_F(AuditPrune, EntriesOutOfTimeOrderArePrunedWhereverTheyAre) {
    // A clock stepped back: entries 4-6 carry an older time than their neighbours.
    testing::CraftedLog spec = standard();
    spec.time_of = [](std::uint64_t i) {
        return i >= 4 && i <= 6 ? log_epoch() - std::chrono::hours(24)
                                : log_epoch() + std::chrono::minutes(i);
    };
    const fs::path d = tmp_.path() / "stepped";
    const auto lines = write(d, spec);
    auto r = prune(d, log_epoch());
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->pruned, (std::vector<PrunedRange>{{4, 3}}));
    const auto seg0 = read_lines(d / "log-000000.jsonl");
    ASSERT_EQ(seg0.size(), 10u);
    EXPECT_EQ(seg0[3], lines[3]);
    EXPECT_EQ(parse_pruned_record(seg0[4])->first, 4u);
    EXPECT_EQ(seg0[5], lines[7]);
    const VerifyReport v = verify(d);
    EXPECT_EQ(v.status, VerifyStatus::verified);
    EXPECT_EQ(v.pruned, (std::vector<PrunedRange>{{4, 3}}));
}

TEST_F(AuditPrune, RefusesADirectoryARunningDaemonHoldsAndALogThatDoesNotVerify) {
    const auto bytes = snapshot(dir());
    {
        testing::MemoryAnchor anchor;
        auto log = AuditLog::open(testing::test_options(dir()), {&signer_, &anchor});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        auto r = prune(dir(), minutes(42));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().kind, core::ErrorKind::conflict);
        EXPECT_EQ(r.error().code, "audit.locked");
        EXPECT_EQ(read_lines(dir() / "log-000000.jsonl").size(), 12u);
    }

    // A flipped byte: pruning would hide which entry changed, so nothing is pruned.
    const fs::path bad = tmp_.path() / "bad";
    write(bad, standard());
    auto seg = read_lines(bad / "log-000001.jsonl");
    seg[3].replace(seg[3].find("req-15"), 6, "req-99");
    write_lines(bad / "log-000001.jsonl", seg);
    const auto bad_bytes = snapshot(bad);
    Finding f;
    auto r = prune(bad, minutes(42), &f);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "audit.root_mismatch");
    EXPECT_EQ(f.reason, "audit.root_mismatch");
    EXPECT_EQ(f.index, 10u);
    EXPECT_EQ(snapshot(bad), bad_bytes);
}

TEST_F(AuditPrune, ALeftoverTemporaryFileIsIgnoredThenRemovedAndTheOriginalVerifies) {
    // A prune killed after writing half of segment 1's replacement, before the rename.
    const std::string tmp_name = std::string("log-000001.jsonl") + std::string(kPruneTempSuffix);
    const std::string half =
        serialize_pruned_record(PrunedRecord{12, {leaf_hash(core::as_bytes(lines_[12]))}});
    test::write_file(dir() / tmp_name, half.substr(0, half.size() / 2));

    const VerifyReport v = verify(dir());
    ASSERT_EQ(v.status, VerifyStatus::verified);
    EXPECT_EQ(v.size, 50u);
    EXPECT_TRUE(v.pruned.empty());
    auto r = prune(dir(), minutes(42));
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->leftovers_removed, (std::vector<std::string>{tmp_name}));
    EXPECT_FALSE(fs::exists(dir() / tmp_name));
    EXPECT_EQ(verify(dir()).pruned, (std::vector<PrunedRange>{{0, 42}}));

    // The daemon's log removes one when it opens (a prune_before it ran was interrupted).
    test::write_file(dir() / tmp_name, half.substr(0, half.size() / 2));
    testing::MemoryAnchor anchor;
    auto log = AuditLog::open(testing::test_options(dir()), {&signer_, &anchor});
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    EXPECT_EQ((*log)->size(), 50u);
    EXPECT_FALSE(fs::exists(dir() / tmp_name));
}

TEST_F(AuditPrune, AFailedWriteLeavesTheSegmentWholeAndNoTemporaryFile) {
    const auto bytes = snapshot(dir());
    testing::FailingFileOps ops;
    ops.armed = true;
    ops.budget = 100;  // a short write, then ENOSPC
    Finding f;
    auto r = prune(dir(), minutes(42), &f, &ops);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::unavailable);
    EXPECT_EQ(r.error().code, "audit.io_error");
    EXPECT_NE(r.error().message.find("log-000000.jsonl.prune-tmp"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(snapshot(dir()), bytes);  // the lock file aside, nothing changed
    EXPECT_EQ(verify(dir()).status, VerifyStatus::verified);
}

TEST_F(AuditPrune, TheDaemonLogReopensAPrunedDirectoryReadsPrunedEntriesAndAppends) {
    ASSERT_TRUE(prune(dir(), minutes(42)).ok());
    // As in production, the HSM anchor holds the newest checkpoint, signed before pruning.
    Finding f;
    testing::MemoryAnchor anchor;
    anchor.set(scan_log_directory(dir(), &f)->checkpoints.back().note);
    auto log = AuditLog::open(testing::test_options(dir()), {&signer_, &anchor});
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    EXPECT_EQ((*log)->size(), 50u);
    EXPECT_EQ((*log)->recovery().anchored_size, 50u);
    EXPECT_TRUE((*log)->pruned(0));
    EXPECT_TRUE((*log)->pruned(41));
    EXPECT_FALSE((*log)->pruned(42));
    auto read = (*log)->read_entries(40, 44);
    ASSERT_TRUE(read.ok()) << read.error().to_string();
    ASSERT_EQ(read->size(), 4u);
    EXPECT_EQ((*read)[0], "{\"leaf_hash\":\"" +
                              core::base64_encode(leaf_hash(core::as_bytes(lines_[40]))) +
                              "\",\"pruned\":true,\"seq\":40}");
    EXPECT_EQ((*read)[1], pruned_entry_line(41, leaf_hash(core::as_bytes(lines_[41]))));
    EXPECT_EQ((*read)[2], lines_[42]);
    EXPECT_EQ((*read)[3], lines_[43]);
    auto all = (*log)->read_entries(0, 50);
    ASSERT_TRUE(all.ok());
    EXPECT_EQ(all->at(11), pruned_entry_line(11, leaf_hash(core::as_bytes(lines_[11]))));
    EXPECT_EQ(all->at(47), lines_[47]);

    for (std::uint64_t i = 50; i < 55; ++i) {
        auto a = (*log)->append(testing::sample_entry(i));
        ASSERT_TRUE(a.ok()) << a.error().to_string();
        EXPECT_EQ(a->index, i);
    }
    ASSERT_TRUE((*log)->close().ok());
    log->reset();

    const VerifyReport v = verify(dir());
    ASSERT_EQ(v.status, VerifyStatus::verified) << v.finding->to_error().to_string();
    EXPECT_EQ(v.size, 55u);
    EXPECT_EQ(v.newest->size, 55u);
    EXPECT_EQ(v.pruned, (std::vector<PrunedRange>{{0, 42}}));
    EXPECT_EQ(verifier().open_checkpoint(*anchor.note())->size, 55u);
}

// ---- tamper matrix, pruned logs ----------------------------------------------------------------

// A pruned copy (entries 0-41) of the standard log, changed one way per case; both the offline
// verifier and AuditLog::open must name the same reason, and the verifier the exact place.
class PrunedTamperMatrix : public AuditPrune {
  protected:
    void SetUp() override {
        AuditPrune::SetUp();
        ASSERT_TRUE(prune(dir(), minutes(42)).ok());
    }

    fs::path tampered(const std::function<void(const fs::path&)>& change) {
        const fs::path copy = tmp_.path() / ("case-" + std::to_string(++cases_));
        fs::copy(dir(), copy);
        change(copy);
        return copy;
    }

    void expect_finding(const fs::path& copy, const std::string& reason, const std::string& file,
                        std::uint64_t offset, std::optional<std::uint64_t> index) {
        const VerifyReport r = verify(copy);
        EXPECT_EQ(r.status, VerifyStatus::tampered) << reason;
        ASSERT_TRUE(r.finding.has_value()) << reason;
        EXPECT_EQ(r.finding->reason, reason) << r.finding->to_error().to_string();
        EXPECT_EQ(r.finding->file, file) << r.finding->to_error().to_string();
        EXPECT_EQ(r.finding->offset, offset) << r.finding->to_error().to_string();
        EXPECT_EQ(r.finding->index, index) << r.finding->to_error().to_string();
        // The whole-tree path (what open() runs) finds the same thing at the same place.
        Finding whole;
        auto scan = scan_log_directory(copy, &whole);
        if (scan) {
            const NoteVerifier v = verifier();
            ASSERT_FALSE(check_checkpoints(*scan, v, std::nullopt, &whole).ok()) << reason;
        }
        EXPECT_EQ(whole.reason, reason);
        EXPECT_EQ(whole.file, file);
        EXPECT_EQ(whole.offset, offset);
        EXPECT_EQ(whole.index, index);
        testing::MemoryAnchor no_anchor;
        auto log = AuditLog::open(testing::test_options(copy), {&signer_, &no_anchor});
        ASSERT_FALSE(log.ok()) << reason;
        EXPECT_EQ(log.error().code, reason) << log.error().to_string();
    }

    int cases_ = 0;
};

const char* kSeg0 = "log-000000.jsonl";
const char* kSeg1 = "log-000001.jsonl";

TEST_F(PrunedTamperMatrix, AnAlteredKeptHashIsARootMismatch) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg1);
        PrunedRecord record = *parse_pruned_record(lines[0]);
        record.leaves[3][0] ^= 0x01;  // entry 15
        lines[0] = serialize_pruned_record(record);
        write_lines(d / kSeg1, lines);
    });
    // The first checkpoint that fails signs 20; entry 10 (in segment 0's record) is the first one
    // the last matching checkpoint does not cover.
    expect_finding(copy, "audit.root_mismatch", kSeg0, 0, 10u);
    EXPECT_NE(verify(copy).finding->message.find("entries 10..19 do not hash to the root signed "
                                                 "for size 20"),
              std::string::npos);
}

TEST_F(PrunedTamperMatrix, ARangeClaimingMoreEntriesThanItHoldsIsACountMismatch) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg0);
        lines[0].replace(lines[0].find("\"count\":12"), 10, "\"count\":13");
        write_lines(d / kSeg0, lines);
    });
    expect_finding(copy, "audit.pruned_count_mismatch", kSeg0, 0, 0u);
    EXPECT_EQ(verify(copy).finding->message,
              "pruned record claims 13 entries but holds 12 leaf hashes");
}

TEST_F(PrunedTamperMatrix, ARangeWithAHashAndItsCountRemovedIsASeqGap) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg0);
        PrunedRecord record = *parse_pruned_record(lines[0]);
        record.leaves.pop_back();
        lines[0] = serialize_pruned_record(record);
        write_lines(d / kSeg0, lines);
    });
    expect_finding(copy, "audit.seq_gap", kSeg1, 0, 11u);
    EXPECT_EQ(verify(copy).finding->message, "pruned record starts at 12 where 11 belongs");
}

TEST_F(PrunedTamperMatrix, ARangeMovedToAnotherFirstIndexIsASeqGap) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg1);
        lines[0].replace(lines[0].find("\"first\":12"), 10, "\"first\":13");
        write_lines(d / kSeg1, lines);
    });
    expect_finding(copy, "audit.seq_gap", kSeg1, 0, 12u);
}

TEST_F(PrunedTamperMatrix, AMalformedRecordInTheMiddleOfASegmentIsMalformed) {
    // Entries 4-6 out of time order: their record sits between kept entries 0-3 and 7-11.
    testing::CraftedLog spec = standard();
    spec.time_of = [](std::uint64_t i) {
        return i >= 4 && i <= 6 ? log_epoch() - std::chrono::hours(24)
                                : log_epoch() + std::chrono::minutes(i);
    };
    const fs::path d = tmp_.path() / "middle";
    const auto lines = write(d, spec);
    ASSERT_TRUE(prune(d, log_epoch()).ok());
    auto seg = read_lines(d / kSeg0);
    ASSERT_TRUE(is_pruned_record(seg[4]));
    const std::size_t at = seg[4].find("leaf_hashes\":\"") + 20;
    seg[4][at] = '!';
    write_lines(d / kSeg0, seg);
    std::uint64_t offset = 0;
    for (int i = 0; i < 4; ++i) offset += lines[static_cast<std::size_t>(i)].size() + 1;
    expect_finding(d, "audit.pruned_malformed", kSeg0, offset, 4u);
    EXPECT_EQ(verify(d).finding->message, "pruned record: leaf_hashes is not base64");
}

TEST_F(PrunedTamperMatrix, TextAppendedToARecordLineIsMalformed) {
    auto copy = tampered([](const fs::path& d) {
        auto lines = read_lines(d / kSeg0);
        lines[0] += "x";
        write_lines(d / kSeg0, lines);
    });
    expect_finding(copy, "audit.pruned_malformed", kSeg0, 0, 0u);
    EXPECT_EQ(verify(copy).finding->message, "pruned record: unexpected bytes after leaf_hashes");
}

TEST_F(PrunedTamperMatrix, ALineAppendedAfterAPrunedRangeIsMalformed) {
    std::uint64_t record_bytes = 0;
    auto copy = tampered([&](const fs::path& d) {
        auto lines = read_lines(d / kSeg0);
        record_bytes = lines[0].size() + 1;
        lines.push_back("{\"note\":\"entries 0-11 were never here\"}");
        write_lines(d / kSeg0, lines);
    });
    expect_finding(copy, "audit.entry_malformed", kSeg0, record_bytes, 12u);
}

TEST_F(PrunedTamperMatrix, AnEntryAppendedAfterAPrunedRangeIsASeqRepeat) {
    std::uint64_t seg1_record = 0;
    auto copy = tampered([&](const fs::path& d) {
        // Entry 12's original line put back after segment 0's record: segment 1 then repeats 12.
        test::write_file(d / kSeg0, test::read_file(d / kSeg0) + lines_[12] + "\n");
        seg1_record = 0;
    });
    expect_finding(copy, "audit.seq_repeat", kSeg1, seg1_record, 13u);
}

TEST_F(PrunedTamperMatrix, UnterminatedTextAfterAPrunedRangeIsAnUnterminatedSegment) {
    std::uint64_t end = 0;
    auto copy = tampered([&](const fs::path& d) {
        const std::string data = test::read_file(d / kSeg0);
        end = data.size();
        test::write_file(d / kSeg0, data + "{\"pruned\":{\"count\":1");
    });
    expect_finding(copy, "audit.segment_unterminated", kSeg0, end, 12u);
}

TEST_F(PrunedTamperMatrix, APrunedRangeNoCheckpointCoversIsUnsigned) {
    auto copy = tampered([&](const fs::path& d) {
        // Keep the checkpoints of sizes 0 and 10 only: entries 10-41 lose every signature.
        auto cs = *CheckpointSigner::create("licentra.example/audit", signer_);
        Finding f;
        auto scan = scan_log_directory(d, &f);
        ASSERT_TRUE(scan.ok());
        test::write_file(d / "checkpoints",
                         *cs.sign(Checkpoint{testing::kPruneOrigin, 0, *scan->tree.root(0)}) +
                             *cs.sign(Checkpoint{testing::kPruneOrigin, 10, *scan->tree.root(10)}));
    });
    expect_finding(copy, "audit.pruned_unsigned", kSeg0, 0, 10u);
}

TEST_F(PrunedTamperMatrix, ADeletedRecordLeavesAnEmptySegment) {
    auto copy = tampered([](const fs::path& d) { test::write_file(d / kSeg1, ""); });
    expect_finding(copy, "audit.segment_empty", kSeg1, 0, 12u);
}

}  // namespace
}  // namespace licentra::audit
