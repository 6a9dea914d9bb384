#include "audit/store.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"

namespace licentra::audit {

namespace fs = std::filesystem;

namespace {

using core::ErrorKind;

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";
constexpr std::size_t kMaxNoteBodyLines = 16;

core::Error fail(Finding* out, Finding f) {
    core::Error e = f.to_error();
    if (out != nullptr) *out = std::move(f);
    return e;
}

Finding finding(std::string reason, std::string file, std::uint64_t offset, std::string message,
                std::optional<std::uint64_t> index = std::nullopt,
                ErrorKind kind = ErrorKind::integrity) {
    return Finding{kind, std::move(reason), std::move(file), offset, index, std::move(message)};
}

bool read_whole_file(const fs::path& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return false;
    out = std::move(ss).str();
    return true;
}

// Segment number from "log-NNNNNN.jsonl" (at least six digits, canonical), or nullopt.
std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
    constexpr std::string_view kPrefix = "log-";
    constexpr std::string_view kSuffix = ".jsonl";
    if (name.size() < kPrefix.size() + 6 + kSuffix.size()) return std::nullopt;
    if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
    if (name.substr(name.size() - kSuffix.size()) != kSuffix) return std::nullopt;
    const std::string_view digits =
        name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
    if (segment_file_name(n) != name) return std::nullopt;
    return n;
}

// The seq of a line if it parses as an entry, for telling a swap from a gap.
std::optional<std::uint64_t> peek_seq(std::string_view line) {
    auto e = parse_entry(line);
    if (!e) return std::nullopt;
    return e->seq;
}

}  // namespace

std::string segment_file_name(std::uint64_t segment) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "log-%06llu.jsonl", static_cast<unsigned long long>(segment));
    return buf;
}

core::Error Finding::to_error() const {
    std::string where;
    if (!file.empty()) where = file + " at byte " + std::to_string(offset);
    if (index)
        where += (where.empty() ? "" : ", ") + std::string("entry ") + std::to_string(*index);
    return core::make_error(kind, reason, where.empty() ? message : where + ": " + message);
}

core::Result<LogScan> scan_log_directory(const fs::path& dir, Finding* out) {
    LogScan scan;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return fail(
            out, finding("audit.dir_unreadable", "", 0, "not a readable directory: " + dir.string(),
                         std::nullopt, ErrorKind::unavailable));
    }
    std::map<std::uint64_t, std::string> segments;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (auto n = parse_segment_name(name)) segments.emplace(*n, name);
    }
    if (ec) {
        return fail(out, finding("audit.dir_unreadable", "", 0, "cannot list " + dir.string(),
                                 std::nullopt, ErrorKind::unavailable));
    }

    std::uint64_t expected_segment = 0;
    std::uint64_t index = 0;
    for (auto sit = segments.begin(); sit != segments.end(); ++sit) {
        const auto& [number, name] = *sit;
        const bool last = std::next(sit) == segments.end();
        if (number != expected_segment) {
            return fail(out, finding("audit.segment_missing", segment_file_name(expected_segment),
                                     0, "segment file is missing", index));
        }
        ++expected_segment;
        std::string data;
        if (!read_whole_file(dir / name, data)) {
            return fail(out, finding("audit.file_unreadable", name, 0, "cannot read file",
                                     std::nullopt, ErrorKind::unavailable));
        }
        SegmentInfo seg{name, index, 0};
        if (data.empty() && !last) {
            return fail(out, finding("audit.segment_empty", name, 0,
                                     "a segment other than the last is empty", index));
        }
        std::size_t pos = 0;
        while (pos < data.size()) {
            const std::size_t nl = data.find('\n', pos);
            if (nl == std::string::npos) {
                if (!last) {
                    return fail(out, finding("audit.segment_unterminated", name, pos,
                                             "segment ends inside an entry", index));
                }
                // A crash cut the final write short: everything after the last newline is a
                // partial record that was never acknowledged.
                scan.torn_log = TornTail{name, pos, data.size() - pos};
                break;
            }
            const std::string_view line(data.data() + pos, nl - pos);
            auto entry = parse_entry(line);
            if (!entry) {
                return fail(out,
                            finding(entry.error().code, name, pos, entry.error().message, index));
            }
            if (entry->seq != index) {
                std::string reason = "audit.seq_gap";
                std::string what = "seq " + std::to_string(entry->seq) + " where " +
                                   std::to_string(index) + " belongs";
                if (entry->seq < index) {
                    reason = "audit.seq_repeat";
                } else if (entry->seq == index + 1 && nl + 1 < data.size()) {
                    const std::size_t nl2 = data.find('\n', nl + 1);
                    if (nl2 != std::string::npos) {
                        auto next = peek_seq(std::string_view(data.data() + nl + 1, nl2 - nl - 1));
                        if (next && *next == index) reason = "audit.seq_swapped";
                    }
                }
                return fail(out, finding(reason, name, pos, what, index));
            }
            scan.offsets.push_back(pos);
            scan.tree.append(leaf_hash(core::as_bytes(line)));
            ++index;
            pos = nl + 1;
        }
        seg.bytes = scan.torn_log ? scan.torn_log->offset : data.size();
        scan.segments.push_back(std::move(seg));
    }

    // Checkpoints: a sequence of signed notes. Each record is body lines, an empty line, then
    // one or more signature lines; the next record starts at the first line that is not one.
    const fs::path cp_path = dir / std::string(kCheckpointsFile);
    if (fs::exists(cp_path, ec)) {
        std::string data;
        if (!read_whole_file(cp_path, data)) {
            return fail(out, finding("audit.file_unreadable", std::string(kCheckpointsFile), 0,
                                     "cannot read file", std::nullopt, ErrorKind::unavailable));
        }
        std::size_t pos = 0;
        while (pos < data.size()) {
            const std::size_t start = pos;
            bool torn = false;
            std::size_t body_lines = 0;
            // Body up to the empty line.
            while (true) {
                const std::size_t nl = data.find('\n', pos);
                if (nl == std::string::npos) {
                    torn = true;
                    break;
                }
                const bool empty = nl == pos;
                pos = nl + 1;
                if (empty) break;
                if (++body_lines > kMaxNoteBodyLines) break;
            }
            std::size_t sig_lines = 0;
            while (!torn && body_lines <= kMaxNoteBodyLines && pos < data.size() &&
                   std::string_view(data).substr(pos, kSigPrefix.size()) == kSigPrefix) {
                const std::size_t nl = data.find('\n', pos);
                if (nl == std::string::npos) {
                    torn = true;
                    break;
                }
                pos = nl + 1;
                ++sig_lines;
            }
            if (!torn && sig_lines == 0 && pos >= data.size() && body_lines <= kMaxNoteBodyLines) {
                torn = true;  // body and blank line written, signature not yet
            }
            if (torn) {
                scan.torn_checkpoint =
                    TornTail{std::string(kCheckpointsFile), start, data.size() - start};
                break;
            }
            if (sig_lines == 0 || body_lines == 0 || body_lines > kMaxNoteBodyLines) {
                return fail(
                    out, finding("audit.checkpoint_record_malformed", std::string(kCheckpointsFile),
                                 start, "not a signed note record"));
            }
            scan.checkpoints.push_back(StoredCheckpoint{data.substr(start, pos - start), start});
        }
        scan.checkpoints_bytes = scan.torn_checkpoint ? scan.torn_checkpoint->offset : data.size();
    }
    return scan;
}

core::Status check_checkpoints(const LogScan& scan, const NoteVerifier& verifier,
                               const std::optional<std::string>& expected_origin, Finding* out) {
    const std::string file(kCheckpointsFile);
    std::optional<std::string> origin = expected_origin;
    std::optional<Checkpoint> previous;
    const std::uint64_t log_size = scan.tree.size();
    for (const StoredCheckpoint& stored : scan.checkpoints) {
        auto cp = verifier.open_checkpoint(stored.note);
        if (!cp) {
            return fail(out, finding(cp.error().code, file, stored.offset, cp.error().message));
        }
        if (!origin) origin = cp->origin;
        if (cp->origin != *origin) {
            return fail(out,
                        finding("audit.checkpoint_origin", file, stored.offset,
                                "checkpoint origin '" + cp->origin + "' is not '" + *origin + "'"));
        }
        if (previous && cp->size < previous->size) {
            return fail(out, finding("audit.checkpoint_order", file, stored.offset,
                                     "checkpoint size " + std::to_string(cp->size) +
                                         " is smaller than the previous " +
                                         std::to_string(previous->size)));
        }
        if (cp->size > log_size) {
            // The log was cut back below a size that was signed: entries are missing at the end.
            std::string seg_file;
            std::uint64_t seg_end = 0;
            if (!scan.segments.empty()) {
                seg_file = scan.segments.back().file;
                seg_end = scan.segments.back().bytes;
            }
            return fail(out,
                        finding("audit.truncated", seg_file, seg_end,
                                "log has " + std::to_string(log_size) +
                                    " entries but a checkpoint signed " + std::to_string(cp->size),
                                log_size));
        }
        const Hash root = *scan.tree.root(cp->size);
        if (root != cp->root) {
            // The first changed entry lies between the last matching checkpoint and this one.
            const std::uint64_t from = previous ? previous->size : 0;
            std::string seg_file;
            std::uint64_t offset = 0;
            if (from < log_size) {
                for (const auto& seg : scan.segments) {
                    if (seg.first_index <= from) seg_file = seg.file;
                }
                offset = scan.offsets[from];
            }
            return fail(
                out,
                finding("audit.root_mismatch", seg_file, offset,
                        "entries " + std::to_string(from) + ".." + std::to_string(cp->size - 1) +
                            " do not hash to the root signed for size " + std::to_string(cp->size) +
                            " (checkpoints byte " + std::to_string(stored.offset) + ")",
                        from));
        }
        if (previous && previous->size > 0) {
            auto proof = scan.tree.consistency_proof(previous->size, cp->size);
            core::Status st = proof ? verify_consistency(previous->size, cp->size, previous->root,
                                                         cp->root, *proof)
                                    : core::Status(proof.error());
            if (!st) {
                return fail(out, finding("audit.consistency_proof_invalid", file, stored.offset,
                                         st.error().message));
            }
        }
        previous = std::move(cp).value();
    }
    return core::ok_status();
}

}  // namespace licentra::audit
