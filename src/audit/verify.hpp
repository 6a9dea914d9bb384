// The offline verifier behind `licentra audit verify`: needs only a copy of the log directory
// and the checkpoint verifier key, never the daemon or the HSM.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "audit/checkpoint.hpp"
#include "audit/store.hpp"

namespace licentra::audit {

struct VerifyOptions {
    std::filesystem::path dir;
    std::optional<std::string> origin;  // required origin; default: the first checkpoint's
    // A checkpoint the auditor obtained independently (e.g. read from the HSM anchor or kept
    // from an earlier audit). The log must contain it: a shorter log is "audit.rolled_back", a
    // different root "audit.anchor_mismatch".
    std::optional<std::string> trusted_checkpoint;
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
};

// Recomputes the whole tree from the entries, checks every entry strictly, every checkpoint's
// signature, that each checkpoint matches the tree and is consistent with the next, and the
// trusted checkpoint if given. A log without any checkpoint is tampered
// ("audit.no_checkpoint"): open() always signs one. Never modifies the directory.
[[nodiscard]] VerifyReport verify_log_directory(const VerifyOptions& options,
                                                const NoteVerifier& verifier);

}  // namespace licentra::audit
