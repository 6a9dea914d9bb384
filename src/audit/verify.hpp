// The offline verifier behind `licentra audit verify`: needs only a copy of the log directory
// and the checkpoint verifier key, never the daemon or the HSM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/cross_check.hpp"
#include "audit/store.hpp"

namespace licentra::audit {

struct VerifyOptions {
    std::filesystem::path dir;
    std::optional<std::string> origin;  // required origin; default: the first checkpoint's
    // A checkpoint the auditor obtained independently (e.g. read from the HSM anchor or kept
    // from an earlier audit). The log must contain it: a shorter log is "audit.rolled_back", a
    // different root "audit.anchor_mismatch".
    std::optional<std::string> trusted_checkpoint;
    // Also gather the facts the cross-check needs (VerifyReport::facts), in the same pass.
    bool collect_facts = false;
};

enum class VerifyStatus { verified, tampered, unreadable };

struct VerifyReport {
    VerifyStatus status = VerifyStatus::unreadable;
    std::optional<Finding> finding;    // the first problem, when not verified
    std::uint64_t size = 0;            // entries read
    std::size_t checkpoints = 0;       // checkpoints verified
    std::optional<Checkpoint> newest;  // newest verified checkpoint
    std::optional<TornTail> torn_log;  // crash residue, not counted as tampering
    std::optional<TornTail> torn_checkpoint;
    std::uint64_t unsigned_entries = 0;  // entries after the newest checkpoint
    // Entries whose payloads were pruned (leaf hashes kept), merged into ranges, in order. They
    // count in size and in the tree like any entry; they are not tampering.
    std::vector<PrunedRange> pruned;
    std::vector<SegmentInfo> segments;  // the segment files read, in order
    // With collect_facts, when verified: gathered from exactly the entries that were verified.
    std::optional<LifecycleFacts> facts;
};

// Recomputes the whole tree from the entries, checks every entry strictly, every checkpoint's
// signature, that each checkpoint matches the tree (and so is consistent with the next: both
// roots are recomputed from the same entries), and the trusted checkpoint if given. A log
// without any checkpoint is tampered ("audit.no_checkpoint"): open() always signs one. A pruned
// entry counts by the leaf hash its record kept (VerifyReport::pruned); one that no checkpoint
// covers is tampered ("audit.pruned_unsigned", checked before "audit.no_checkpoint", as
// check_checkpoints does). Never modifies the directory.
//
// One streaming pass: segments and the checkpoints file are read through fixed buffers, the
// tree is kept as a compact range (O(log n) hashes) and each checkpoint is compared with it
// when the scan reaches the checkpoint's size. Memory does not grow with the log, except the
// lifecycle facts (one record per distinct (key, version, kid) and per execution). The findings
// are those of scan_log_directory followed by check_checkpoints, with the same precedence.
[[nodiscard]] VerifyReport verify_log_directory(const VerifyOptions& options,
                                                const NoteVerifier& verifier);

// One directory of a multi-log verification and the key its checkpoints are checked with.
struct LogToVerify {
    VerifyOptions options;           // collect_facts is set by verify_log_directories
    const NoteVerifier* verifier{};  // not null; outlives the call
};

struct MultiVerifyReport {
    // The worst outcome: tampered if a log is tampered or the logs contradict each other, else
    // unreadable if a log cannot be read, else verified.
    VerifyStatus status = VerifyStatus::unreadable;
    std::vector<VerifyReport> logs;  // in the order given
    // Contradictions between the logs that verified (cross_check()); EntryRef::log is a
    // position in logs. Logs that did not verify are left out of the cross-check.
    std::vector<CrossFinding> contradictions;
    std::size_t cross_checked = 0;  // how many logs took part in the cross-check
};

// Verifies every directory with verify_log_directory, then cross-checks the logs that verified
// (origins from their newest checkpoints). Nothing stops at the first bad log: every log gets
// its own report. Never modifies a directory. Precondition: every verifier is not null.
[[nodiscard]] MultiVerifyReport verify_log_directories(const std::vector<LogToVerify>& logs);

}  // namespace licentra::audit
