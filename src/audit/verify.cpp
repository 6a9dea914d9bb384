#include "audit/verify.hpp"

namespace licentra::audit {

VerifyReport verify_log_directory(const VerifyOptions& options, const NoteVerifier& verifier) {
    VerifyReport report;
    auto fail = [&](Finding f) {
        report.status = f.kind == core::ErrorKind::integrity ? VerifyStatus::tampered
                                                             : VerifyStatus::unreadable;
        report.finding = std::move(f);
        return report;
    };
    Finding finding;
    auto scan = scan_log_directory(options.dir, &finding);
    if (!scan) return fail(std::move(finding));
    report.size = scan->tree.size();
    report.torn_log = scan->torn_log;
    report.torn_checkpoint = scan->torn_checkpoint;
    if (auto st = check_checkpoints(*scan, verifier, options.origin, &finding); !st) {
        return fail(std::move(finding));
    }
    if (scan->checkpoints.empty()) {
        return fail(Finding{core::ErrorKind::integrity, "audit.no_checkpoint",
                            std::string(kCheckpointsFile), 0, std::nullopt,
                            "the log has no signed checkpoint"});
    }
    report.checkpoints = scan->checkpoints.size();
    report.newest = *verifier.open_checkpoint(scan->checkpoints.back().note);
    report.unsigned_entries = report.size - report.newest->size;

    if (options.trusted_checkpoint) {
        auto trusted = verifier.open_checkpoint(*options.trusted_checkpoint);
        if (!trusted) {
            return fail(Finding{core::ErrorKind::integrity, trusted.error().code, "", 0,
                                std::nullopt, "trusted checkpoint: " + trusted.error().message});
        }
        if (trusted->origin != report.newest->origin) {
            return fail(Finding{core::ErrorKind::integrity, "audit.anchor_mismatch", "", 0,
                                std::nullopt, "trusted checkpoint has another origin"});
        }
        if (trusted->size > report.size || trusted->size > report.newest->size) {
            return fail(Finding{core::ErrorKind::integrity, "audit.rolled_back",
                                std::string(kCheckpointsFile), scan->checkpoints_bytes, report.size,
                                "the trusted checkpoint signed " + std::to_string(trusted->size) +
                                    " entries; this copy of the log is older"});
        }
        if (*scan->tree.root(trusted->size) != trusted->root) {
            return fail(Finding{core::ErrorKind::integrity, "audit.anchor_mismatch", "", 0,
                                std::nullopt,
                                "the log does not contain the trusted checkpoint's tree"});
        }
    }
    report.status = VerifyStatus::verified;
    return report;
}

}  // namespace licentra::audit
