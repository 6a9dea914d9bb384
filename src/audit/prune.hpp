// Payload pruning: `licentra audit prune --before DATE` (docs/audit.md#pruning,
// docs/adr/0005-audit-payload-pruning.md). Replaces the entry lines of entries older than a date
// by pruned records holding their leaf hashes, so the tree, every checkpoint and every proof
// still verify. Offline only: it runs on a copy of the directory or on a stopped daemon's.
#pragma once

#include <cstdint>
#include <filesystem>
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
    std::uint64_t newly_pruned = 0;              // entries this run pruned
    std::vector<PrunedRange> pruned;             // every pruned entry after this run, merged
    std::vector<std::string> rewritten;          // segment files replaced
    std::vector<std::string> leftovers_removed;  // temporary files of an interrupted prune
};

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
