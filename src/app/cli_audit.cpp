// `licentra audit ...`: offline tools for auditors. They read a copy of an audit log directory
// and need neither the daemon nor the HSM. See docs/audit.md.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "app/cli.hpp"
#include "audit/checkpoint.hpp"
#include "audit/proof_json.hpp"
#include "audit/prune.hpp"
#include "audit/store.hpp"
#include "audit/verify.hpp"

namespace licentra::app {

namespace {

using nlohmann::json;

constexpr const char* kAuditFooter =
    "Hashes in JSON are base64, as in checkpoints. Exit codes: 0 verified / done, 2 usage, "
    "3 tampered (a log or a checkpoint does not verify, or the logs contradict each other), "
    "4 unreadable (the directory or its files cannot be read), 8 an unreadable key or trusted "
    "checkpoint file. See docs/audit.md.";

constexpr const char* kVerifyFooter =
    "Recompute the Merkle tree from every entry, check every checkpoint signature, that each "
    "checkpoint matches the tree and is consistent with the next, and (with "
    "--trusted-checkpoint) that the log contains a checkpoint obtained independently, e.g. the "
    "one anchored on the HSM. The key FILE holds the signed-note verifier key "
    "<name>+<hex key hash>+<base64 key>. Reports the first problem with its reason.\n"
    "--dir may be repeated to verify the logs of several replicas at once: every log is "
    "verified and reported, then the logs that verified are cross-checked (no (key, version) "
    "with two kids, no request executed twice, no origin twice). --key is given once for all "
    "directories or once per --dir, in order; --origin and --trusted-checkpoint, if given, once "
    "per --dir, in order. Exits with the worst outcome: 3 before 4 before 0.";

constexpr const char* kPruneFooter =
    "Remove the payloads (entry lines) of entries whose time is before DATE, keeping each "
    "entry's leaf hash, so the tree, every checkpoint and every inclusion and consistency proof "
    "still verify. Offline only: run it on a stopped daemon's audit directory or on a copy; it "
    "refuses a directory a running daemon holds locked. The log is verified with --key first and "
    "nothing is pruned from a log that does not verify. Entries after the newest signed "
    "checkpoint and entries of the last (open) segment are never pruned. Running it again with "
    "the same DATE changes nothing. DATE is YYYY-MM-DD (midnight UTC), YYYY-MM-DDThh:mm:ssZ or "
    "YYYY-MM-DDThh:mm:ss.sssZ.\n"
    "Exit codes: 0 done, 2 usage (bad DATE, options or key), 3 the log does not verify (nothing "
    "pruned), 4 the directory cannot be read or written, 7 the directory is locked by a running "
    "daemon, 8 an unreadable key file. See docs/audit.md.";

struct AuditOptions {
    std::vector<std::string> dirs;
    std::vector<std::string> keys;
    std::vector<std::string> origins;
    std::vector<std::string> trusted;
    std::string dir;
    std::uint64_t index = 0;
    std::uint64_t size = 0;
    CLI::Option* size_option = nullptr;  // prove-inclusion: whether --size was given
    std::uint64_t from = 0;
    std::uint64_t to = 0;
    std::string before;
    std::string key;     // prune
    std::string origin;  // prune
    bool json = false;
};

int local_error(const std::string& message) {
    std::cerr << "licentra: " << message << "\n";
    return kExitLocal;
}

int usage_error(const std::string& message) {
    std::cerr << "licentra audit: " << message << "\n";
    return kExitUsage;
}

std::string b64(const audit::Hash& h) { return audit::hash_base64(h); }

json finding_json(const audit::Finding& f) {
    json j = {{"reason", f.reason}, {"message", f.message}};
    if (!f.file.empty()) {
        j["file"] = f.file;
        j["offset"] = f.offset;
    }
    if (f.index) j["index"] = *f.index;
    return j;
}

json torn_json(const audit::TornTail& t) {
    return {{"file", t.file}, {"offset", t.offset}, {"length", t.length}};
}

int scan_failure(const audit::Finding& f) {
    std::cerr << "licentra audit: " << f.to_error().to_string() << "\n";
    return f.kind == core::ErrorKind::integrity ? kExitTampered : kExitUnreadable;
}

// The newest stored checkpoint's parsed body (signature not checked: no key here).
std::optional<audit::Checkpoint> newest_checkpoint(const audit::LogScan& scan) {
    if (scan.checkpoints.empty()) return std::nullopt;
    auto note = audit::parse_signed_note(scan.checkpoints.back().note);
    if (!note) return std::nullopt;
    auto cp = audit::parse_checkpoint_body(note->text);
    if (!cp) return std::nullopt;
    return *cp;
}

const char* status_name(audit::VerifyStatus status) {
    switch (status) {
        case audit::VerifyStatus::verified:
            return "verified";
        case audit::VerifyStatus::tampered:
            return "tampered";
        case audit::VerifyStatus::unreadable:
        default:
            return "unreadable";
    }
}

int exit_code(audit::VerifyStatus status) {
    switch (status) {
        case audit::VerifyStatus::verified:
            return kExitOk;
        case audit::VerifyStatus::tampered:
            return kExitTampered;
        case audit::VerifyStatus::unreadable:
        default:
            return kExitUnreadable;
    }
}

// "entries 0-41" or "entry 5".
std::string range_text(const audit::PrunedRange& r) {
    if (r.count == 1) return "entry " + std::to_string(r.first);
    return "entries " + std::to_string(r.first) + "-" + std::to_string(r.first + r.count - 1);
}

json pruned_json(const std::vector<audit::PrunedRange>& ranges) {
    json out = json::array();
    for (const auto& r : ranges)
        out.push_back({{"first", r.first}, {"last", r.first + r.count - 1}});
    return out;
}

// One log's report as JSON (the whole output of the single-directory form).
json report_json(const audit::VerifyReport& r) {
    json j = {
        {"status", status_name(r.status)}, {"entries", r.size}, {"checkpoints", r.checkpoints}};
    if (r.finding) j["finding"] = finding_json(*r.finding);
    if (r.newest) {
        j["newest_checkpoint"] = {{"origin", r.newest->origin},
                                  {"size", r.newest->size},
                                  {"root_hash", b64(r.newest->root)}};
        j["unsigned_entries"] = r.unsigned_entries;
    }
    if (r.torn_log) j["torn_log"] = torn_json(*r.torn_log);
    if (r.torn_checkpoint) j["torn_checkpoint"] = torn_json(*r.torn_checkpoint);
    // Only a pruned log has the member, so the report of any other log keeps its shape.
    if (r.status == audit::VerifyStatus::verified && !r.pruned.empty()) {
        j["pruned"] = pruned_json(r.pruned);
    }
    return j;
}

// One log's report as text lines, each preceded by prefix (empty in the single-directory form).
void print_report(const audit::VerifyReport& r, const std::string& prefix) {
    if (r.status != audit::VerifyStatus::verified) {
        std::cout << prefix << status_name(r.status) << ": " << r.finding->to_error().to_string()
                  << "\n";
        return;
    }
    std::cout << prefix << "verified: " << r.size << " entries, " << r.checkpoints
              << " checkpoints; newest checkpoint " << r.newest->origin << " size "
              << r.newest->size << " root " << b64(r.newest->root) << "\n";
    for (const auto& range : r.pruned) {
        std::cout << prefix << "note: " << range_text(range)
                  << " pruned (payloads removed, leaf hashes kept)\n";
    }
    if (r.unsigned_entries > 0) {
        std::cout << prefix << "note: " << r.unsigned_entries
                  << " entries after the newest checkpoint are not yet signed\n";
    }
    if (r.torn_log) {
        std::cout << prefix << "note: " << r.torn_log->file
                  << " ends with a partial record at byte " << r.torn_log->offset << " ("
                  << r.torn_log->length
                  << " bytes, crash residue; the daemon cuts it back at start)\n";
    }
    if (r.torn_checkpoint) {
        std::cout << prefix << "note: checkpoints ends with a partial record at byte "
                  << r.torn_checkpoint->offset << " (crash residue)\n";
    }
}

bool same_directory(const std::string& a, const std::string& b) {
    std::error_code ec;
    const bool same = std::filesystem::equivalent(a, b, ec);
    if (!ec) return same;
    return std::filesystem::path(a).lexically_normal() ==
           std::filesystem::path(b).lexically_normal();
}

// A verifier key file: one line <name>+<hex key hash>+<base64 key>.
// On failure *error says why and *unreadable whether the file could not be read at all.
std::optional<audit::NoteVerifier> load_verifier(const std::string& file, std::string* error,
                                                 bool* unreadable) {
    *unreadable = true;
    const auto text = read_local_file(file, error, 1024 * 1024);
    if (!text) return std::nullopt;
    std::string_view key = *text;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.remove_suffix(1);
    *unreadable = false;
    auto verifier = audit::NoteVerifier::parse(key);
    if (!verifier) {
        *error = file + ": " + verifier.error().message;
        return std::nullopt;
    }
    return std::move(*verifier);
}

json entry_ref_json(const audit::EntryRef& ref, const std::vector<std::string>& dirs,
                    const audit::MultiVerifyReport& m) {
    json j = {{"dir", dirs[ref.log]}, {"origin", m.logs[ref.log].newest->origin}};
    if (ref.index) j["index"] = *ref.index;
    return j;
}

// verify with one or several --dir. Options that belong to one log (--key, --origin,
// --trusted-checkpoint) are matched to the directories in order; --key may also be given once
// for all of them (replicas sharing one HSM token sign checkpoints with the same key).
int cmd_verify(const AuditOptions& a) {
    const auto& dirs = a.dirs;
    const auto& keys = a.keys;
    const auto& origins = a.origins;
    const auto& trusted = a.trusted;
    if (dirs.empty()) return usage_error("verify needs --dir DIR and --key FILE");
    if (keys.empty()) return usage_error("verify needs --key FILE: no --key for " + dirs[0]);
    const std::string dir_count = std::to_string(dirs.size()) + " --dir";
    if (keys.size() != 1 && keys.size() != dirs.size()) {
        return usage_error(dir_count + " but " + std::to_string(keys.size()) +
                           " --key: give one --key for all directories or one per --dir, in "
                           "order (no --key for " +
                           dirs[std::min(keys.size(), dirs.size() - 1)] + ")");
    }
    if (!origins.empty() && origins.size() != dirs.size()) {
        return usage_error(dir_count + " but " + std::to_string(origins.size()) +
                           " --origin: give none or one per --dir, in order");
    }
    if (!trusted.empty() && trusted.size() != dirs.size()) {
        return usage_error(dir_count + " but " + std::to_string(trusted.size()) +
                           " --trusted-checkpoint: give none or one per --dir, in order");
    }
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        for (std::size_t k = 0; k < i; ++k) {
            if (same_directory(dirs[k], dirs[i])) {
                return usage_error("--dir " + dirs[i] + " is given twice");
            }
        }
    }

    // Each key file is read once, however many directories use it.
    std::vector<audit::NoteVerifier> verifiers;
    verifiers.reserve(keys.size());
    for (const auto& file : keys) {
        std::string error;
        bool unreadable = false;
        auto v = load_verifier(file, &error, &unreadable);
        if (!v) return unreadable ? local_error(error) : usage_error(error);
        verifiers.push_back(std::move(*v));
    }
    std::vector<audit::LogToVerify> logs;
    for (std::size_t i = 0; i < dirs.size(); ++i) {
        audit::LogToVerify l;
        l.options.dir = dirs[i];
        if (!origins.empty()) l.options.origin = origins[i];
        if (!trusted.empty()) {
            std::string error;
            auto text = read_local_file(trusted[i], &error, 1024 * 1024);
            if (!text) return local_error(error);
            l.options.trusted_checkpoint = *text;
        }
        l.verifier = &verifiers[keys.size() == 1 ? 0 : i];
        logs.push_back(std::move(l));
    }
    const audit::MultiVerifyReport m = audit::verify_log_directories(logs);
    const bool single = dirs.size() == 1;

    if (a.json) {
        json contradictions = json::array();
        for (const auto& c : m.contradictions) {
            contradictions.push_back({{"reason", c.reason},
                                      {"message", c.message},
                                      {"first", entry_ref_json(c.first, dirs, m)},
                                      {"second", entry_ref_json(c.second, dirs, m)}});
        }
        json j;
        if (single) {
            // The single-directory shape, unchanged, plus the contradictions within the log.
            j = report_json(m.logs[0]);
            j["status"] = status_name(m.status);
        } else {
            json per_log = json::array();
            for (std::size_t i = 0; i < dirs.size(); ++i) {
                json l = report_json(m.logs[i]);
                l["dir"] = dirs[i];
                if (m.logs[i].newest) l["origin"] = m.logs[i].newest->origin;
                per_log.push_back(std::move(l));
            }
            j = {{"status", status_name(m.status)},
                 {"logs", std::move(per_log)},
                 {"cross_checked", m.cross_checked}};
        }
        j["contradictions"] = std::move(contradictions);
        std::cout << j.dump(2) << "\n";
        return exit_code(m.status);
    }

    for (std::size_t i = 0; i < dirs.size(); ++i) {
        print_report(m.logs[i], single ? std::string() : dirs[i] + ": ");
    }
    for (const auto& c : m.contradictions) {
        std::cout << "contradiction: " << c.reason << ": " << c.message;
        if (!single) {
            std::cout << " (" << dirs[c.first.log] << ", " << dirs[c.second.log] << ")";
        }
        std::cout << "\n";
    }
    if (!single || !m.contradictions.empty()) {
        auto count = [&](audit::VerifyStatus st) {
            return std::count_if(m.logs.begin(), m.logs.end(),
                                 [st](const audit::VerifyReport& r) { return r.status == st; });
        };
        std::cout << status_name(m.status) << ": " << dirs.size() << " logs, "
                  << count(audit::VerifyStatus::verified) << " verified, "
                  << count(audit::VerifyStatus::tampered) << " tampered, "
                  << count(audit::VerifyStatus::unreadable) << " unreadable, "
                  << m.contradictions.size() << " contradictions across " << m.cross_checked
                  << " cross-checked logs\n";
    }
    return exit_code(m.status);
}

int cmd_checkpoint(const AuditOptions& a) {
    const auto dir = &a.dir;
    audit::Finding f;
    auto scan = audit::scan_log_directory(*dir, &f);
    if (!scan) return scan_failure(f);
    const auto cp = newest_checkpoint(*scan);
    if (!cp) {
        std::cerr << "licentra audit: the log has no readable checkpoint\n";
        return kExitTampered;
    }
    json j = {{"origin", cp->origin},
              {"size", cp->size},
              {"root_hash", b64(cp->root)},
              {"entries", scan->tree.size()},
              {"note", scan->checkpoints.back().note}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
}

int cmd_prove_inclusion(const AuditOptions& a) {
    const auto dir = &a.dir;
    const auto index = &a.index;
    std::optional<std::uint64_t> size;
    if (a.size_option != nullptr && a.size_option->count() > 0) size = a.size;
    audit::Finding f;
    auto scan = audit::scan_log_directory(*dir, &f);
    if (!scan) return scan_failure(f);
    if (!size) {
        const auto cp = newest_checkpoint(*scan);
        size = cp ? cp->size : scan->tree.size();
    }
    auto proof = scan->tree.inclusion_proof(*index, *size);
    if (!proof) return usage_error(proof.error().message);
    for (const auto& r : scan->pruned) {
        if (*index >= r.first && *index - r.first < r.count) {
            std::cerr << "licentra audit: note: entry " << *index
                      << " is pruned (payload removed, leaf hash kept)\n";
        }
    }
    const json j = audit::inclusion_proof_json(*index, *size, scan->tree.leaf(*index),
                                               *scan->tree.root(*size), *proof);
    std::cout << j.dump(2) << "\n";
    return kExitOk;
}

int cmd_prove_consistency(const AuditOptions& a) {
    const auto dir = &a.dir;
    const auto from = &a.from;
    const auto to = &a.to;
    audit::Finding f;
    auto scan = audit::scan_log_directory(*dir, &f);
    if (!scan) return scan_failure(f);
    auto proof = scan->tree.consistency_proof(*from, *to);
    if (!proof) return usage_error(proof.error().message);
    const json j = audit::consistency_proof_json(*from, *to, *scan->tree.root(*from),
                                                 *scan->tree.root(*to), *proof);
    std::cout << j.dump(2) << "\n";
    return kExitOk;
}

// --before: "YYYY-MM-DD" (midnight UTC), "YYYY-MM-DDThh:mm:ssZ" or "YYYY-MM-DDThh:mm:ss.sssZ".
std::optional<core::TimePoint> parse_before(const std::string& text) {
    std::string full = text;
    if (full.size() == 10) {
        full += "T00:00:00.000Z";
    } else if (full.size() == 20 && full.back() == 'Z') {
        full.insert(19, ".000");
    }
    auto t = core::parse_rfc3339_ms(full);
    // The round trip also refuses a date the clock cannot represent (after 2262).
    if (!t || core::format_rfc3339_ms(*t) != full) return std::nullopt;
    return *t;
}

int cmd_prune(const AuditOptions& a) {
    const auto before = parse_before(a.before);
    if (!before) {
        return usage_error("--before " + a.before +
                           ": expected a date YYYY-MM-DD or an RFC 3339 UTC time "
                           "YYYY-MM-DDThh:mm:ss[.sss]Z");
    }
    std::string error;
    bool unreadable = false;
    auto verifier = load_verifier(a.key, &error, &unreadable);
    if (!verifier) return unreadable ? local_error(error) : usage_error(error);

    audit::PruneOptions options;
    options.dir = a.dir;
    options.before = *before;
    if (!a.origin.empty()) options.origin = a.origin;
    audit::Finding finding;
    finding.reason.clear();
    auto report = audit::prune_log_directory(options, *verifier, &finding);
    if (!report) {
        const core::Error& e = report.error();
        if (e.kind == core::ErrorKind::conflict) {
            std::cerr << "licentra audit prune: " << e.to_string() << "\n";
            return kExitConflict;
        }
        if (!finding.reason.empty() && finding.kind == core::ErrorKind::integrity) {
            std::cerr << "licentra audit prune: the log does not verify, nothing was pruned: "
                      << e.to_string() << "\n";
            return kExitTampered;
        }
        std::cerr << "licentra audit prune: " << e.to_string() << "\n";
        return kExitUnreadable;
    }
    const audit::PruneReport& r = *report;
    if (a.json) {
        json j = {{"entries", r.size},
                  {"newest_checkpoint", r.newest_checkpoint},
                  {"limit", r.limit},
                  {"newly_pruned", r.newly_pruned},
                  {"pruned", pruned_json(r.pruned)},
                  {"rewritten", r.rewritten},
                  {"leftovers_removed", r.leftovers_removed}};
        std::cout << j.dump(2) << "\n";
        return kExitOk;
    }
    for (const auto& name : r.leftovers_removed) {
        std::cout << "note: removed " << name << " (left by an interrupted prune)\n";
    }
    std::cout << "pruned: " << r.newly_pruned << " entries before " << a.before << " in "
              << r.rewritten.size() << " segments";
    for (std::size_t i = 0; i < r.rewritten.size(); ++i) {
        std::cout << (i == 0 ? " (" : ", ") << r.rewritten[i];
    }
    std::cout << (r.rewritten.empty() ? "" : ")") << "; the log holds " << r.size
              << " entries, checkpoint size " << r.newest_checkpoint << "\n";
    for (const auto& range : r.pruned) {
        std::cout << range_text(range) << " pruned (payloads removed, leaf hashes kept)\n";
    }
    std::cout << "note: entries from " << r.limit
              << " on are never pruned (after the newest checkpoint or in the open segment)\n";
    return kExitOk;
}

// Runs one audit command; a failure to read or parse that escapes as an exception is reported
// as an unreadable log.
template <class F>
void run_audit(Outcome& outcome, F&& f) {
    try {
        outcome.code = f();
    } catch (const std::exception& e) {
        std::cerr << "licentra audit: " << e.what() << "\n";
        outcome.code = kExitUnreadable;
    }
}

}  // namespace

void add_audit_commands(CLI::App& root, Outcome& outcome) {
    CLI::App* audit = root.add_subcommand(
        "audit", "Verify an audit log offline; print checkpoints and proofs (auditors)");
    audit->require_subcommand(1);
    audit->footer(kAuditFooter);

    auto v = std::make_shared<AuditOptions>();
    CLI::App* verify = audit->add_subcommand(
        "verify", "Verify one audit log, or several replicas' logs and cross-check them");
    verify->add_option("--dir", v->dirs, "Audit log directory (repeatable; required)");
    verify->add_option("--key", v->keys, "Verifier key file (once, or once per --dir; required)");
    verify->add_option("--origin", v->origins, "Expected checkpoint origin (once per --dir)");
    verify->add_option("--trusted-checkpoint", v->trusted,
                       "A checkpoint obtained independently that the log must contain (once per "
                       "--dir)");
    verify->add_flag("--json", v->json, "Print the report as JSON");
    verify->footer(std::string(kVerifyFooter) + "\n" + kAuditFooter);
    verify->callback([v, &outcome] { run_audit(outcome, [&] { return cmd_verify(*v); }); });

    auto c = std::make_shared<AuditOptions>();
    CLI::App* checkpoint =
        audit->add_subcommand("checkpoint", "Print the newest stored checkpoint as JSON");
    checkpoint->add_option("--dir", c->dir, "Audit log directory")->required();
    checkpoint->add_flag("--json", c->json, "Print JSON (the only output format)");
    checkpoint->footer(kAuditFooter);
    checkpoint->callback([c, &outcome] { run_audit(outcome, [&] { return cmd_checkpoint(*c); }); });

    auto i = std::make_shared<AuditOptions>();
    CLI::App* inclusion = audit->add_subcommand(
        "prove-inclusion",
        "Print the RFC 9162 inclusion proof of entry I in the tree of size N as JSON");
    inclusion->add_option("--dir", i->dir, "Audit log directory")->required();
    inclusion->add_option("--index", i->index, "Entry index I")
        ->required()
        ->check(CLI::NonNegativeNumber);
    i->size_option =
        inclusion
            ->add_option("--size", i->size, "Tree size N (default: the newest checkpoint's size)")
            ->check(CLI::NonNegativeNumber);
    inclusion->add_flag("--json", i->json, "Print JSON (the only output format)");
    inclusion->footer(kAuditFooter);
    inclusion->callback(
        [i, &outcome] { run_audit(outcome, [&] { return cmd_prove_inclusion(*i); }); });

    auto p = std::make_shared<AuditOptions>();
    CLI::App* consistency = audit->add_subcommand(
        "prove-consistency", "Print the RFC 9162 consistency proof between tree sizes A and B");
    consistency->add_option("--dir", p->dir, "Audit log directory")->required();
    consistency->add_option("--from", p->from, "Tree size A")
        ->required()
        ->check(CLI::NonNegativeNumber);
    consistency->add_option("--to", p->to, "Tree size B")
        ->required()
        ->check(CLI::NonNegativeNumber);
    consistency->add_flag("--json", p->json, "Print JSON (the only output format)");
    consistency->footer(kAuditFooter);
    consistency->callback(
        [p, &outcome] { run_audit(outcome, [&] { return cmd_prove_consistency(*p); }); });

    auto pr = std::make_shared<AuditOptions>();
    CLI::App* prune = audit->add_subcommand(
        "prune",
        "Remove the payloads of entries older than a date, keeping their leaf hashes (offline)");
    prune->add_option("--dir", pr->dir, "Audit log directory of a stopped daemon, or a copy")
        ->required();
    prune->add_option("--key", pr->key, "Verifier key file; the log must verify first")->required();
    prune->add_option("--before", pr->before, "Prune entries whose time is before DATE")
        ->required();
    prune->add_option("--origin", pr->origin, "Expected checkpoint origin");
    prune->add_flag("--json", pr->json, "Print the report as JSON");
    prune->footer(kPruneFooter);
    prune->callback([pr, &outcome] { run_audit(outcome, [&] { return cmd_prune(*pr); }); });

    add_audit_anchor(*audit, outcome);
    add_audit_retention(*audit, outcome);
}

}  // namespace licentra::app
