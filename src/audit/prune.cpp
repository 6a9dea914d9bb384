#include "audit/prune.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "audit/entry.hpp"
#include "audit/verify.hpp"

namespace licentra::audit {

namespace fs = std::filesystem;

namespace {

using core::ErrorKind;

core::Error io_error(const std::string& what, int err) {
    return core::make_error(ErrorKind::unavailable, "audit.io_error",
                            what + ": " + std::strerror(err));
}

// Closes the descriptor it holds.
class Fd {
  public:
    explicit Fd(int fd = -1) noexcept : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

  private:
    int fd_;
};

// Rewrites the segments scan_log_entries passes through, one at a time. A segment is copied to
// its temporary file only from its first change on (the bytes before it are copied as they
// are); a segment without an entry to prune is never written.
class SegmentRewriter {
  public:
    SegmentRewriter(fs::path dir, FileOps& ops, int dir_fd, core::TimePoint before,
                    std::uint64_t limit, std::string last_segment, const PruneHooks& hooks)
        : dir_(std::move(dir)),
          ops_(&ops),
          dir_fd_(dir_fd),
          before_(before),
          limit_(limit),
          last_segment_(std::move(last_segment)),
          hooks_(&hooks) {}
    ~SegmentRewriter() { abandon(); }
    SegmentRewriter(const SegmentRewriter&) = delete;
    SegmentRewriter& operator=(const SegmentRewriter&) = delete;

    void on_entry(const ScannedEntry& e) {
        if (error_) return;
        if (e.file != segment_) {
            finish_segment();
            if (error_) return;
            segment_ = std::string(e.file);
            segment_first_ = e.index;
            segment_offsets_.clear();
            segment_pruned_.clear();
        }
        const bool prune = e.entry != nullptr && e.index < limit_ && e.entry->time < before_ &&
                           segment_ != last_segment_;
        if (prune && hooks_->check_leaf && !hooks_->check_leaf(e.index, e.leaf)) {
            set_error(core::make_error(ErrorKind::integrity, "audit.entry_changed",
                                       "entry " + std::to_string(e.index) + " in " + segment_ +
                                           " no longer hashes to its leaf in the tree"));
            return;
        }
        if (e.entry == nullptr || prune) {
            if (!run_) run_ = Run{e.offset, e.index, {}, {}, false};
            run_->leaves.push_back(e.leaf);
            run_->offsets.push_back(e.offset);
            add_pruned_range(pruned_, e.index, 1);
            add_pruned_range(segment_pruned_, e.index, 1);
            if (prune) {
                run_->has_new = true;
                ++newly_pruned_;
                add_pruned_range(newly_, e.index, 1);
            }
            return;
        }
        end_run(e.offset);
        if (out_.get() >= 0) {
            segment_offsets_.push_back(written_);
            emit(e.line);
            emit("\n");
        } else {
            segment_offsets_.push_back(e.offset);  // the bytes before the first change stay
        }
    }

    // After the scan: completes the segment in progress.
    core::Status finish() {
        finish_segment();
        if (error_) {
            abandon();
            return *error_;
        }
        return core::ok_status();
    }

    [[nodiscard]] std::uint64_t newly_pruned() const { return newly_pruned_; }
    [[nodiscard]] std::vector<PrunedRange> take_newly_pruned() { return std::move(newly_); }
    [[nodiscard]] std::vector<PrunedRange> take_pruned() { return std::move(pruned_); }
    [[nodiscard]] std::vector<std::string> take_rewritten() { return std::move(rewritten_); }

  private:
    // Consecutive pruned entries (already pruned or to prune now) of the current segment.
    struct Run {
        std::uint64_t offset = 0;  // of its first line in the segment
        std::uint64_t first = 0;   // leaf index
        std::vector<Hash> leaves;
        std::vector<std::uint64_t> offsets;  // per entry, in the original segment
        bool has_new = false;                // holds an entry pruned by this run
    };

    fs::path segment_path() const { return dir_ / segment_; }
    fs::path temp_path() const { return dir_ / (segment_ + std::string(kPruneTempSuffix)); }

    void set_error(core::Error e) {
        if (!error_) error_ = std::move(e);
    }

    // Ends the run at end (the offset of the line after it).
    void end_run(std::uint64_t end) {
        if (!run_ || error_) return;
        Run run = std::move(*run_);
        run_.reset();
        if (run.has_new) {
            if (out_.get() < 0) {
                open_temp();
                copy_original(0, run.offset);
            }
            // Records of at most kMaxPrunedLeaves, counted from the run's first entry: the same
            // leaves always give the same bytes, which makes a second prune a no-op.
            for (std::size_t at = 0; at < run.leaves.size(); at += kMaxPrunedLeaves) {
                const std::size_t n = std::min(kMaxPrunedLeaves, run.leaves.size() - at);
                PrunedRecord record;
                record.first = run.first + at;
                record.leaves.assign(run.leaves.begin() + static_cast<std::ptrdiff_t>(at),
                                     run.leaves.begin() + static_cast<std::ptrdiff_t>(at + n));
                segment_offsets_.insert(segment_offsets_.end(), n, written_);
                emit(serialize_pruned_record(record));
                emit("\n");
            }
        } else if (out_.get() >= 0) {
            for (const std::uint64_t at : run.offsets) {
                segment_offsets_.push_back(written_ + (at - run.offset));
            }
            copy_original(run.offset, end);  // records pruned before: their bytes as they are
        } else {
            segment_offsets_.insert(segment_offsets_.end(), run.offsets.begin(), run.offsets.end());
        }
    }

    void finish_segment() {
        if (segment_.empty() || error_) return;
        std::error_code ec;
        const std::uint64_t size = fs::file_size(segment_path(), ec);
        if (ec) {
            set_error(io_error("cannot stat " + segment_path().string(), ec.value()));
            return;
        }
        end_run(size);
        if (out_.get() >= 0 && !error_) {
            flush();
            if (!error_ && ops_->fsync(out_.get()) != 0) {
                set_error(io_error("cannot sync " + temp_path().string(), errno));
            }
            if (!error_) {
                out_.reset();
                // rename(2) replaces the segment atomically: a reader (or a crash) sees either the
                // whole old file or the whole new one.
                auto rename = [&]() -> core::Status {
                    if (::rename(temp_path().c_str(), segment_path().c_str()) != 0) {
                        return io_error("cannot rename " + temp_path().string(), errno);
                    }
                    return core::ok_status();
                };
                core::Status renamed = core::ok_status();
                if (hooks_->commit) {
                    renamed =
                        hooks_->commit(RewrittenSegment{segment_, segment_first_, segment_offsets_,
                                                        written_, segment_pruned_},
                                       rename);
                } else {
                    renamed = rename();
                }
                if (!renamed) {
                    set_error(std::move(renamed).error());
                } else if (ops_->fsync(dir_fd_) != 0) {
                    set_error(io_error("cannot sync " + dir_.string(), errno));
                } else {
                    rewritten_.push_back(segment_);
                }
            }
        }
        if (error_) return;  // abandon() removes the temporary file of segment_
        in_.reset();
        segment_.clear();
        written_ = 0;
    }

    void open_temp() {
        const fs::path tmp = temp_path();
        out_.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (out_.get() < 0) set_error(io_error("cannot create " + tmp.string(), errno));
    }

    // Copies bytes [from, to) of the original segment to the temporary file.
    void copy_original(std::uint64_t from, std::uint64_t to) {
        if (error_ || from >= to) return;
        if (in_.get() < 0) {
            in_.reset(::open(segment_path().c_str(), O_RDONLY | O_CLOEXEC));
            if (in_.get() < 0) {
                set_error(io_error("cannot open " + segment_path().string(), errno));
                return;
            }
        }
        std::string chunk;
        while (from < to && !error_) {
            chunk.resize(static_cast<std::size_t>(std::min<std::uint64_t>(to - from, 1 << 20)));
            const ssize_t n =
                ::pread(in_.get(), chunk.data(), chunk.size(), static_cast<off_t>(from));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                set_error(io_error("cannot read " + segment_path().string(), n < 0 ? errno : EIO));
                return;
            }
            emit(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
            from += static_cast<std::uint64_t>(n);
        }
    }

    void emit(std::string_view data) {
        if (error_ || out_.get() < 0) return;
        written_ += data.size();
        buffer_.append(data);
        if (buffer_.size() >= (std::size_t{1} << 20)) flush();
    }

    void flush() {
        std::string_view data = buffer_;
        while (!data.empty() && !error_) {
            const ssize_t n = ops_->write(out_.get(), data.data(), data.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                set_error(io_error("cannot write " + temp_path().string(), n < 0 ? errno : EIO));
                break;
            }
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        buffer_.clear();
    }

    // On failure: the segment being rewritten stays as it was; its temporary file goes.
    void abandon() {
        if (out_.get() >= 0) {
            out_.reset();
            ::unlink(temp_path().c_str());
        }
        buffer_.clear();
        written_ = 0;
    }

    fs::path dir_;
    FileOps* ops_;
    int dir_fd_;
    core::TimePoint before_;
    std::uint64_t limit_;
    std::string last_segment_;
    const PruneHooks* hooks_;

    std::string segment_;  // the segment being read
    std::uint64_t segment_first_ = 0;
    std::vector<std::uint64_t> segment_offsets_;  // its entries' offsets in the rewritten file
    std::vector<PrunedRange> segment_pruned_;
    std::uint64_t written_ = 0;  // bytes emitted to the temporary file
    Fd in_;                      // the original, opened when bytes are copied from it
    Fd out_;                     // its temporary file, once the segment changes
    std::string buffer_;
    std::optional<Run> run_;
    std::optional<core::Error> error_;
    std::uint64_t newly_pruned_ = 0;
    std::vector<PrunedRange> pruned_;
    std::vector<PrunedRange> newly_;
    std::vector<std::string> rewritten_;
};

}  // namespace

core::Result<std::vector<std::string>> remove_prune_leftovers(const fs::path& dir, FileOps& ops,
                                                              int dir_fd) {
    // Crash residue of an interrupted prune: the segment it was made from is still whole.
    std::vector<std::string> removed;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() > kPruneTempSuffix.size() &&
            name.compare(name.size() - kPruneTempSuffix.size(), kPruneTempSuffix.size(),
                         kPruneTempSuffix) == 0) {
            removed.push_back(name);
        }
    }
    if (ec) return io_error("cannot list " + dir.string(), ec.value());
    for (const std::string& name : removed) {
        if (::unlink((dir / name).c_str()) != 0) {
            return io_error("cannot remove " + (dir / name).string(), errno);
        }
    }
    if (!removed.empty() && ops.fsync(dir_fd) != 0) {
        return io_error("cannot sync " + dir.string(), errno);
    }
    return removed;
}

core::Status prune_segments(const fs::path& dir, FileOps& ops, int dir_fd, core::TimePoint before,
                            std::uint64_t limit, const std::string& last_segment,
                            const PruneHooks& hooks, PruneReport& report, Finding* finding) {
    SegmentRewriter rewriter(dir, ops, dir_fd, before, limit, last_segment, hooks);
    Finding scan_finding;
    auto scan = scan_log_entries(
        dir, [&](const ScannedEntry& e) { rewriter.on_entry(e); }, &scan_finding);
    if (!scan) {
        (void)rewriter.finish();
        if (finding != nullptr) *finding = scan_finding;
        return std::move(scan).error();
    }
    if (auto st = rewriter.finish(); !st) return std::move(st).error();
    report.newly_pruned = rewriter.newly_pruned();
    report.newly_pruned_ranges = rewriter.take_newly_pruned();
    report.pruned = rewriter.take_pruned();
    report.rewritten = rewriter.take_rewritten();
    return core::ok_status();
}

core::Result<PruneReport> prune_log_directory(const PruneOptions& options,
                                              const NoteVerifier& verifier, Finding* finding) {
    FileOps& ops = options.file_ops != nullptr ? *options.file_ops : posix_file_ops();
    const fs::path& dir = options.dir;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        Finding f{ErrorKind::unavailable,
                  "audit.dir_unreadable",
                  "",
                  0,
                  std::nullopt,
                  "not a readable directory: " + dir.string()};
        core::Error e = f.to_error();
        if (finding != nullptr) *finding = std::move(f);
        return e;
    }
    Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() < 0) return io_error("cannot open " + dir.string(), errno);
    // The daemon holds this lock for as long as it has the log open (AuditLog::open); holding it
    // here also keeps a daemon from starting on the directory while it is rewritten.
    const fs::path lock_path = dir / std::string(kLockFile);
    Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (lock.get() < 0) return io_error("cannot open " + lock_path.string(), errno);
    if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return core::make_error(
                ErrorKind::conflict, "audit.locked",
                "another process (a running daemon?) has the audit log open: " + dir.string() +
                    "; prune runs on a stopped daemon's "
                    "directory or on a copy");
        }
        return io_error("cannot lock " + lock_path.string(), errno);
    }

    PruneReport report;
    auto leftovers = remove_prune_leftovers(dir, ops, dir_fd.get());
    if (!leftovers) return std::move(leftovers).error();
    report.leftovers_removed = std::move(leftovers).value();

    VerifyOptions vo;
    vo.dir = dir;
    vo.origin = options.origin;
    const VerifyReport verified = verify_log_directory(vo, verifier);
    if (verified.status != VerifyStatus::verified) {
        core::Error e = verified.finding->to_error();
        if (finding != nullptr) *finding = *verified.finding;
        return e;
    }
    report.size = verified.size;
    report.newest_checkpoint = verified.newest->size;
    report.limit = report.newest_checkpoint;
    std::string last_segment;
    if (!verified.segments.empty()) {
        last_segment = verified.segments.back().file;
        report.limit = std::min(report.limit, verified.segments.back().first_index);
    }

    const PruneHooks offline;
    if (auto st = prune_segments(dir, ops, dir_fd.get(), options.before, report.limit, last_segment,
                                 offline, report, finding);
        !st) {
        return std::move(st).error();
    }
    return report;
}

}  // namespace licentra::audit
