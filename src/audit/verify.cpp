#include "audit/verify.hpp"

#include <utility>

#include "audit/entry.hpp"

namespace licentra::audit {

namespace {

// One pass over a log directory: the entries are read once, in order, and nothing grows with the
// log but the lifecycle facts. The tree is a compact range (one hash per set bit of its size);
// each stored checkpoint is read from the checkpoints file when the previous one has matched,
// opened at once, and compared with the compact range's root when the scan reaches its size.
//
// Findings keep the precedence of reading everything first and checking afterwards: an entry
// finding (the scan stops there) before a checkpoints-file finding (record_finding, read to the
// end in any case) before the first checkpoint that fails (check_finding) before the rest.
class StreamingVerifier {
  public:
    StreamingVerifier(const VerifyOptions& options, const NoteVerifier& verifier)
        : records_(options.dir),
          sequence_(verifier, options.origin),
          collect_facts_(options.collect_facts) {
        if (options.trusted_checkpoint) {
            trusted_.emplace(verifier.open_checkpoint(*options.trusted_checkpoint));
        }
        advance(false, nullptr);  // checkpoints of size 0
    }

    void on_entry(const ScannedEntry& e) {
        if (e.index == sequence_.previous_size()) {
            from_ = EntryPosition{std::string(e.file), e.offset};
            from_index_ = e.index;
        }
        if (position_wanted_ && *position_wanted_ == e.index) {
            check_finding_->file = std::string(e.file);
            check_finding_->offset = e.offset;
            position_wanted_.reset();
        }
        if (e.entry == nullptr && !unvouched_) {
            unvouched_ = Unvouched{e.index, std::string(e.file), e.offset};
        }
        range_.append(e.leaf);
        // A pruned entry has no payload left to gather facts from.
        if (collect_facts_ && e.entry != nullptr) facts_.add(*e.entry);
        advance(false, nullptr);
    }

    // After the last entry: the checkpoints beyond the log's size, then the rest of the file.
    void finish(const EntriesScan& scan) {
        advance(true, &scan);
        while (!record_finding_ && !records_done_) {
            Finding f;
            auto record = records_.next(&f);
            if (!record) {
                record_finding_ = std::move(f);
            } else if (!*record) {
                records_done_ = true;
            }
        }
    }

    [[nodiscard]] const std::optional<Finding>& record_finding() const { return record_finding_; }
    [[nodiscard]] const std::optional<Finding>& check_finding() const { return check_finding_; }
    [[nodiscard]] const CheckpointRecords& records() const { return records_; }
    [[nodiscard]] std::size_t checkpoints() const { return checkpoints_; }
    [[nodiscard]] const std::optional<Checkpoint>& newest() const { return newest_; }
    [[nodiscard]] const std::optional<core::Result<Checkpoint>>& trusted() const {
        return trusted_;
    }
    // The root at the trusted checkpoint's size, once the scan passed it.
    [[nodiscard]] const std::optional<Hash>& trusted_root() const { return trusted_root_; }
    [[nodiscard]] LifecycleFacts take_facts() { return std::move(facts_); }

    // The first pruned entry after the last checkpoint that matched, if any.
    struct Unvouched {
        std::uint64_t index = 0;
        std::string file;
        std::uint64_t offset = 0;
    };
    [[nodiscard]] const std::optional<Unvouched>& unvouched() const { return unvouched_; }

  private:
    struct Pending {
        StoredCheckpoint stored;
        Checkpoint checkpoint;
    };

    // Checks every checkpoint that is due at the current tree size; at_end: the log has no more
    // entries (scan describes it).
    void advance(bool at_end, const EntriesScan* scan) {
        const std::uint64_t n = range_.size();
        if (trusted_ && *trusted_ && (*trusted_)->size == n) trusted_root_ = range_.root();
        while (!record_finding_ && !check_finding_) {
            Finding f;
            if (!pending_) {
                if (records_done_) return;
                auto record = records_.next(&f);
                if (!record) {
                    record_finding_ = std::move(f);
                    return;
                }
                if (!*record) {
                    records_done_ = true;
                    return;
                }
                ++checkpoints_;
                auto cp = sequence_.open(**record, &f);
                if (!cp) {
                    check_finding_ = std::move(f);
                    return;
                }
                newest_ = *cp;
                pending_ = Pending{std::move(**record), std::move(cp).value()};
            }
            // A checkpoint is opened only once the previous one matched at a size <= its own
            // (audit.checkpoint_order otherwise), so the scan never passes a pending size.
            if (pending_->checkpoint.size > n) {
                if (!at_end) return;
                const SegmentInfo* last = scan->segments.empty() ? nullptr : &scan->segments.back();
                (void)CheckpointSequence::truncated(pending_->checkpoint, n, last, &f);
                check_finding_ = std::move(f);
                return;
            }
            const std::uint64_t from = sequence_.previous_size();
            std::optional<EntryPosition> position;
            if (from < n && from_index_ == from) position = from_;
            auto st = sequence_.match(pending_->stored, std::move(pending_->checkpoint),
                                      range_.root(), position, &f);
            pending_.reset();
            // A checkpoint matches when the scan is at its size: it covers every entry read.
            if (st) unvouched_.reset();
            if (!st) {
                check_finding_ = std::move(f);
                // The first entry not covered is the next one to be read, if the log has it.
                if (from == n) position_wanted_ = from;
                return;
            }
        }
    }

    CheckpointRecords records_;
    CheckpointSequence sequence_;
    CompactRange range_;
    bool collect_facts_;
    LifecycleFacts facts_;
    std::optional<Pending> pending_;
    bool records_done_ = false;
    std::size_t checkpoints_ = 0;
    std::optional<Checkpoint> newest_;
    std::optional<Finding> record_finding_;
    std::optional<Finding> check_finding_;
    // Where entry previous_size() starts, for a root mismatch: read as the scan passes it.
    std::optional<EntryPosition> from_;
    std::uint64_t from_index_ = 0;
    std::optional<std::uint64_t> position_wanted_;
    std::optional<core::Result<Checkpoint>> trusted_;
    std::optional<Hash> trusted_root_;
    std::optional<Unvouched> unvouched_;
};

}  // namespace

VerifyReport verify_log_directory(const VerifyOptions& options, const NoteVerifier& verifier) {
    VerifyReport report;
    auto fail = [&](Finding f) {
        report.status = f.kind == core::ErrorKind::integrity ? VerifyStatus::tampered
                                                             : VerifyStatus::unreadable;
        report.finding = std::move(f);
        return report;
    };
    StreamingVerifier stream(options, verifier);
    Finding finding;
    auto scan = scan_log_entries(
        options.dir, [&](const ScannedEntry& e) { stream.on_entry(e); }, &finding);
    if (!scan) return fail(std::move(finding));
    stream.finish(*scan);
    if (stream.record_finding()) return fail(*stream.record_finding());
    report.size = scan->size;
    report.torn_log = scan->torn_log;
    report.torn_checkpoint = stream.records().torn();
    report.pruned = scan->pruned;
    report.segments = scan->segments;
    if (stream.check_finding()) return fail(*stream.check_finding());
    if (const auto& u = stream.unvouched()) {
        const std::uint64_t covered = stream.newest() ? stream.newest()->size : 0;
        return fail(pruned_unsigned(u->file, u->offset, u->index, covered));
    }
    if (stream.checkpoints() == 0) {
        return fail(Finding{core::ErrorKind::integrity, "audit.no_checkpoint",
                            std::string(kCheckpointsFile), 0, std::nullopt,
                            "the log has no signed checkpoint"});
    }
    report.checkpoints = stream.checkpoints();
    const Checkpoint& newest = *stream.newest();  // set: every record was opened
    report.newest = newest;
    report.unsigned_entries = report.size - newest.size;

    if (const auto& trusted = stream.trusted()) {
        if (!*trusted) {
            return fail(Finding{core::ErrorKind::integrity, trusted->error().code, "", 0,
                                std::nullopt, "trusted checkpoint: " + trusted->error().message});
        }
        const Checkpoint& t = **trusted;
        if (t.origin != newest.origin) {
            return fail(Finding{core::ErrorKind::integrity, "audit.anchor_mismatch", "", 0,
                                std::nullopt, "trusted checkpoint has another origin"});
        }
        if (t.size > report.size || t.size > newest.size) {
            return fail(Finding{core::ErrorKind::integrity, "audit.rolled_back",
                                std::string(kCheckpointsFile), stream.records().bytes(),
                                report.size,
                                "the trusted checkpoint signed " + std::to_string(t.size) +
                                    " entries; this copy of the log is older"});
        }
        if (*stream.trusted_root() != t.root) {
            return fail(Finding{core::ErrorKind::integrity, "audit.anchor_mismatch", "", 0,
                                std::nullopt,
                                "the log does not contain the trusted checkpoint's tree"});
        }
    }
    if (options.collect_facts) report.facts = stream.take_facts();
    report.status = VerifyStatus::verified;
    return report;
}

MultiVerifyReport verify_log_directories(const std::vector<LogToVerify>& logs) {
    MultiVerifyReport out;
    if (logs.empty()) return out;  // nothing verified: unreadable
    out.logs.reserve(logs.size());
    bool tampered = false;
    bool unreadable = false;
    std::vector<CrossLog> cross;
    std::vector<std::size_t> position;  // cross[k] is logs[position[k]]
    for (std::size_t i = 0; i < logs.size(); ++i) {
        VerifyOptions options = logs[i].options;
        options.collect_facts = true;
        VerifyReport r = verify_log_directory(options, *logs[i].verifier);
        switch (r.status) {
            case VerifyStatus::verified:
                cross.push_back({r.newest->origin, std::move(*r.facts)});
                r.facts.reset();
                position.push_back(i);
                break;
            case VerifyStatus::tampered:
                tampered = true;
                break;
            case VerifyStatus::unreadable:
            default:
                unreadable = true;
                break;
        }
        out.logs.push_back(std::move(r));
    }
    out.cross_checked = cross.size();
    out.contradictions = cross_check(cross);
    for (auto& c : out.contradictions) {
        c.first.log = position[c.first.log];
        c.second.log = position[c.second.log];
    }
    if (tampered || !out.contradictions.empty()) {
        out.status = VerifyStatus::tampered;
    } else if (unreadable) {
        out.status = VerifyStatus::unreadable;
    } else {
        out.status = VerifyStatus::verified;
    }
    return out;
}

}  // namespace licentra::audit
