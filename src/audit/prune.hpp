// Payload pruning: `licentra audit prune --before DATE` (docs/audit.md#pruning,
// docs/adr/0005-audit-payload-pruning.md). Replaces the entry lines of entries older than a date
// by pruned records holding their leaf hashes, so the tree, every checkpoint and every proof
// still verify. prune_log_directory runs offline, on a copy of the directory or on a stopped
// daemon's; AuditLog::prune_before runs the same rewriting step (prune_segments) on a running log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/file_ops.hpp"
#include "audit/pruned.hpp"
#include "audit/store.hpp"
#include "core/result.hpp"
#include "core/time.hpp"

namespace licentra::audit {

// A segment being rewritten is written to "<segment>" + kPruneTempSuffix, synced, then renamed
// over the segment. A leftover one is crash residue of an interrupted prune: every reader
// ignores it (it is not a segment name) and the next prune removes it.
inline constexpr std::string_view kPruneTempSuffix = ".prune-tmp";

struct PruneOptions {
    std::filesystem::path dir;
    // Entries whose time is strictly before this lose their payloads.
    core::TimePoint before{};
    std::optional<std::string> origin;  // required checkpoint origin; default: the first's
    FileOps* file_ops = nullptr;        // default posix_file_ops()
};

struct PruneReport {
    std::uint64_t size = 0;               // entries in the log
    std::uint64_t newest_checkpoint = 0;  // the newest verified checkpoint's size
    // Entries below this index may be pruned: the newest checkpoint's size, or the first entry of
    // the last (open) segment if that is lower.
    std::uint64_t limit = 0;
    std::uint64_t newly_pruned = 0;                // entries this run pruned
    std::vector<PrunedRange> newly_pruned_ranges;  // those entries, merged
    std::vector<PrunedRange> pruned;               // every pruned entry after this run, merged
    std::vector<std::string> rewritten;            // segment files replaced
    std::vector<std::string> leftovers_removed;    // temporary files of an interrupted prune
};

// A segment rewritten with its pruned records, ready to replace the original.
struct RewrittenSegment {
    std::string file;
    std::uint64_t first_index = 0;
    // Byte offset in the rewritten file of each of its entries, from first_index on (of the
    // pruned record that holds it, for a pruned entry), and the file's length.
    std::vector<std::uint64_t> offsets;
    std::uint64_t bytes = 0;
    std::vector<PrunedRange> pruned;  // every pruned entry of the segment, merged
};

// How the rewriting step reaches the one who holds the log (AuditLog::prune_before); empty
// members keep the offline behaviour.
struct PruneHooks {
    // For each entry about to be pruned: whether leaf is its leaf hash in the tree already
    // verified; false stops the prune with integrity "audit.entry_changed" (the segment was
    // changed on disk since), so pruning never launders a changed entry's hash into a record.
    std::function<bool(std::uint64_t index, const Hash& leaf)> check_leaf;
    // Replaces the segment: must call rename() (the atomic rename of the synced temporary file
    // over the segment) and return its status. Lets the caller hold the lock its readers take
    // and publish the new offsets in the same step.
    std::function<core::Status(const RewrittenSegment& segment,
                               const std::function<core::Status()>& rename)>
        commit;
};

// Removes the temporary files an interrupted prune left in dir (kPruneTempSuffix) and syncs
// dir_fd if it removed any; returns their names. The caller holds the directory lock.
[[nodiscard]] core::Result<std::vector<std::string>> remove_prune_leftovers(
    const std::filesystem::path& dir, FileOps& ops, int dir_fd);

// The rewriting step shared by prune_log_directory and AuditLog::prune_before: scans the log
// (scan_log_entries) and rewrites each segment other than last_segment that holds an entry
// whose time is before `before` and whose index is below limit, as described below. Fills
// report's newly_pruned, newly_pruned_ranges, pruned and rewritten. Segments other than
// last_segment must not be written meanwhile; last_segment may be appended to. Errors: those
// of scan_log_entries (with *finding), "audit.entry_changed", "audit.io_error".
[[nodiscard]] core::Status prune_segments(const std::filesystem::path& dir, FileOps& ops,
                                          int dir_fd, core::TimePoint before, std::uint64_t limit,
                                          const std::string& last_segment, const PruneHooks& hooks,
                                          PruneReport& report, Finding* finding);

// Takes the directory lock (as AuditLog::open does), removes leftover temporary files, verifies
// the whole log with verifier (as verify_log_directory does: nothing is pruned from a log that
// does not verify, since pruning would remove the evidence), then rewrites each segment but the
// last that holds an entry to prune below limit: temporary file, fsync, rename, fsync of the
// directory, one segment at a time, so a crash leaves each segment either whole or pruned.
// Idempotent: a second run with the same date changes nothing. Kept entries keep their bytes.
//
// Errors: conflict "audit.locked" (a daemon has the log open); integrity or unavailable with
// the verification finding in *finding (the log does not verify or cannot be read);
// unavailable "audit.io_error" when writing fails (the segment being rewritten stays as it was).
// Not thread-safe; the directory must not be written meanwhile (the lock ensures that for
// AuditLog).
[[nodiscard]] core::Result<PruneReport> prune_log_directory(const PruneOptions& options,
                                                            const NoteVerifier& verifier,
                                                            Finding* finding);

}  // namespace licentra::audit
