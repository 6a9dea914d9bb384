// The on-disk layout of an audit log directory, and a read-only scan of it shared by the
// writer's recovery at open and the offline verifier.
//
//   <dir>/log-000000.jsonl, log-000001.jsonl, ...  entries, one canonical JSON object per line
//   <dir>/checkpoints                              signed notes, appended, oldest first
//   <dir>/lock                                     flock(2) held by the one writer
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/merkle.hpp"
#include "audit/pruned.hpp"
#include "core/result.hpp"

namespace licentra::audit {

inline constexpr std::string_view kCheckpointsFile = "checkpoints";
inline constexpr std::string_view kLockFile = "lock";

// "log-000042.jsonl" for segment 42.
[[nodiscard]] std::string segment_file_name(std::uint64_t segment);

// Something wrong in the directory, located as precisely as the data allows.
struct Finding {
    core::ErrorKind kind =
        core::ErrorKind::integrity;      // integrity: tampered; unavailable: unreadable
    std::string reason;                  // stable code, e.g. "audit.seq_gap"
    std::string file;                    // file name inside the directory, empty if none
    std::uint64_t offset = 0;            // byte offset in file
    std::optional<std::uint64_t> index;  // entry index (leaf), when one is concerned
    std::string message;

    // "<file> at byte <offset>[, entry <index>]: <message>" as an Error (kind, reason).
    [[nodiscard]] core::Error to_error() const;
};

// A final record cut short by a crash: bytes [offset, offset + length) of file.
struct TornTail {
    std::string file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

struct SegmentInfo {
    std::string file;
    std::uint64_t first_index = 0;
    std::uint64_t bytes = 0;  // complete lines only (torn tail excluded)
};

struct StoredCheckpoint {
    std::string note;          // the signed note text
    std::uint64_t offset = 0;  // in the checkpoints file
};

struct LogScan {
    MerkleTree tree;  // every leaf hash
    std::vector<SegmentInfo> segments;
    // Byte offset of each entry in its segment; for a pruned entry, the offset of the pruned
    // record that holds its leaf hash.
    std::vector<std::uint64_t> offsets;
    std::vector<PrunedRange> pruned;  // entries whose payloads were pruned, merged, in order
    std::optional<TornTail> torn_log;
    std::vector<StoredCheckpoint> checkpoints;
    std::uint64_t checkpoints_bytes = 0;  // complete records only
    std::optional<TornTail> torn_checkpoint;
};

// Reads every segment and the checkpoints file without modifying anything. Each line must parse
// strictly (parse_entry) with seq equal to its position, or be a pruned record
// (parse_pruned_record) whose first equals its position; a record stands for its leaf hashes. A
// torn final line of the last segment, or a torn final checkpoint record, is reported in torn_* and
// excluded; anything else fails and fills *finding. Reasons (integrity unless noted):
// audit.dir_unreadable (unavailable), audit.no_log (unavailable; no segment at all),
// audit.segment_missing, audit.segment_empty, audit.segment_unterminated, audit.entry_malformed,
// audit.entry_not_canonical, audit.seq_gap, audit.seq_repeat, audit.seq_swapped,
// audit.pruned_malformed, audit.pruned_count_mismatch, audit.checkpoint_record_malformed. Built on
// scan_log_entries and CheckpointRecords; keeps every leaf hash and offset (LogScan).
[[nodiscard]] core::Result<LogScan> scan_log_directory(const std::filesystem::path& dir,
                                                       Finding* finding);

struct Entry;

// One entry as scan_log_entries passes it. The views are valid during the callback only.
// A pruned entry has no payload: entry is null and line is its pruned record's whole line
// (shared by every entry of the record); leaf is the hash the record kept.
struct ScannedEntry {
    std::uint64_t index = 0;       // == entry->seq
    std::string_view file;         // its segment
    std::uint64_t offset = 0;      // byte offset in the segment (of the record, if pruned)
    std::string_view line;         // the canonical line, without '\n'
    const Entry* entry = nullptr;  // parse_entry(line); null if pruned
    Hash leaf{};                   // leaf_hash(line), or the kept hash if pruned
};

// What scan_log_entries read.
struct EntriesScan {
    std::uint64_t size = 0;  // entries, pruned ones included
    std::vector<PrunedRange> pruned;
    std::vector<SegmentInfo> segments;
    std::optional<TornTail> torn_log;
};

// The entry part of scan_log_directory, streaming: reads the segments in order through a fixed
// buffer (never a whole segment), checks every line as scan_log_directory does and calls
// on_entry once per entry, in index order, before reading on. Memory does not grow with the
// log. The same findings as scan_log_directory's, except audit.checkpoint_record_malformed.
[[nodiscard]] core::Result<EntriesScan> scan_log_entries(
    const std::filesystem::path& dir, const std::function<void(const ScannedEntry&)>& on_entry,
    Finding* finding);

class LineReader;

// The records of <dir>/checkpoints, read one at a time through a buffer: the checkpoint part of
// scan_log_directory. A missing file has no records. Not thread-safe.
class CheckpointRecords {
  public:
    explicit CheckpointRecords(std::filesystem::path dir);
    ~CheckpointRecords();
    CheckpointRecords(const CheckpointRecords&) = delete;
    CheckpointRecords& operator=(const CheckpointRecords&) = delete;

    // The next complete record (its note text and offset), or nullopt at the end of the file or
    // at a torn final record (torn()). Fills *finding on audit.file_unreadable (unavailable) or
    // audit.checkpoint_record_malformed; after nullopt or an error, returns nullopt.
    [[nodiscard]] core::Result<std::optional<StoredCheckpoint>> next(Finding* finding);
    // Set once next() returned nullopt: the torn final record, if any, and the length of the
    // complete records.
    [[nodiscard]] const std::optional<TornTail>& torn() const noexcept { return torn_; }
    [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

  private:
    struct Line;
    core::Status fill(Finding* finding);
    Line take();

    std::filesystem::path path_;
    std::unique_ptr<LineReader> reader_;
    std::unique_ptr<Line> ahead_;  // the next line, read ahead
    bool done_ = false;
    std::optional<TornTail> torn_;
    std::uint64_t bytes_ = 0;
};

// Where an entry starts: its segment and byte offset there.
struct EntryPosition {
    std::string file;
    std::uint64_t offset = 0;
};

// The checks of check_checkpoints, one checkpoint at a time, so that they can run against a
// tree that is still being read: open() each stored checkpoint in order, then, once the tree
// has cp.size leaves, match() it against the tree's root at that size (or report truncated()
// when the log ends first). Not thread-safe; verifier must outlive it.
class CheckpointSequence {
  public:
    CheckpointSequence(const NoteVerifier& verifier, std::optional<std::string> expected_origin);

    // The next stored checkpoint: signed by verifier, with the expected origin (else the first
    // checkpoint's), size not below the previous one's. Reasons: those of
    // NoteVerifier::open_checkpoint, audit.checkpoint_origin, audit.checkpoint_order.
    [[nodiscard]] core::Result<Checkpoint> open(const StoredCheckpoint& stored, Finding* finding);
    // "audit.truncated": cp signs more entries than the log's log_size; last is the log's last
    // segment (nullptr: none).
    [[nodiscard]] static core::Error truncated(const Checkpoint& cp, std::uint64_t log_size,
                                               const SegmentInfo* last, Finding* finding);
    // cp (opened from stored) against root, the tree's root at cp.size; on success cp becomes
    // the previous checkpoint. "audit.root_mismatch" names entry previous_size() (the first one
    // the last matching checkpoint does not cover) at from (nullopt: no such entry).
    [[nodiscard]] core::Status match(const StoredCheckpoint& stored, Checkpoint cp,
                                     const Hash& root, const std::optional<EntryPosition>& from,
                                     Finding* finding);

    // The last checkpoint that matched, and its size (0 before the first).
    [[nodiscard]] const std::optional<Checkpoint>& previous() const noexcept { return previous_; }
    [[nodiscard]] std::uint64_t previous_size() const noexcept {
        return previous_ ? previous_->size : 0;
    }

  private:
    const NoteVerifier* verifier_;
    std::optional<std::string> origin_;
    std::optional<Checkpoint> previous_;
};

// Checks the scanned checkpoints against the tree: each signed by verifier, same origin
// (expected_origin if given, else the first checkpoint's), sizes non-decreasing, no larger than
// the log, root equal to the tree's root at that size, and each consistent with the next
// (RFC 9162 consistency proof built and verified). Reasons: audit.checkpoint_signature_invalid,
// audit.checkpoint_unsigned, audit.note_malformed, audit.checkpoint_malformed,
// audit.checkpoint_origin, audit.checkpoint_order, audit.truncated, audit.root_mismatch,
// audit.consistency_proof_invalid, and audit.pruned_unsigned when a pruned entry lies beyond the
// newest checkpoint (prune never does that: nothing would vouch for the kept hash).
[[nodiscard]] core::Status check_checkpoints(const LogScan& scan, const NoteVerifier& verifier,
                                             const std::optional<std::string>& expected_origin,
                                             Finding* finding);

// The finding "audit.pruned_unsigned" for the first pruned entry (index, in file at offset, the
// offset of its pruned record) that no checkpoint covers; covered: the newest checkpoint's size.
[[nodiscard]] Finding pruned_unsigned(std::string file, std::uint64_t offset, std::uint64_t index,
                                      std::uint64_t covered);

}  // namespace licentra::audit
