#include "audit/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <thread>

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

// ---- LineReader ------------------------------------------------------------------------------

// Reads a file front to back through one buffer (1 MiB plus the longest line kept) and hands out
// its lines. A line longer than max_line is handed out as its first max_line bytes with its full
// length; the rest of it is read past, never held.
class LineReader {
  public:
    enum class Kind {
        line,     // ends in '\n'
        partial,  // the bytes after the last '\n' (the file does not end in a newline)
        end,      // no more bytes; offset is the file's size
        error,    // read(2) failed
    };
    struct Line {
        Kind kind = Kind::end;
        std::uint64_t offset = 0;  // of the line's first byte
        std::uint64_t length = 0;  // without the '\n'
        std::string_view text;     // the line, or its first max_line bytes; valid until next()
    };

    static constexpr std::size_t kChunk = std::size_t{1} << 20;
    static constexpr std::size_t kUnlimited = 0;

    // Takes ownership of fd. max_line == kUnlimited keeps every line whole (the buffer grows).
    LineReader(int fd, std::size_t max_line)
        : fd_(fd), max_line_(max_line), buf_(kChunk + max_line) {}
    ~LineReader() { ::close(fd_); }
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    Line next() {
        const std::uint64_t offset = next_offset_;
        std::size_t scanned = begin_;  // [begin_, scanned) holds no '\n'
        std::uint64_t dropped = 0;     // bytes of this line past max_line, read and not kept
        for (;;) {
            const auto* nl =
                static_cast<const char*>(std::memchr(buf_.data() + scanned, '\n', end_ - scanned));
            if (nl != nullptr) {
                const auto pos = static_cast<std::size_t>(nl - buf_.data());
                Line l{Kind::line, offset, pos - begin_ + dropped, view(pos)};
                begin_ = pos + 1;
                next_offset_ = offset + l.length + 1;
                return l;
            }
            if (max_line_ != kUnlimited && end_ - begin_ > max_line_) {
                dropped += end_ - (begin_ + max_line_);
                end_ = begin_ + max_line_;
            }
            scanned = end_;
            if (eof_) {
                if (begin_ == end_ && dropped == 0) return Line{Kind::end, offset, 0, {}};
                Line l{Kind::partial, offset, end_ - begin_ + dropped, view(end_)};
                begin_ = end_;
                next_offset_ = offset + l.length;
                return l;
            }
            // Keep the unfinished line at the front and read behind it.
            if (begin_ > 0) {
                std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
                end_ -= begin_;
                scanned -= begin_;
                begin_ = 0;
            }
            if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // kUnlimited only
            const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
            if (n < 0) {
                if (errno == EINTR) continue;
                return Line{Kind::error, offset, 0, {}};
            }
            if (n == 0) eof_ = true;
            end_ += static_cast<std::size_t>(n);
        }
    }

  private:
    std::string_view view(std::size_t stop) const {
        std::size_t len = stop - begin_;
        if (max_line_ != kUnlimited) len = std::min(len, max_line_);
        return {buf_.data() + begin_, len};
    }

    int fd_;
    std::size_t max_line_;
    std::vector<char> buf_;
    std::size_t begin_ = 0;  // the next line's first byte in buf_
    std::size_t end_ = 0;    // bytes read into buf_
    std::uint64_t next_offset_ = 0;
    bool eof_ = false;
};

namespace {

// An open LineReader on path, or nullptr (errno set).
std::unique_ptr<LineReader> open_lines(const fs::path& path, std::size_t max_line) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return nullptr;
    return std::make_unique<LineReader>(fd, max_line);
}

// Complete lines of a segment, read together and parsed on both cores before they are checked
// in order.
struct LineBatch {
    struct Item {
        std::uint64_t offset = 0;  // in the segment
        std::size_t begin = 0;     // in bytes
        std::size_t length = 0;
    };
    std::string bytes;  // the lines back to back, without their '\n'
    std::vector<Item> items;
    // Per line exactly one of entries (an entry line) and pruned (a pruned record) is set.
    std::vector<std::optional<core::Result<Entry>>> entries;  // parse_entry(line(i))
    std::vector<std::uint8_t> is_record;  // the line is a pruned record: records, record_status
    std::vector<PrunedRecord> records;
    std::vector<core::Status> record_status;
    std::vector<Hash> leaves;  // leaf_hash(line(i)) if it parsed as an entry

    [[nodiscard]] std::string_view line(std::size_t i) const {
        return {bytes.data() + items[i].begin, items[i].length};
    }
};

constexpr std::size_t kBatchLines = 4096;

// Reads up to kBatchLines complete lines into batch. Returns the line that ended the batch
// early (partial, end or error), or nullopt if the batch is full.
std::optional<LineReader::Line> read_batch(LineReader& reader, LineBatch& batch) {
    batch.bytes.clear();
    batch.items.clear();
    while (batch.items.size() < kBatchLines) {
        const LineReader::Line l = reader.next();
        if (l.kind != LineReader::Kind::line) return l;
        batch.items.push_back({l.offset, batch.bytes.size(), l.text.size()});
        batch.bytes.append(l.text);
    }
    return std::nullopt;
}

// Parses and hashes every line of batch; the second half on another thread when there is a
// second core. Parsing dominates the cost of reading a log.
void parse_batch(LineBatch& batch) {
    const std::size_t n = batch.items.size();
    batch.entries.resize(n);
    batch.is_record.assign(n, 0);
    batch.records.resize(n);
    batch.record_status.resize(n);
    batch.leaves.resize(n);
    auto work = [&batch](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            const std::string_view line = batch.line(i);
            if (is_pruned_record(line)) {
                batch.entries[i].reset();
                batch.is_record[i] = 1;
                batch.record_status[i] = parse_pruned_record(line, &batch.records[i]);
                continue;
            }
            batch.entries[i].emplace(parse_entry(line));
            if (*batch.entries[i]) batch.leaves[i] = leaf_hash(core::as_bytes(line));
        }
    };
    static const bool parallel = std::thread::hardware_concurrency() > 1;
    if (!parallel || n < 64) {
        work(0, n);
        return;
    }
    std::thread helper(work, n / 2, n);
    work(0, n / 2);
    helper.join();
}

Finding unreadable(std::string file) {
    return finding("audit.file_unreadable", std::move(file), 0, "cannot read file", std::nullopt,
                   ErrorKind::unavailable);
}

}  // namespace

// ---- entries ---------------------------------------------------------------------------------

core::Result<EntriesScan> scan_log_entries(const fs::path& dir,
                                           const std::function<void(const ScannedEntry&)>& on_entry,
                                           Finding* out) {
    EntriesScan scan;
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

    // A line longer than this is malformed whatever it holds (parse_entry rejects every line
    // over kMaxEntryBytes before looking at it), so its first kMaxEntryBytes + 1 bytes stand for
    // it.
    constexpr std::size_t kMaxLine = kMaxEntryBytes + 1;
    LineBatch batch;
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
        auto reader = open_lines(dir / name, kMaxLine);
        if (!reader) return fail(out, unreadable(name));
        SegmentInfo seg{name, index, 0};
        for (bool first = true;; first = false) {
            const std::optional<LineReader::Line> stop = read_batch(*reader, batch);
            if (first && batch.items.empty() && stop->kind == LineReader::Kind::end && !last) {
                return fail(out, finding("audit.segment_empty", name, 0,
                                         "a segment other than the last is empty", index));
            }
            parse_batch(batch);
            for (std::size_t i = 0; i < batch.items.size(); ++i) {
                const std::uint64_t pos = batch.items[i].offset;
                if (batch.is_record[i] != 0) {
                    // Payloads removed past their retention; the leaf hashes stand in for them.
                    if (const core::Status& st = batch.record_status[i]; !st) {
                        return fail(out,
                                    finding(st.error().code, name, pos, st.error().message, index));
                    }
                    const PrunedRecord* record = &batch.records[i];
                    if (record->first != index) {
                        return fail(
                            out,
                            finding(record->first < index ? "audit.seq_repeat" : "audit.seq_gap",
                                    name, pos,
                                    "pruned record starts at " + std::to_string(record->first) +
                                        " where " + std::to_string(index) + " belongs",
                                    index));
                    }
                    for (const Hash& leaf : record->leaves) {
                        on_entry(ScannedEntry{index, name, pos, batch.line(i), nullptr, leaf});
                        ++index;
                    }
                    add_pruned_range(scan.pruned, record->first, record->leaves.size());
                    continue;
                }
                const core::Result<Entry>& entry = *batch.entries[i];
                if (!entry) {
                    return fail(
                        out, finding(entry.error().code, name, pos, entry.error().message, index));
                }
                if (entry->seq != index) {
                    std::string reason = "audit.seq_gap";
                    std::string what = "seq " + std::to_string(entry->seq) + " where " +
                                       std::to_string(index) + " belongs";
                    if (entry->seq < index) {
                        reason = "audit.seq_repeat";
                    } else if (entry->seq == index + 1) {
                        // A swap if the next complete line holds the seq that belongs here.
                        std::optional<std::uint64_t> next;
                        if (i + 1 < batch.items.size()) {
                            const auto& after = batch.entries[i + 1];
                            if (after && *after) next = (*after)->seq;
                        } else if (!stop) {
                            const LineReader::Line l = reader->next();
                            if (l.kind == LineReader::Kind::line) next = peek_seq(l.text);
                        }
                        if (next && *next == index) reason = "audit.seq_swapped";
                    }
                    return fail(out, finding(reason, name, pos, what, index));
                }
                on_entry(ScannedEntry{index, name, pos, batch.line(i), &*entry, batch.leaves[i]});
                ++index;
            }
            if (!stop) continue;
            if (stop->kind == LineReader::Kind::error) return fail(out, unreadable(name));
            if (stop->kind == LineReader::Kind::partial) {
                if (!last) {
                    return fail(out, finding("audit.segment_unterminated", name, stop->offset,
                                             "segment ends inside an entry", index));
                }
                // A crash cut the final write short: everything after the last newline is a
                // partial record that was never acknowledged.
                scan.torn_log = TornTail{name, stop->offset, stop->length};
            }
            seg.bytes = stop->offset;
            break;
        }
        scan.segments.push_back(std::move(seg));
    }
    scan.size = index;
    return scan;
}

// ---- checkpoints -----------------------------------------------------------------------------

// A line of the checkpoints file, kept while the record splitter looks ahead.
struct CheckpointRecords::Line {
    LineReader::Kind kind = LineReader::Kind::end;
    std::uint64_t offset = 0;
    std::string text;
};

CheckpointRecords::CheckpointRecords(fs::path dir)
    : path_(std::move(dir) / std::string(kCheckpointsFile)) {}

CheckpointRecords::~CheckpointRecords() = default;

// Reads the next line into ahead_ (opening the file first if needed).
core::Status CheckpointRecords::fill(Finding* out) {
    const std::string file(kCheckpointsFile);
    if (!reader_) {
        reader_ = open_lines(path_, LineReader::kUnlimited);
        if (!reader_) return fail(out, unreadable(file));
    }
    const LineReader::Line l = reader_->next();
    if (l.kind == LineReader::Kind::error) return fail(out, unreadable(file));
    ahead_ = std::make_unique<Line>(Line{l.kind, l.offset, std::string(l.text)});
    return core::ok_status();
}

CheckpointRecords::Line CheckpointRecords::take() {
    Line l = std::move(*ahead_);
    ahead_.reset();
    return l;
}

core::Result<std::optional<StoredCheckpoint>> CheckpointRecords::next(Finding* out) {
    using Kind = LineReader::Kind;
    if (done_) return std::optional<StoredCheckpoint>{};
    if (!reader_) {
        std::error_code ec;
        if (!fs::exists(path_, ec)) {
            done_ = true;
            return std::optional<StoredCheckpoint>{};
        }
    }
    // Stops reading after any outcome but a complete record.
    auto stop = [&](core::Status st) -> core::Result<std::optional<StoredCheckpoint>> {
        done_ = true;
        if (!st) return std::move(st).error();
        return std::optional<StoredCheckpoint>{};
    };
    auto look = [&]() -> core::Status { return ahead_ ? core::ok_status() : fill(out); };

    // A sequence of signed notes. Each record is body lines, an empty line, then one or more
    // signature lines; the next record starts at the first line that is not one.
    if (auto st = look(); !st) return stop(std::move(st));
    if (ahead_->kind == Kind::end) {
        bytes_ = ahead_->offset;
        return stop(core::ok_status());
    }
    const std::uint64_t start = ahead_->offset;
    std::string note;
    bool torn = false;
    std::size_t body_lines = 0;
    // Moves the line read ahead into the note; false if it is not a complete line (torn).
    auto move_to_note = [&] {
        const Line l = take();
        if (l.kind != Kind::line) return false;
        note += l.text;
        note += '\n';
        return true;
    };
    // Body up to the empty line.
    while (true) {
        if (auto st = look(); !st) return stop(std::move(st));
        const bool blank = ahead_->text.empty();
        if (!move_to_note()) {
            torn = true;
            break;
        }
        if (blank) break;
        if (++body_lines > kMaxNoteBodyLines) break;
    }
    std::size_t sig_lines = 0;
    while (!torn && body_lines <= kMaxNoteBodyLines) {
        if (auto st = look(); !st) return stop(std::move(st));
        if (ahead_->kind == Kind::end ||
            std::string_view(ahead_->text).substr(0, kSigPrefix.size()) != kSigPrefix) {
            break;
        }
        if (!move_to_note()) {
            torn = true;
            break;
        }
        ++sig_lines;
    }
    if (!torn && sig_lines == 0 && body_lines <= kMaxNoteBodyLines) {
        if (auto st = look(); !st) return stop(std::move(st));
        if (ahead_->kind == Kind::end)
            torn = true;  // body and blank line written, signature not yet
    }
    if (torn) {
        // Every torn record runs to the end of the file, which the reader has reached.
        if (auto st = look(); !st) return stop(std::move(st));
        torn_ = TornTail{std::string(kCheckpointsFile), start, ahead_->offset - start};
        bytes_ = start;
        return stop(core::ok_status());
    }
    if (sig_lines == 0 || body_lines == 0 || body_lines > kMaxNoteBodyLines) {
        return stop(
            fail(out, finding("audit.checkpoint_record_malformed", std::string(kCheckpointsFile),
                              start, "not a signed note record")));
    }
    return std::optional<StoredCheckpoint>(StoredCheckpoint{std::move(note), start});
}

// ---- the whole directory ---------------------------------------------------------------------

core::Result<LogScan> scan_log_directory(const fs::path& dir, Finding* out) {
    LogScan scan;
    auto entries = scan_log_entries(
        dir,
        [&](const ScannedEntry& e) {
            scan.offsets.push_back(e.offset);
            scan.tree.append(e.leaf);
        },
        out);
    if (!entries) return std::move(entries).error();
    scan.segments = std::move(entries->segments);
    scan.torn_log = std::move(entries->torn_log);
    scan.pruned = std::move(entries->pruned);

    CheckpointRecords records(dir);
    for (;;) {
        auto record = records.next(out);
        if (!record) return std::move(record).error();
        if (!*record) break;
        scan.checkpoints.push_back(std::move(**record));
    }
    scan.torn_checkpoint = records.torn();
    scan.checkpoints_bytes = records.bytes();
    return scan;
}

// ---- checkpoints against the tree --------------------------------------------------------------

CheckpointSequence::CheckpointSequence(const NoteVerifier& verifier,
                                       std::optional<std::string> expected_origin)
    : verifier_(&verifier), origin_(std::move(expected_origin)) {}

core::Result<Checkpoint> CheckpointSequence::open(const StoredCheckpoint& stored, Finding* out) {
    const std::string file(kCheckpointsFile);
    auto cp = verifier_->open_checkpoint(stored.note);
    if (!cp) return fail(out, finding(cp.error().code, file, stored.offset, cp.error().message));
    if (!origin_) origin_ = cp->origin;
    if (cp->origin != *origin_) {
        return fail(out,
                    finding("audit.checkpoint_origin", file, stored.offset,
                            "checkpoint origin '" + cp->origin + "' is not '" + *origin_ + "'"));
    }
    if (previous_ && cp->size < previous_->size) {
        return fail(
            out, finding("audit.checkpoint_order", file, stored.offset,
                         "checkpoint size " + std::to_string(cp->size) +
                             " is smaller than the previous " + std::to_string(previous_->size)));
    }
    return cp;
}

core::Error CheckpointSequence::truncated(const Checkpoint& cp, std::uint64_t log_size,
                                          const SegmentInfo* last, Finding* out) {
    // The log was cut back below a size that was signed: entries are missing at the end.
    return fail(out, finding("audit.truncated", last != nullptr ? last->file : std::string(),
                             last != nullptr ? last->bytes : 0,
                             "log has " + std::to_string(log_size) +
                                 " entries but a checkpoint signed " + std::to_string(cp.size),
                             log_size));
}

core::Status CheckpointSequence::match(const StoredCheckpoint& stored, Checkpoint cp,
                                       const Hash& root, const std::optional<EntryPosition>& from,
                                       Finding* out) {
    if (root != cp.root) {
        // The first changed entry lies between the last matching checkpoint and this one.
        const std::uint64_t first = previous_size();
        return fail(
            out, finding("audit.root_mismatch", from ? from->file : std::string(),
                         from ? from->offset : 0,
                         "entries " + std::to_string(first) + ".." + std::to_string(cp.size - 1) +
                             " do not hash to the root signed for size " + std::to_string(cp.size) +
                             " (checkpoints byte " + std::to_string(stored.offset) + ")",
                         first));
    }
    previous_ = std::move(cp);
    return core::ok_status();
}

core::Status check_checkpoints(const LogScan& scan, const NoteVerifier& verifier,
                               const std::optional<std::string>& expected_origin, Finding* out) {
    const std::string file(kCheckpointsFile);
    CheckpointSequence sequence(verifier, expected_origin);
    const std::uint64_t log_size = scan.tree.size();
    for (const StoredCheckpoint& stored : scan.checkpoints) {
        auto cp = sequence.open(stored, out);
        if (!cp) return std::move(cp).error();
        if (cp->size > log_size) {
            return sequence.truncated(*cp, log_size,
                                      scan.segments.empty() ? nullptr : &scan.segments.back(), out);
        }
        const std::uint64_t from = sequence.previous_size();
        std::optional<EntryPosition> position;
        if (from < log_size) {
            position.emplace();
            for (const auto& seg : scan.segments) {
                if (seg.first_index <= from) position->file = seg.file;
            }
            position->offset = scan.offsets[from];
        }
        const std::optional<Checkpoint> previous = sequence.previous();
        if (auto st = sequence.match(stored, *cp, *scan.tree.root(cp->size), position, out); !st) {
            return st;
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
    }
    const std::uint64_t covered = sequence.previous_size();
    for (const PrunedRange& r : scan.pruned) {
        if (r.first + r.count <= covered) continue;
        const std::uint64_t index = std::max(r.first, covered);
        std::string segment;
        for (const auto& seg : scan.segments) {
            if (seg.first_index <= index) segment = seg.file;
        }
        return fail(out, pruned_unsigned(segment, scan.offsets[index], index, covered));
    }
    return core::ok_status();
}

Finding pruned_unsigned(std::string file, std::uint64_t offset, std::uint64_t index,
                        std::uint64_t covered) {
    return finding("audit.pruned_unsigned", std::move(file), offset,
                   "entry is pruned but the newest checkpoint signs only " +
                       std::to_string(covered) +
                       " entries: nothing vouches for the leaf hash kept in its place",
                   index);
}

}  // namespace licentra::audit
