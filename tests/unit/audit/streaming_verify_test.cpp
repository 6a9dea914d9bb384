// The streaming verifier (verify_log_directory) against the whole-tree path it replaced
// (scan_log_directory + check_checkpoints, still what AuditLog::open runs): the compact range
// against MerkleTree at every size, and, on logs of several segments larger than the read buffer
// and many checkpoints, the same report and the same finding — reason, file, byte offset, entry
// index and message — for every kind of damage.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "audit/log.hpp"
#include "audit/store.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "crypto/digest.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;

TEST(CompactRangeTest, RootEqualsTheFullTreeRootAtEverySizeUpTo70) {
    MerkleTree tree;
    CompactRange range;
    EXPECT_EQ(range.size(), 0u);
    EXPECT_EQ(range.root(), *tree.root(0));
    EXPECT_EQ(range.root(), empty_root());
    for (std::uint64_t n = 1; n <= 70; ++n) {
        const std::string data = "entry-" + std::to_string(n - 1);
        const Hash leaf = leaf_hash(core::as_bytes(data));
        tree.append(leaf);
        range.append(leaf);
        ASSERT_EQ(range.size(), n);
        ASSERT_EQ(range.root(), *tree.root(n)) << "size " << n;
    }
    // The full tree still serves every earlier size; the compact range only the current one.
    CompactRange again;
    for (std::uint64_t n = 0; n <= 70; ++n) {
        ASSERT_EQ(again.root(), *tree.root(n)) << "size " << n;
        if (n < 70) again.append(tree.leaf(n));
    }
}

// The report the whole-tree path gives: the first finding of scan_log_directory, then of
// check_checkpoints, then audit.no_checkpoint.
struct Reference {
    std::optional<Finding> finding;
    std::optional<LogScan> scan;
};

Reference reference(const fs::path& dir, const NoteVerifier& v) {
    Reference r;
    Finding f;
    auto scan = scan_log_directory(dir, &f);
    if (!scan) {
        r.finding = f;
        return r;
    }
    r.scan = std::move(scan).value();
    if (!check_checkpoints(*r.scan, v, std::nullopt, &f)) {
        r.finding = f;
    } else if (r.scan->checkpoints.empty()) {
        r.finding = Finding{core::ErrorKind::integrity,
                            "audit.no_checkpoint",
                            std::string(kCheckpointsFile),
                            0,
                            std::nullopt,
                            "the log has no signed checkpoint"};
    }
    return r;
}

void expect_same_finding(const Finding& got, const Finding& want) {
    EXPECT_EQ(got.kind, want.kind);
    EXPECT_EQ(got.reason, want.reason);
    EXPECT_EQ(got.file, want.file);
    EXPECT_EQ(got.offset, want.offset);
    EXPECT_EQ(got.index, want.index);
    EXPECT_EQ(got.message, want.message);
}

void expect_same_torn(const std::optional<TornTail>& got, const std::optional<TornTail>& want) {
    ASSERT_EQ(got.has_value(), want.has_value());
    if (!got) return;
    EXPECT_EQ(got->file, want->file);
    EXPECT_EQ(got->offset, want->offset);
    EXPECT_EQ(got->length, want->length);
}

std::string segment(std::uint64_t n) { return segment_file_name(n); }

// A log written through AuditLog: `entries` entries, a checkpoint every `every`, segments of
// `segment_bytes` (both approximately: the writer rolls and signs between batches). Every 500th
// entry is a lifecycle execution, every 700th a key version.
class StreamingVerify : public ::testing::Test {
  protected:
    static void write_log(const fs::path& dir, std::uint64_t entries, std::uint64_t segment_bytes,
                          std::uint64_t every) {
        testing::OsslEd25519Signer signer;
        LogOptions o = testing::test_options(dir);
        o.segment_max_bytes = segment_bytes;
        o.checkpoint_every = every;
        // Segments roll and checkpoints are signed between write batches: keep batches small.
        o.max_batch = static_cast<std::size_t>(std::min<std::uint64_t>(every, 64));
        auto log = AuditLog::open(o, {&signer});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        std::atomic<int> failed{0};
        for (std::uint64_t i = 0; i < entries; ++i) {
            Entry e = testing::sample_entry(i);
            if (i % 500 == 499) {
                e.action = "key.rotate.execute";
                e.principal = "officer-1";
                e.kid.reset();
                e.version.reset();
                e.request_digest = core::hex_encode(
                    crypto::sha256(core::as_bytes("request-" + std::to_string(i))));
            } else if (i % 700 == 699) {
                e.action = "key.activate";
                e.version = 4 + i / 700;
                e.kid = "kid-" + std::to_string(i);
            }
            (*log)->append_async(std::move(e), [&](core::Result<Appended> r) {
                if (!r) ++failed;
            });
            // A checkpoint every `every` entries: the checkpoint thread signs once that many
            // wait, so wait for it before appending more.
            if ((i + 1) % every == 0) {
                ASSERT_TRUE(testing::checkpoint_reaches(**log, i + 1));
            }
        }
        ASSERT_TRUE((*log)->close().ok());
        ASSERT_EQ(failed.load(), 0);
    }

    virtual fs::path dir() const { return tmp_.path() / "log"; }
    NoteVerifier verifier() const {
        return *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
    }

    // A fresh copy of the log with change applied.
    fs::path tampered(const std::function<void(const fs::path&)>& change) {
        const fs::path copy = tmp_.path() / ("case-" + std::to_string(++cases_));
        fs::copy(dir(), copy);
        change(copy);
        return copy;
    }

    // The streaming verifier reports exactly what the whole-tree path reports.
    VerifyReport expect_as_reference(const fs::path& d) {
        const NoteVerifier v = verifier();
        VerifyOptions o;
        o.dir = d;
        o.collect_facts = true;
        const VerifyReport got = verify_log_directory(o, v);
        const Reference want = reference(d, v);
        if (want.finding) {
            EXPECT_NE(got.status, VerifyStatus::verified);
            EXPECT_EQ(got.status, want.finding->kind == core::ErrorKind::integrity
                                      ? VerifyStatus::tampered
                                      : VerifyStatus::unreadable);
            EXPECT_TRUE(got.finding.has_value());
            if (got.finding) expect_same_finding(*got.finding, *want.finding);
        } else {
            EXPECT_EQ(got.status, VerifyStatus::verified)
                << (got.finding ? got.finding->to_error().to_string() : "");
        }
        if (want.scan) {
            EXPECT_EQ(got.size, want.scan->tree.size());
            expect_same_torn(got.torn_log, want.scan->torn_log);
            expect_same_torn(got.torn_checkpoint, want.scan->torn_checkpoint);
        } else {
            EXPECT_EQ(got.size, 0u);
        }
        return got;
    }

    // Signs a checkpoint with the log's key, as the writer would.
    std::string sign(std::uint64_t size, const Hash& root) {
        auto cs = *CheckpointSigner::create("licentra.example/audit", signer_);
        return *cs.sign(Checkpoint{"licentra.example/audit/node-1", size, root});
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    int cases_ = 0;
};

// Segments of 2 MiB (each read through the 1 MiB buffer in several refills, and parsed in
// several batches of lines), a checkpoint every 250 entries.
class LargeLog : public StreamingVerify {
  protected:
    static constexpr std::uint64_t kEntries = 14'000;
    // Written once for the suite (the signer's key is fixed); every test works on copies.
    static void SetUpTestSuite() {
        shared_ = std::make_unique<test::TempDir>();
        write_log(shared_->path() / "log", kEntries, 2ULL << 20, 250);
    }
    static void TearDownTestSuite() { shared_.reset(); }
    fs::path dir() const override { return shared_->path() / "log"; }

    static std::unique_ptr<test::TempDir> shared_;
};

std::unique_ptr<test::TempDir> LargeLog::shared_;

TEST_F(LargeLog, VerifiesEverySegmentAndCheckpointInOnePass) {
    const Reference ref = reference(dir(), verifier());
    ASSERT_FALSE(ref.finding.has_value()) << ref.finding->to_error().to_string();
    ASSERT_GE(ref.scan->segments.size(), 3u);
    ASSERT_GT(ref.scan->segments[0].bytes, 2ULL << 20);
    ASSERT_GE(ref.scan->checkpoints.size(), 20u);

    const VerifyReport r = expect_as_reference(dir());
    ASSERT_EQ(r.status, VerifyStatus::verified);
    EXPECT_EQ(r.size, kEntries);
    EXPECT_EQ(r.checkpoints, ref.scan->checkpoints.size());
    ASSERT_TRUE(r.newest.has_value());
    EXPECT_EQ(*r.newest, *verifier().open_checkpoint(ref.scan->checkpoints.back().note));
    EXPECT_EQ(r.newest->size, kEntries);
    EXPECT_EQ(r.newest->root, *ref.scan->tree.root(kEntries));
    EXPECT_EQ(r.unsigned_entries, 0u);

    // The facts are those of every entry, in order.
    ASSERT_TRUE(r.facts.has_value());
    LifecycleFacts want;
    for (const auto& seg : ref.scan->segments) {
        for (const auto& line : testing::read_lines(dir() / seg.file)) want.add(*parse_entry(line));
    }
    ASSERT_EQ(r.facts->kids().size(), want.kids().size());
    std::size_t versions = 1;  // sample_entry's, then every key.activate
    for (std::uint64_t i = 0; i < kEntries; ++i) versions += i % 700 == 699 && i % 500 != 499;
    ASSERT_EQ(r.facts->kids().size(), versions);
    for (std::size_t i = 0; i < want.kids().size(); ++i) {
        EXPECT_EQ(r.facts->kids()[i].kid, want.kids()[i].kid);
        EXPECT_EQ(r.facts->kids()[i].version, want.kids()[i].version);
        EXPECT_EQ(r.facts->kids()[i].index, want.kids()[i].index);
    }
    ASSERT_EQ(r.facts->executions().size(), kEntries / 500);
    for (std::size_t i = 0; i < want.executions().size(); ++i) {
        EXPECT_EQ(r.facts->executions()[i].request_digest, want.executions()[i].request_digest);
        EXPECT_EQ(r.facts->executions()[i].index, want.executions()[i].index);
    }

    // A trusted checkpoint from the middle of the log is found in it.
    VerifyOptions o;
    o.dir = dir();
    o.trusted_checkpoint = ref.scan->checkpoints[ref.scan->checkpoints.size() / 2].note;
    EXPECT_EQ(verify_log_directory(o, verifier()).status, VerifyStatus::verified);
    o.trusted_checkpoint = sign(7'777, Hash{});
    const VerifyReport other = verify_log_directory(o, verifier());
    EXPECT_EQ(other.status, VerifyStatus::tampered);
    EXPECT_EQ(other.finding->reason, "audit.anchor_mismatch");
}

TEST_F(LargeLog, ChangedEntryInALaterSegmentIsTheSameRootMismatch) {
    const auto copy = tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(1));
        lines[1234].replace(lines[1234].find("license-server-eu"), 7, "LICENSE");
        testing::write_lines(d / segment(1), lines);
    });
    const VerifyReport r = expect_as_reference(copy);
    EXPECT_EQ(r.finding->reason, "audit.root_mismatch");
    EXPECT_EQ(r.finding->file, segment(1));
}

TEST_F(LargeLog, EntryDamageAnywhereIsTheSameFinding) {
    // Malformed in the middle of a segment, past the first buffer refill.
    auto r = expect_as_reference(tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(0));
        lines[4500][0] = '[';
        testing::write_lines(d / segment(0), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.entry_malformed");
    EXPECT_EQ(r.finding->index, 4500u);

    // The first entry of a segment deleted: a gap across the segment boundary.
    r = expect_as_reference(tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(1));
        lines.erase(lines.begin());
        testing::write_lines(d / segment(1), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.seq_gap");
    EXPECT_EQ(r.finding->file, segment(1));
    EXPECT_EQ(r.finding->offset, 0u);

    // A swap across the boundary between two batches of parsed lines (4096 lines each).
    r = expect_as_reference(tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(0));
        ASSERT_GT(lines.size(), 4097u);
        std::swap(lines[4095], lines[4096]);
        testing::write_lines(d / segment(0), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.seq_swapped");
    EXPECT_EQ(r.finding->index, 4095u);

    // An inserted copy: a repeat.
    r = expect_as_reference(tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(1));
        lines.insert(lines.begin() + 10, lines[9]);
        testing::write_lines(d / segment(1), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.seq_repeat");

    // A line of 100 KiB (longer than any entry may be, and than what the reader keeps of it).
    r = expect_as_reference(tampered([](const fs::path& d) {
        auto lines = testing::read_lines(d / segment(1));
        lines[20] = std::string(100 * 1024, 'x');
        testing::write_lines(d / segment(1), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.entry_malformed");
    EXPECT_EQ(r.finding->message, "entry exceeds 64 KiB");
}

TEST_F(LargeLog, SegmentDamageIsTheSameFinding) {
    auto r = expect_as_reference(tampered([](const fs::path& d) {
        std::string data = test::read_file(d / segment(0));
        data.pop_back();  // the final '\n'
        test::write_file(d / segment(0), data);
    }));
    EXPECT_EQ(r.finding->reason, "audit.segment_unterminated");

    r = expect_as_reference(tampered([](const fs::path& d) { fs::remove(d / segment(1)); }));
    EXPECT_EQ(r.finding->reason, "audit.segment_missing");

    r = expect_as_reference(
        tampered([](const fs::path& d) { test::write_file(d / segment(1), ""); }));
    EXPECT_EQ(r.finding->reason, "audit.segment_empty");

    // Entries cut off the end: below the signed size.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        const std::string last = segment(reference(dir(), verifier()).scan->segments.size() - 1);
        auto lines = testing::read_lines(d / last);
        lines.resize(lines.size() - 100);
        testing::write_lines(d / last, lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.truncated");
    EXPECT_EQ(r.finding->index, kEntries - 100);

    // A torn final line of 200 KiB is crash residue, not damage.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        const std::string last = segment(reference(dir(), verifier()).scan->segments.size() - 1);
        test::write_file(d / last, test::read_file(d / last) + std::string(200 * 1024, '{'));
    }));
    EXPECT_EQ(r.status, VerifyStatus::verified);
    ASSERT_TRUE(r.torn_log.has_value());
    EXPECT_EQ(r.torn_log->length, 200u * 1024u);
}

TEST_F(LargeLog, CheckpointDamageIsTheSameFindingWithTheSamePrecedence) {
    const Reference ref = reference(dir(), verifier());
    const auto& cps = ref.scan->checkpoints;
    const std::size_t k = cps.size() / 2;

    // A root that does not match (validly signed), at the size of the previous checkpoint:
    // the first entry not covered is read after the comparison.
    auto r = expect_as_reference(tampered([&](const fs::path& d) {
        std::string text;
        for (std::size_t i = 0; i <= k; ++i) text += cps[i].note;
        const auto size = verifier().open_checkpoint(cps[k].note)->size;
        text += sign(size, Hash{});
        test::write_file(d / "checkpoints", text);
    }));
    EXPECT_EQ(r.finding->reason, "audit.root_mismatch");
    EXPECT_FALSE(r.finding->file.empty());

    // The same at the size of the whole log: no entry is left to name.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        test::write_file(d / "checkpoints",
                         test::read_file(d / "checkpoints") + sign(kEntries, Hash{}));
    }));
    EXPECT_EQ(r.finding->reason, "audit.root_mismatch");
    EXPECT_EQ(r.finding->file, "");

    // Sizes that go back.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        test::write_file(d / "checkpoints", test::read_file(d / "checkpoints") + cps[k].note);
    }));
    EXPECT_EQ(r.finding->reason, "audit.checkpoint_order");

    // A broken signature in the middle ...
    const auto broken = [&](const fs::path& d) {
        std::string text = test::read_file(d / "checkpoints");
        const auto at = text.find(cps[k].note);
        // Another base64 digit, so the note still parses and only the signature is wrong.
        char& digit = text[at + cps[k].note.size() - 10];
        digit = digit == 'A' ? 'B' : 'A';
        test::write_file(d / "checkpoints", text);
    };
    r = expect_as_reference(tampered(broken));
    EXPECT_EQ(r.finding->reason, "audit.checkpoint_signature_invalid");
    EXPECT_EQ(r.finding->offset, cps[k].offset);

    // ... is reported after a record that is not a signed note further on ...
    r = expect_as_reference(tampered([&](const fs::path& d) {
        broken(d);
        test::write_file(d / "checkpoints", test::read_file(d / "checkpoints") +
                                                "a\nb\n\nnot a signature\n" + cps.back().note);
    }));
    EXPECT_EQ(r.finding->reason, "audit.checkpoint_record_malformed");

    // ... which is reported after damage to an entry.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        broken(d);
        test::write_file(d / "checkpoints",
                         test::read_file(d / "checkpoints") + "a\nb\n\nnot a signature\n");
        auto lines = testing::read_lines(d / segment(2));
        lines[5][0] = '[';
        testing::write_lines(d / segment(2), lines);
    }));
    EXPECT_EQ(r.finding->reason, "audit.entry_malformed");

    // A torn final checkpoint is residue, reported with the finding of an earlier one.
    r = expect_as_reference(tampered([&](const fs::path& d) {
        broken(d);
        test::write_file(d / "checkpoints",
                         test::read_file(d / "checkpoints") + cps.back().note.substr(0, 40));
    }));
    EXPECT_EQ(r.finding->reason, "audit.checkpoint_signature_invalid");
    ASSERT_TRUE(r.torn_checkpoint.has_value());
    EXPECT_EQ(r.torn_checkpoint->length, 40u);

    r = expect_as_reference(tampered([](const fs::path& d) { fs::remove(d / "checkpoints"); }));
    EXPECT_EQ(r.finding->reason, "audit.no_checkpoint");
}

// Many small segments (a few entries each) and a checkpoint every 7 entries.
TEST_F(StreamingVerify, VerifiesManySmallSegmentsAndCheckpoints) {
    write_log(dir(), 300, 4096, 7);
    const Reference ref = reference(dir(), verifier());
    ASSERT_FALSE(ref.finding.has_value());
    ASSERT_GE(ref.scan->segments.size(), 20u);
    ASSERT_GE(ref.scan->checkpoints.size(), 20u);
    const VerifyReport r = expect_as_reference(dir());
    EXPECT_EQ(r.size, 300u);
    EXPECT_EQ(r.checkpoints, ref.scan->checkpoints.size());

    for (std::uint64_t s : {0u, 5u, 11u}) {
        const VerifyReport t = expect_as_reference(tampered([s](const fs::path& d) {
            auto lines = testing::read_lines(d / segment(s));
            lines.back().replace(lines.back().find("license-server-eu"), 7, "LICENSE");
            testing::write_lines(d / segment(s), lines);
        }));
        EXPECT_EQ(t.finding->reason, "audit.root_mismatch");
    }
}

}  // namespace
}  // namespace licentra::audit
