#include "audit/verify.hpp"

#include <fstream>
#include <sstream>

#include "audit/entry.hpp"

namespace licentra::audit {

namespace {

namespace fs = std::filesystem;

// Reads the entries of a scanned log again and adds each to facts. Every line must still hash to
// the leaf the scan computed, so the facts describe exactly the entries that were verified and
// not a file replaced in between. Findings: audit.file_unreadable (unavailable),
// audit.log_changed (integrity).
std::optional<Finding> gather_facts(const fs::path& dir, const LogScan& scan,
                                    LifecycleFacts& facts) {
    for (std::size_t s = 0; s < scan.segments.size(); ++s) {
        const SegmentInfo& seg = scan.segments[s];
        const std::uint64_t end =
            s + 1 < scan.segments.size() ? scan.segments[s + 1].first_index : scan.tree.size();
        std::string data;
        {
            std::ifstream in(dir / seg.file, std::ios::binary);
            std::ostringstream ss;
            if (in) ss << in.rdbuf();
            if (!in || in.bad()) {
                return Finding{core::ErrorKind::unavailable,
                               "audit.file_unreadable",
                               seg.file,
                               0,
                               std::nullopt,
                               "cannot read file"};
            }
            data = std::move(ss).str();
        }
        for (std::uint64_t i = seg.first_index; i < end; ++i) {
            const std::uint64_t begin = scan.offsets[i];
            const std::uint64_t stop = i + 1 < end ? scan.offsets[i + 1] : seg.bytes;
            auto changed = [&] {
                return Finding{core::ErrorKind::integrity,
                               "audit.log_changed",
                               seg.file,
                               begin,
                               i,
                               "the entry changed while the log was being verified"};
            };
            if (stop <= begin || stop > data.size() || data[stop - 1] != '\n') return changed();
            const std::string_view line(data.data() + begin, stop - begin - 1);
            if (leaf_hash(core::as_bytes(line)) != scan.tree.leaf(i)) return changed();
            auto entry = parse_entry(line);
            if (!entry) return changed();
            facts.add(*entry);
        }
    }
    return std::nullopt;
}

}  // namespace

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
    if (options.collect_facts) {
        LifecycleFacts facts;
        if (auto f = gather_facts(options.dir, *scan, facts)) return fail(std::move(*f));
        report.facts = std::move(facts);
    }
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
