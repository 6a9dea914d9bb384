// `licentra audit ...`: offline tools for auditors. They read a copy of an audit log directory
// and need neither the daemon nor the HSM. See docs/audit.md.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli.hpp"
#include "audit/checkpoint.hpp"
#include "audit/store.hpp"
#include "audit/verify.hpp"

namespace licentra::app {

namespace {

using nlohmann::json;

constexpr const char* kAuditUsage = R"(usage: licentra audit <command> [options]

commands:
  verify --dir DIR --key FILE [--origin ORIGIN] [--trusted-checkpoint FILE] [--json]
      Recompute the Merkle tree from every entry, check every checkpoint signature, that each
      checkpoint matches the tree and is consistent with the next, and (with
      --trusted-checkpoint) that the log contains a checkpoint obtained independently, e.g. the
      one anchored on the HSM. FILE holds the signed-note verifier key
      <name>+<hex key hash>+<base64 key>. Reports the first problem with its reason.
  checkpoint --dir DIR
      Print the newest stored checkpoint as JSON.
  prove-inclusion --dir DIR --index I [--size N]
      Print the RFC 9162 inclusion proof of entry I in the tree of size N (default: the newest
      checkpoint's size) as JSON.
  prove-consistency --dir DIR --from A --to B
      Print the RFC 9162 consistency proof between tree sizes A and B as JSON.

Hashes in JSON are base64, as in checkpoints. Exit codes: 0 verified / done, 2 usage,
3 tampered (the log or a checkpoint does not verify), 4 unreadable (the directory or its files
cannot be read). See docs/audit.md.
)";

int usage_error(const std::string& message) {
    std::cerr << "licentra audit: " << message << "\n";
    return kExitUsage;
}

std::optional<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::optional<std::uint64_t> parse_u64(const std::optional<std::string>& text) {
    if (!text || text->empty() || text->size() > 20) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : *text) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
        v = v * 10 + digit;
    }
    return v;
}

std::string b64(const audit::Hash& h) { return core::base64_encode(h); }

json hashes_json(const std::vector<audit::Hash>& hashes) {
    json out = json::array();
    for (const auto& h : hashes) out.push_back(b64(h));
    return out;
}

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

int cmd_verify(const Args& a) {
    const auto dir = a.get("--dir");
    const auto key_file = a.get("--key");
    if (!dir || !key_file) return usage_error("verify needs --dir DIR and --key FILE");
    const auto key_text = read_text_file(*key_file);
    if (!key_text) return usage_error("cannot read key file " + *key_file);
    std::string_view key = *key_text;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.remove_suffix(1);
    auto verifier = audit::NoteVerifier::parse(key);
    if (!verifier) return usage_error(*key_file + ": " + verifier.error().message);

    audit::VerifyOptions options;
    options.dir = *dir;
    options.origin = a.get("--origin");
    if (const auto trusted = a.get("--trusted-checkpoint")) {
        auto text = read_text_file(*trusted);
        if (!text) return usage_error("cannot read trusted checkpoint " + *trusted);
        options.trusted_checkpoint = *text;
    }
    const audit::VerifyReport r = audit::verify_log_directory(options, *verifier);
    const char* status = r.status == audit::VerifyStatus::verified   ? "verified"
                         : r.status == audit::VerifyStatus::tampered ? "tampered"
                                                                     : "unreadable";
    if (a.has("--json")) {
        json j = {{"status", status}, {"entries", r.size}, {"checkpoints", r.checkpoints}};
        if (r.finding) j["finding"] = finding_json(*r.finding);
        if (r.newest) {
            j["newest_checkpoint"] = {{"origin", r.newest->origin},
                                      {"size", r.newest->size},
                                      {"root_hash", b64(r.newest->root)}};
            j["unsigned_entries"] = r.unsigned_entries;
        }
        if (r.torn_log) j["torn_log"] = torn_json(*r.torn_log);
        if (r.torn_checkpoint) j["torn_checkpoint"] = torn_json(*r.torn_checkpoint);
        std::cout << j.dump(2) << "\n";
    } else if (r.status == audit::VerifyStatus::verified) {
        std::cout << "verified: " << r.size << " entries, " << r.checkpoints
                  << " checkpoints; newest checkpoint " << r.newest->origin << " size "
                  << r.newest->size << " root " << b64(r.newest->root) << "\n";
        if (r.unsigned_entries > 0) {
            std::cout << "note: " << r.unsigned_entries
                      << " entries after the newest checkpoint are not yet signed\n";
        }
        if (r.torn_log) {
            std::cout << "note: " << r.torn_log->file << " ends with a partial record at byte "
                      << r.torn_log->offset << " (" << r.torn_log->length
                      << " bytes, crash residue; the daemon cuts it back at start)\n";
        }
        if (r.torn_checkpoint) {
            std::cout << "note: checkpoints ends with a partial record at byte "
                      << r.torn_checkpoint->offset << " (crash residue)\n";
        }
    } else {
        std::cout << status << ": " << r.finding->to_error().to_string() << "\n";
    }
    switch (r.status) {
        case audit::VerifyStatus::verified:
            return kExitOk;
        case audit::VerifyStatus::tampered:
            return kExitTampered;
        case audit::VerifyStatus::unreadable:
        default:
            return kExitUnreadable;
    }
}

int cmd_checkpoint(const Args& a) {
    const auto dir = a.get("--dir");
    if (!dir) return usage_error("checkpoint needs --dir DIR");
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

int cmd_prove_inclusion(const Args& a) {
    const auto dir = a.get("--dir");
    const auto index = parse_u64(a.get("--index"));
    if (!dir || !index) return usage_error("prove-inclusion needs --dir DIR and --index I");
    std::optional<std::uint64_t> size;
    if (a.get("--size")) {
        size = parse_u64(a.get("--size"));
        if (!size) return usage_error("--size must be a non-negative integer");
    }
    audit::Finding f;
    auto scan = audit::scan_log_directory(*dir, &f);
    if (!scan) return scan_failure(f);
    if (!size) {
        const auto cp = newest_checkpoint(*scan);
        size = cp ? cp->size : scan->tree.size();
    }
    auto proof = scan->tree.inclusion_proof(*index, *size);
    if (!proof) return usage_error(proof.error().message);
    json j = {{"index", *index},
              {"size", *size},
              {"leaf_hash", b64(scan->tree.leaf(*index))},
              {"root_hash", b64(*scan->tree.root(*size))},
              {"proof", hashes_json(*proof)}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
}

int cmd_prove_consistency(const Args& a) {
    const auto dir = a.get("--dir");
    const auto from = parse_u64(a.get("--from"));
    const auto to = parse_u64(a.get("--to"));
    if (!dir || !from || !to) {
        return usage_error("prove-consistency needs --dir DIR, --from A and --to B");
    }
    audit::Finding f;
    auto scan = audit::scan_log_directory(*dir, &f);
    if (!scan) return scan_failure(f);
    auto proof = scan->tree.consistency_proof(*from, *to);
    if (!proof) return usage_error(proof.error().message);
    json j = {{"first", *from},
              {"second", *to},
              {"first_root_hash", b64(*scan->tree.root(*from))},
              {"second_root_hash", b64(*scan->tree.root(*to))},
              {"proof", hashes_json(*proof)}};
    std::cout << j.dump(2) << "\n";
    return kExitOk;
}

}  // namespace

int cli_audit(const std::vector<std::string>& args) {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    Args parsed(rest,
                {"--dir", "--key", "--origin", "--trusted-checkpoint", "--index", "--size",
                 "--from", "--to"},
                {"--help", "--json"});
    if (!parsed.ok()) {
        std::cerr << "licentra audit: " << parsed.error() << "\n" << kAuditUsage;
        return kExitUsage;
    }
    if (parsed.has("--help")) {
        std::cout << kAuditUsage;
        return kExitOk;
    }
    const auto& pos = parsed.positional();
    if (pos.size() != 1) {
        std::cerr << kAuditUsage;
        return kExitUsage;
    }
    try {
        if (pos[0] == "verify") return cmd_verify(parsed);
        if (pos[0] == "checkpoint") return cmd_checkpoint(parsed);
        if (pos[0] == "prove-inclusion") return cmd_prove_inclusion(parsed);
        if (pos[0] == "prove-consistency") return cmd_prove_consistency(parsed);
    } catch (const std::exception& e) {
        std::cerr << "licentra audit: " << e.what() << "\n";
        return kExitUnreadable;
    }
    std::cerr << "licentra audit: unknown command '" << pos[0] << "'\n" << kAuditUsage;
    return kExitUsage;
}

}  // namespace licentra::app
