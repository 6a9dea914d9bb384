// The on-disk layout of an audit log directory, and a read-only scan of it shared by the
// writer's recovery at open and the offline verifier.
//
//   <dir>/log-000000.jsonl, log-000001.jsonl, ...  entries, one canonical JSON object per line
//   <dir>/checkpoints                              signed notes, appended, oldest first
//   <dir>/lock                                     flock(2) held by the one writer
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "audit/merkle.hpp"
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
    std::vector<std::uint64_t> offsets;  // byte offset of each entry in its segment
    std::optional<TornTail> torn_log;
    std::vector<StoredCheckpoint> checkpoints;
    std::uint64_t checkpoints_bytes = 0;  // complete records only
    std::optional<TornTail> torn_checkpoint;
};

// Reads every segment and the checkpoints file without modifying anything. Each line must parse
// strictly (parse_entry) with seq equal to its position. A torn final line of the last segment,
// or a torn final checkpoint record, is reported in torn_* and excluded; anything else fails and
// fills *finding. Reasons (integrity unless noted): audit.dir_unreadable (unavailable),
// audit.no_log (unavailable; no segment at all), audit.segment_missing, audit.segment_empty,
// audit.segment_unterminated, audit.entry_malformed, audit.entry_not_canonical, audit.seq_gap,
// audit.seq_repeat, audit.seq_swapped, audit.checkpoint_record_malformed.
[[nodiscard]] core::Result<LogScan> scan_log_directory(const std::filesystem::path& dir,
                                                       Finding* finding);

class NoteVerifier;

// Checks the scanned checkpoints against the tree: each signed by verifier, same origin
// (expected_origin if given, else the first checkpoint's), sizes non-decreasing, no larger than
// the log, root equal to the tree's root at that size, and each consistent with the next
// (RFC 9162 consistency proof built and verified). Reasons: audit.checkpoint_signature_invalid,
// audit.checkpoint_unsigned, audit.note_malformed, audit.checkpoint_malformed,
// audit.checkpoint_origin, audit.checkpoint_order, audit.truncated, audit.root_mismatch,
// audit.consistency_proof_invalid.
[[nodiscard]] core::Status check_checkpoints(const LogScan& scan, const NoteVerifier& verifier,
                                             const std::optional<std::string>& expected_origin,
                                             Finding* finding);

}  // namespace licentra::audit
