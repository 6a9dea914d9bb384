#include "audit/log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/thread_name.hpp"
#include "crypto/digest.hpp"

namespace licentra::audit {

namespace fs = std::filesystem;

namespace {

using core::ErrorKind;
using core::make_error;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kMaxReadEntries = 10000;

class PosixFileOps final : public FileOps {
  public:
    ssize_t write(int fd, const void* data, std::size_t size) override {
        return ::write(fd, data, size);
    }
    int fdatasync(int fd) override { return ::fdatasync(fd); }
};

// "ENOSPC (No space left on device)": the symbolic name is what operators search for.
std::string errno_text(int err) {
    const char* name = ::strerrorname_np(err);
    std::string out = name != nullptr ? name : "errno " + std::to_string(err);
    return out + " (" + std::strerror(err) + ")";
}

core::Error io_error(std::string code, const std::string& what, int err) {
    return make_error(ErrorKind::unavailable, std::move(code), what + ": " + errno_text(err));
}

std::string millis_text(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

core::Error integrity(std::string code, std::string message) {
    return make_error(ErrorKind::integrity, std::move(code), std::move(message));
}

void complete(const AuditLog::AppendCallback& done, core::Result<Appended> result) noexcept {
    try {
        done(std::move(result));
    } catch (...) {
        // A throwing callback must not take the writer down with it; the entry is durable.
    }
}

core::Status truncate_file(const fs::path& path, std::uint64_t length) {
    const core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return io_error("audit.io_error", "cannot open " + path.string(), errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0 || ::fsync(fd.get()) != 0) {
        return io_error("audit.io_error", "cannot cut back " + path.string(), errno);
    }
    return core::ok_status();
}

}  // namespace

int FileOps::fsync(int fd) { return ::fsync(fd); }

FileOps& posix_file_ops() noexcept {
    static PosixFileOps ops;
    return ops;
}

AuditLog::AuditLog(LogOptions options, LogDependencies deps, CheckpointSigner signer)
    : options_(std::move(options)),
      deps_(deps),
      ops_(deps.file_ops != nullptr ? deps.file_ops : &posix_file_ops()),
      cp_signer_(std::move(signer)) {}

core::Result<std::unique_ptr<AuditLog>> AuditLog::open(LogOptions options, LogDependencies deps) {
    if (deps.signer == nullptr) {
        return make_error(ErrorKind::usage, "audit.signer_invalid",
                          "a checkpoint signer is required");
    }
    if (!is_valid_origin(options.origin)) {
        return make_error(ErrorKind::usage, "audit.origin_invalid",
                          "origin must be 1-255 printable ASCII characters without spaces");
    }
    if (options.checkpoint_every == 0 || options.checkpoint_interval.count() <= 0 ||
        options.max_batch == 0 || options.max_pending == 0 || options.segment_max_bytes == 0 ||
        options.sync_timeout.count() <= 0 || options.report_interval.count() < 0) {
        return make_error(ErrorKind::usage, "audit.options_invalid",
                          "checkpoint_every, checkpoint_interval, max_batch, max_pending, "
                          "segment_max_bytes and sync_timeout must be positive");
    }
    auto cp_signer = CheckpointSigner::create(options.key_name, *deps.signer);
    if (!cp_signer) return std::move(cp_signer).error();

    std::unique_ptr<AuditLog> log(
        new AuditLog(std::move(options), deps, std::move(cp_signer).value()));
    const LogOptions& opt = log->options_;
    const fs::path& dir = opt.dir;

    std::error_code ec;
    if (!fs::exists(dir, ec)) {
        if (::mkdir(dir.c_str(), 0700) != 0) {
            return io_error("audit.io_error", "cannot create " + dir.string(), errno);
        }
    }
    log->dir_fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!log->dir_fd_) return io_error("audit.io_error", "cannot open " + dir.string(), errno);
    const fs::path lock_path = dir / std::string(kLockFile);
    log->lock_fd_.reset(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!log->lock_fd_)
        return io_error("audit.io_error", "cannot open " + lock_path.string(), errno);
    if (::flock(log->lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return make_error(ErrorKind::conflict, "audit.locked",
                              "another process has the audit log open: " + dir.string());
        }
        return io_error("audit.io_error", "cannot lock " + lock_path.string(), errno);
    }

    // Temporary files of an interrupted prune; the segments they were made from are whole.
    if (auto left = remove_prune_leftovers(dir, *log->ops_, log->dir_fd_.get()); !left) {
        return std::move(left).error();
    }

    // Read everything once, strictly.
    Finding finding;
    auto scan = scan_log_directory(dir, &finding);
    if (!scan) return std::move(scan).error();
    const NoteVerifier& verifier = log->cp_signer_.verifier();
    if (auto st = check_checkpoints(*scan, verifier, opt.origin, &finding); !st) {
        return std::move(st).error();
    }
    std::optional<Checkpoint> newest;
    if (!scan->checkpoints.empty()) {
        newest = *verifier.open_checkpoint(scan->checkpoints.back().note);
    }

    // The anchor holds a checkpoint the directory cannot roll back.
    std::optional<Checkpoint> anchored;
    if (deps.anchor != nullptr) {
        auto stored = deps.anchor->load();
        if (!stored) return std::move(stored).error();
        if (*stored) {
            auto cp = verifier.open_checkpoint(**stored);
            if (!cp) {
                return integrity("audit.anchor_invalid",
                                 "the anchored checkpoint does not verify: " + cp.error().message);
            }
            if (cp->origin != opt.origin) {
                return integrity("audit.anchor_mismatch",
                                 "the anchored checkpoint has origin '" + cp->origin + "'");
            }
            const std::uint64_t size = scan->tree.size();
            if (cp->size > size) {
                return integrity("audit.rolled_back",
                                 "log holds " + std::to_string(size) +
                                     " entries but the anchored checkpoint signed " +
                                     std::to_string(cp->size) +
                                     ": the log was truncated or rolled back");
            }
            if (*scan->tree.root(cp->size) != cp->root) {
                return integrity("audit.anchor_mismatch",
                                 "the first " + std::to_string(cp->size) +
                                     " entries do not hash to the anchored root");
            }
            if (!newest || newest->size < cp->size) {
                return integrity("audit.rolled_back",
                                 std::string(kCheckpointsFile) +
                                     " is older than the anchored checkpoint of size " +
                                     std::to_string(cp->size) + ": it was rolled back");
            }
            anchored = std::move(cp).value();
            log->recovery_.anchored_size = anchored->size;
        }
    }

    // Cut back records a crash left half-written; they were never acknowledged.
    if (scan->torn_log) {
        if (auto st = truncate_file(dir / scan->torn_log->file, scan->torn_log->offset); !st) {
            return std::move(st).error();
        }
        log->recovery_.torn_log = scan->torn_log;
    }
    if (scan->torn_checkpoint) {
        if (auto st =
                truncate_file(dir / scan->torn_checkpoint->file, scan->torn_checkpoint->offset);
            !st) {
            return std::move(st).error();
        }
        log->recovery_.torn_checkpoint = scan->torn_checkpoint;
    }

    // Files for appending.
    bool created = false;
    if (scan->segments.empty()) {
        scan->segments.push_back(SegmentInfo{segment_file_name(0), 0, 0});
        created = true;
    }
    const SegmentInfo& last = scan->segments.back();
    const fs::path seg_path = dir / last.file;
    log->seg_fd_.reset(::open(seg_path.c_str(),
                              O_WRONLY | O_APPEND | O_CLOEXEC | (created ? O_CREAT | O_EXCL : 0),
                              0600));
    if (!log->seg_fd_) return io_error("audit.io_error", "cannot open " + seg_path.string(), errno);
    log->segment_number_ = scan->segments.size() - 1;
    log->segment_bytes_ = last.bytes;
    const fs::path cp_path = dir / std::string(kCheckpointsFile);
    created = created || !fs::exists(cp_path, ec);
    log->cp_fd_.reset(::open(cp_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!log->cp_fd_) return io_error("audit.io_error", "cannot open " + cp_path.string(), errno);
    if (created && ::fsync(log->dir_fd_.get()) != 0) {
        return io_error("audit.io_error", "cannot sync " + dir.string(), errno);
    }
    if (struct stat st{}; ::fstat(log->cp_fd_.get(), &st) == 0) {
        log->metrics_.checkpoint_unix_ms =
            std::int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    }

    // In-memory state.
    for (std::uint64_t i = 0; i < scan->tree.size(); ++i) log->frontier_.append(scan->tree.leaf(i));
    log->tree_ = std::move(scan->tree);
    log->offsets_ = std::move(scan->offsets);
    log->segments_ = std::move(scan->segments);
    log->pruned_ = std::move(scan->pruned);
    if (newest) {
        log->latest_note_ = scan->checkpoints.back().note;
        log->checkpoint_size_ = newest->size;
    }
    log->recovery_.size = log->tree_.size();
    log->recovery_.checkpoint_size = log->checkpoint_size_;

    // Cover entries written before a crash (and an empty new log) with a checkpoint now, and
    // bring the anchor up to the newest checkpoint.
    if (!newest || log->checkpoint_size_ < log->tree_.size()) {
        if (auto st = log->sign_checkpoint(); !st) return std::move(st).error();
        if (auto err = log->checkpoint_error()) return *err;
    } else if (deps.anchor != nullptr && (!anchored || anchored->size < newest->size)) {
        if (auto st = deps.anchor->store(log->latest_note_); !st) return std::move(st).error();
    }

    log->next_seq_ = log->tree_.size();
    log->checkpointer_ = std::thread([raw = log.get()] {
        core::name_this_thread("audit-checkpoint");
        raw->run_checkpointer();
    });
    log->writer_ = std::thread([raw = log.get()] {
        core::name_this_thread("audit-writer");
        raw->run_writer();
    });
    log->watchdog_ = std::thread([raw = log.get()] {
        core::name_this_thread("audit-watch");
        raw->run_watchdog();
    });
    return log;
}

AuditLog::~AuditLog() { (void)close(); }

// ---- appending -------------------------------------------------------------------------------

std::optional<core::Error> AuditLog::submit(Pending& p, const Entry& entry) {
    // The costly part (validation, canonical JSON) runs here, in parallel across appenders.
    auto line = serialize_entry_template(entry);
    if (!line) return std::move(line).error();
    p.line = std::move(line).value();
    {
        std::lock_guard lk(mu_);
        if (state_.load() == LogState::failed) return failed_error();
        if (slow_.load()) return sync_timeout_error();
        if (stopping_ || state_.load() == LogState::closed) {
            return make_error(ErrorKind::unavailable, "audit.log_closed", "audit log is closed");
        }
        if (queue_.size() >= options_.max_pending) {
            return make_error(ErrorKind::overloaded, "audit.queue_full",
                              "too many pending appends");
        }
        // seq and time are taken together under the lock: seq order is queue order is file
        // order, and times never decrease along seq.
        const core::TimePoint now = core::Clock::now();
        const std::int64_t ms = core::unix_millis(now);
        if (ms != time_ms_) {
            time_text_ = core::format_rfc3339_ms(now);
            time_ms_ = ms;
        }
        p.seq = next_seq_++;
        p.mid_len = format_seq_time(p.seq, time_text_, p.mid.data());
        queue_.push_back(&p);
    }
    cv_.notify_one();
    return std::nullopt;
}

void AuditLog::finish_hash(Pending& p) noexcept {
    crypto::Sha256 h;
    h.update(std::uint8_t{0x00});
    h.update(core::as_bytes(p.line.head));
    h.update(core::as_bytes(std::string_view(p.mid.data(), p.mid_len)));
    h.update(core::as_bytes(p.line.tail));
    p.leaf = h.finish();
    // Last touch of an async Pending by its appender: once hashed is set the writer thread
    // may free it (notify_all only uses the address, never the object).
    p.hashed.store(1, std::memory_order_release);
    p.hashed.notify_all();
}

void AuditLog::wait_hashed(Pending& p) noexcept {
    while (p.hashed.load(std::memory_order_acquire) == 0) p.hashed.wait(0);
}

std::optional<AuditLog::Answer> AuditLog::claim(Pending& p) noexcept {
    wait_hashed(p);  // `done` is set before hashed
    if (p.answered.exchange(true, std::memory_order_acq_rel)) return std::nullopt;
    return Answer{std::move(p.done), p.waiter};
}

void AuditLog::deliver(Answer answer, core::Result<Appended> result) noexcept {
    if (answer.waiter == nullptr) {
        complete(answer.done, std::move(result));
        return;
    }
    SyncWait* w = answer.waiter;
    w->result.emplace(std::move(result));
    w->completed.store(1, std::memory_order_release);
    w->completed.notify_one();  // the appender may return at once; only the address is used
}

void AuditLog::finish(Pending* p, core::Result<Appended> result) noexcept {
    if (auto answer = claim(*p)) deliver(std::move(*answer), std::move(result));
    delete p;
}

void AuditLog::fail_all(std::vector<Pending*>& items, const core::Error& error) noexcept {
    for (Pending* p : items) finish(p, error);
    items.clear();
}

core::Result<Appended> AuditLog::append(Entry entry) {
    SyncWait wait;
    auto p = std::make_unique<Pending>();
    p->waiter = &wait;
    if (auto rejected = submit(*p, entry)) return std::move(*rejected);
    finish_hash(*p.release());  // queued: the log owns it now
    while (wait.completed.load(std::memory_order_acquire) == 0) wait.completed.wait(0);
    return std::move(*wait.result);
}

void AuditLog::append_async(Entry entry, AppendCallback done) {
    auto p = std::make_unique<Pending>();
    if (auto rejected = submit(*p, entry)) {
        complete(done, std::move(*rejected));
        return;
    }
    p->done = std::move(done);  // not read before hashed is set
    finish_hash(*p.release());
}

void AuditLog::run_writer() {
    std::unique_lock lk(mu_);
    while (true) {
        cv_.wait(lk, [&] {
            return !queue_.empty() || stopping_ || checkpoint_requested_ > checkpoint_forwarded_ ||
                   slow_.load();
        });
        if (queue_.empty() && !stopping_ && checkpoint_requested_ == checkpoint_forwarded_) {
            // Slow and idle (appends are refused): find out whether the disk keeps time again.
            lk.unlock();
            probe_sync();
            lk.lock();
            continue;
        }
        Batch batch;
        if (queue_.size() <= options_.max_batch) {
            batch.items.swap(queue_);
            queue_.reserve(batch.items.size());
        } else {
            const auto split = queue_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch);
            batch.items.assign(queue_.begin(), split);
            queue_.erase(queue_.begin(), split);
        }
        const bool new_request = checkpoint_requested_ > checkpoint_forwarded_;
        checkpoint_forwarded_ = checkpoint_requested_;
        const bool stop = stopping_ && queue_.empty();
        lk.unlock();

        if (!batch.items.empty()) write_batch(batch);  // a failure answers and clears the items
        if (!batch.items.empty()) publish(batch);
        // A checkpoint_now() request covers every entry queued before it: published by now.
        if (new_request || stop) signal_checkpointer(checkpoint_forwarded_, stop);
        if (stop) return;
        lk.lock();
    }
}

core::Status AuditLog::write_all(int fd, std::string_view data) {
    // write(2) may write less than asked (signals, quotas, nearly full disks): continue from
    // where it stopped; any error is final.
    while (!data.empty()) {
        const ssize_t n = ops_->write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error("audit.write_failed", "audit write failed", errno);
        }
        if (n == 0) return io_error("audit.write_failed", "audit write made no progress", EIO);
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return core::ok_status();
}

core::Status AuditLog::roll_segment(std::uint64_t first_index) {
    const std::string name = segment_file_name(segment_number_ + 1);
    const fs::path path = options_.dir / name;
    core::UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return io_error("audit.write_failed", "cannot create " + path.string(), errno);
    if (ops_->fsync(dir_fd_.get()) != 0) {
        return io_error("audit.write_failed", "cannot sync " + options_.dir.string(), errno);
    }
    seg_fd_ = std::move(fd);
    ++segment_number_;
    segment_bytes_ = 0;
    std::unique_lock tl(tree_mu_);
    segments_.push_back(SegmentInfo{name, first_index, 0});
    return core::ok_status();
}

// Writer thread: bytes out, one fdatasync. Everything else happens elsewhere.
void AuditLog::write_batch(Batch& batch) {
    if (state_.load() != LogState::open) {
        fail_all(batch.items, failed_error());
        return;
    }
    // The deadline covers everything that can block on the disk: creating and syncing a new
    // segment too, not only the write and fdatasync.
    const auto sync_start = SteadyClock::now();
    metrics_.batch_entries.observe(static_cast<double>(batch.items.size()));
    begin_sync(&batch.items);
    if (segment_bytes_ >= options_.segment_max_bytes) {
        if (auto st = roll_segment(batch.items.front()->seq); !st) {
            (void)end_sync();
            enter_failed(st.error());
            fail_all(batch.items, failed_error());
            return;
        }
    }

    std::size_t total = 0;
    for (const Pending* p : batch.items) {
        total += p->line.head.size() + p->mid_len + p->line.tail.size() + 1;
    }
    std::string buffer;
    buffer.reserve(total);
    batch.offsets.reserve(batch.items.size());
    for (const Pending* p : batch.items) {
        batch.offsets.push_back(segment_bytes_ + buffer.size());
        buffer += p->line.head;
        buffer.append(p->mid.data(), p->mid_len);
        buffer += p->line.tail;
        buffer.push_back('\n');
    }

    core::Status st = write_all(seg_fd_.get(), buffer);
    if (st && ops_->fdatasync(seg_fd_.get()) != 0) {
        st = io_error("audit.sync_failed", "audit fdatasync failed", errno);
    }
    metrics_.sync_seconds.observe(
        std::chrono::duration<double>(SteadyClock::now() - sync_start).count());
    const bool late = end_sync();
    if (!st) {
        // Fail closed: whatever reached the file is not acknowledged, and nothing more will be
        // written; a reopen cuts a partial line back.
        enter_failed(st.error());
        fail_all(batch.items, failed_error());
        return;
    }
    segment_bytes_ += buffer.size();
    batch.segment = static_cast<std::size_t>(segment_number_);
    batch.segment_bytes = segment_bytes_;
    if (!late && slow_.load()) clear_slow();
}

void AuditLog::publish(Batch& batch) {
    for (Pending* p : batch.items) wait_hashed(*p);
    bool every_reached = false;
    {
        std::unique_lock tl(tree_mu_);
        for (std::size_t i = 0; i < batch.items.size(); ++i) {
            tree_.append(batch.items[i]->leaf);
            frontier_.append(batch.items[i]->leaf);
            offsets_.push_back(batch.offsets[i]);
        }
        segments_[batch.segment].bytes = batch.segment_bytes;
        every_reached = frontier_.size() - checkpoint_size_ >= options_.checkpoint_every;
    }
    for (Pending* p : batch.items) finish(p, Appended{p->seq, p->leaf});
    batch.items.clear();
    // The checkpoint thread sleeps until the interval deadline of the oldest unsigned entry, or
    // until checkpoint_every entries wait: it is woken only when one of them is new.
    bool wake = false;
    {
        std::lock_guard cl(cp_mu_);
        if (!checkpoint_due_) {
            checkpoint_due_ = SteadyClock::now() + options_.checkpoint_interval;
            wake = true;
        }
        if (every_reached && !cp_entries_due_) {
            cp_entries_due_ = true;
            wake = true;
        }
    }
    if (wake) cp_cv_.notify_one();
}

void AuditLog::signal_checkpointer(std::uint64_t requested, bool stop) {
    {
        std::lock_guard cl(cp_mu_);
        cp_requested_ = std::max(cp_requested_, requested);
        cp_stop_ = cp_stop_ || stop;
    }
    cp_cv_.notify_one();
}

// Checkpoint thread: signs when checkpoint_every entries wait, at the interval deadline, on
// checkpoint_now() and at the stop.
void AuditLog::run_checkpointer() {
    std::unique_lock lk(cp_mu_);
    std::uint64_t seen = 0;
    while (true) {
        auto ready = [&] { return cp_entries_due_ || cp_requested_ > seen || cp_stop_; };
        if (!ready()) {
            if (checkpoint_due_) {
                cp_cv_.wait_until(lk, *checkpoint_due_, ready);
            } else {
                // The first entry after a checkpoint sets the deadline: wait for that one again.
                cp_cv_.wait(lk, [&] { return ready() || checkpoint_due_.has_value(); });
                if (!ready()) continue;
            }
        }
        const bool stop = cp_stop_;
        const std::uint64_t requested = cp_requested_;
        cp_entries_due_ = false;
        lk.unlock();

        maybe_checkpoint(stop || requested > seen);
        if (requested > seen) {
            seen = requested;
            {
                std::lock_guard ml(mu_);
                checkpoint_done_ = std::max(checkpoint_done_, requested);
            }
            checkpoint_cv_.notify_all();
        }
        if (stop) break;
        lk.lock();
    }
    {
        std::lock_guard ml(mu_);
        checkpointer_done_ = true;
    }
    checkpoint_cv_.notify_all();
}

// ---- checkpoints -----------------------------------------------------------------------------

core::Status AuditLog::sign_checkpoint() {
    Checkpoint c;
    {
        std::shared_lock tl(tree_mu_);
        c = Checkpoint{options_.origin, frontier_.size(), frontier_.root()};
    }
    auto note = cp_signer_.sign(c);
    if (!note) {
        report(Report::checkpoint_failed,
               "audit checkpoint: signing failed: " + note.error().to_string() +
                   "; entries stay durable, retrying at the next trigger");
        std::lock_guard lk(status_mu_);
        checkpoint_error_ = note.error();
        return core::ok_status();
    }
    core::Status st = write_all(cp_fd_.get(), *note);
    if (st && ops_->fdatasync(cp_fd_.get()) != 0) {
        st = io_error("audit.sync_failed", "checkpoint fdatasync failed", errno);
    }
    if (!st) {
        enter_failed(st.error());
        return st;
    }
    {
        std::unique_lock tl(tree_mu_);
        latest_note_ = *note;
        checkpoint_size_ = c.size;
    }
    metrics_.checkpoint_unix_ms = core::unix_millis(core::Clock::now());
    std::optional<core::Error> anchor_error;
    if (deps_.anchor != nullptr) {
        if (auto ast = deps_.anchor->store(*note); !ast) anchor_error = ast.error();
    }
    if (anchor_error) {
        report(Report::checkpoint_failed,
               "audit checkpoint: storing the anchor on the HSM failed: " +
                   anchor_error->to_string() + "; retrying at the next trigger");
    } else {
        report_recovery(Report::checkpoint_failed,
                        "audit checkpoint: signed and anchored again "
                        "(tree size " +
                            std::to_string(c.size) + ")");
    }
    std::lock_guard lk(status_mu_);
    checkpoint_error_ = std::move(anchor_error);
    return core::ok_status();
}

void AuditLog::maybe_checkpoint(bool force) {
    if (state_.load() == LogState::failed) return;
    std::uint64_t signed_size = 0;
    std::uint64_t size = 0;
    {
        std::shared_lock tl(tree_mu_);
        signed_size = checkpoint_size_;
        size = frontier_.size();
    }
    if (size == signed_size) {
        schedule_checkpoint(std::nullopt);
        return;
    }
    bool due = force || size - signed_size >= options_.checkpoint_every;
    if (!due) {
        std::lock_guard cl(cp_mu_);
        due = checkpoint_due_ && SteadyClock::now() >= *checkpoint_due_;
    }
    if (!due) return;
    if (auto st = sign_checkpoint(); !st) return;  // the log is failed now
    if (checkpoint_error()) {
        // Signing or anchoring failed: retry later, not in a tight loop.
        schedule_checkpoint(SteadyClock::now() +
                            std::min<std::chrono::milliseconds>(options_.checkpoint_interval,
                                                                std::chrono::seconds(5)));
        return;
    }
    schedule_checkpoint(std::nullopt);
}

void AuditLog::schedule_checkpoint(std::optional<SteadyClock::time_point> retry) {
    std::lock_guard cl(cp_mu_);
    if (retry) {
        checkpoint_due_ = retry;
        return;
    }
    // The writer sets the deadline only when none is set: entries it published while this
    // checkpoint was signed need one now.
    std::shared_lock tl(tree_mu_);
    if (frontier_.size() == checkpoint_size_) {
        checkpoint_due_.reset();
    } else {
        checkpoint_due_ = SteadyClock::now() + options_.checkpoint_interval;
    }
}

core::Status AuditLog::checkpoint_now() {
    std::unique_lock lk(mu_);
    if (state_.load() != LogState::open || stopping_) return failed_error();
    const std::uint64_t target = ++checkpoint_requested_;
    cv_.notify_one();
    checkpoint_cv_.wait(lk, [&] { return checkpoint_done_ >= target || checkpointer_done_; });
    lk.unlock();
    if (state_.load() == LogState::failed) return failed_error();
    if (auto err = checkpoint_error()) return *err;
    return core::ok_status();
}

core::Status AuditLog::close() {
    {
        std::lock_guard lk(mu_);
        if (!writer_.joinable()) {
            if (state_.load() == LogState::failed) return failed_error();
            return core::ok_status();
        }
        stopping_ = true;
    }
    cv_.notify_all();
    writer_.join();        // drains the queue, completes every waiter, hands over the stop signal
    checkpointer_.join();  // signs the final checkpoint
    {
        std::lock_guard wl(watch_mu_);
        watch_stop_ = true;
    }
    watch_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    seg_fd_.reset();
    cp_fd_.reset();
    if (state_.load() == LogState::failed) return failed_error();
    state_.store(LogState::closed);
    return core::ok_status();
}

// ---- state -----------------------------------------------------------------------------------

void AuditLog::enter_failed(core::Error error) {
    bool first = false;
    {
        std::lock_guard lk(status_mu_);
        if (!failure_) {
            failure_ = make_error(ErrorKind::unavailable, "audit.log_failed",
                                  "audit log failed closed: " + error.code + ": " + error.message);
            first = true;
        }
    }
    std::vector<Pending*> drained;
    {
        std::lock_guard lk(mu_);
        state_.store(LogState::failed);
        slow_.store(false);  // failed supersedes slow
        drained.swap(queue_);
    }
    cv_.notify_all();
    if (first) {
        report(Report::write_failed, "audit log failed closed: " + error.code + ": " +
                                         error.message +
                                         "; signing is refused until the daemon is restarted");
    }
    fail_all(drained, failed_error());
}

core::Error AuditLog::sync_timeout_error() const {
    return make_error(ErrorKind::unavailable, "audit.sync_timeout",
                      "the audit log is slow: a write + fdatasync took longer than " +
                          millis_text(options_.sync_timeout));
}

// ---- sync deadline ---------------------------------------------------------------------------

void AuditLog::begin_sync(std::vector<Pending*>* items) {
    {
        std::lock_guard wl(watch_mu_);
        sync_started_ = SteadyClock::now();
        inflight_ = items;
        sync_flagged_ = false;
        if (!watch_idle_) return;
        watch_idle_ = false;
    }
    watch_cv_.notify_all();
}

bool AuditLog::end_sync() {
    std::lock_guard wl(watch_mu_);
    const bool late = sync_flagged_ || SteadyClock::now() - *sync_started_ >= options_.sync_timeout;
    sync_started_.reset();
    inflight_ = nullptr;  // from here on the watchdog no longer touches the batch
    sync_flagged_ = false;
    return late;
}

void AuditLog::run_watchdog() {
    std::unique_lock wl(watch_mu_);
    while (!watch_stop_) {
        if (!sync_started_ || sync_flagged_) {
            watch_idle_ = true;
            watch_cv_.wait(wl);
            watch_idle_ = false;
            continue;
        }
        const auto deadline = *sync_started_ + options_.sync_timeout;
        if (SteadyClock::now() < deadline) {
            watch_cv_.wait_until(wl, deadline);
            continue;
        }
        // Past the deadline: every waiter hears "audit.sync_timeout" now. Their entries stay in
        // the batch and the queue and are written in order when the disk answers.
        sync_flagged_ = true;
        std::vector<Answer> answers;
        if (inflight_ != nullptr) {
            for (Pending* p : *inflight_) {
                if (auto a = claim(*p)) answers.push_back(std::move(*a));
            }
        }
        bool entered = false;
        {
            std::lock_guard lk(mu_);
            if (state_.load() == LogState::open) entered = !slow_.exchange(true);
            for (Pending* p : queue_) {
                if (auto a = claim(*p)) answers.push_back(std::move(*a));
            }
        }
        wl.unlock();
        const core::Error error = sync_timeout_error();
        for (Answer& a : answers) deliver(std::move(a), error);
        if (entered) {
            report(Report::sync_late,
                   "audit log: sync past deadline: write + fdatasync has taken more than " +
                       millis_text(options_.sync_timeout) + " (audit.sync_timeout); " +
                       std::to_string(answers.size()) +
                       " waiting appends failed, appends are refused until a sync completes in "
                       "time");
        }
        wl.lock();
    }
}

void AuditLog::clear_slow() {
    bool was_slow = false;
    {
        std::lock_guard lk(mu_);
        was_slow = slow_.exchange(false);
    }
    if (was_slow) {
        report_recovery(Report::sync_late,
                        "audit log: sync completed within the deadline again; appends resume");
    }
}

void AuditLog::probe_sync() {
    begin_sync(nullptr);
    const int rc = ops_->fdatasync(seg_fd_.get());
    const int err = errno;
    const bool late = end_sync();
    if (rc != 0) {
        enter_failed(io_error("audit.sync_failed", "audit fdatasync failed", err));
        return;
    }
    if (!late) clear_slow();
}

// ---- operational log -------------------------------------------------------------------------

void AuditLog::report(Report kind, const std::string& line) {
    if (!deps_.log) return;
    std::string out = line;
    {
        std::lock_guard rl(report_mu_);
        ReportState& r = reports_[static_cast<std::size_t>(kind)];
        const auto now = SteadyClock::now();
        if (r.last && now - *r.last < options_.report_interval) {
            ++r.suppressed;
            return;
        }
        if (r.suppressed > 0) {
            out += " (" + std::to_string(r.suppressed) + " similar lines suppressed)";
        }
        r.last = now;
        r.suppressed = 0;
        r.reported = true;
    }
    deps_.log(out);
}

void AuditLog::report_recovery(Report kind, const std::string& line) {
    if (!deps_.log) return;
    {
        std::lock_guard rl(report_mu_);
        ReportState& r = reports_[static_cast<std::size_t>(kind)];
        if (!r.reported) return;
        r.reported = false;
    }
    deps_.log(line);
}

core::Error AuditLog::failed_error() const {
    std::lock_guard lk(status_mu_);
    if (failure_) return *failure_;
    return make_error(ErrorKind::unavailable, "audit.log_closed", "audit log is closed");
}

LogState AuditLog::state() const noexcept { return state_.load(); }

std::optional<core::Error> AuditLog::failure() const {
    std::lock_guard lk(status_mu_);
    return failure_;
}

std::optional<core::Error> AuditLog::checkpoint_error() const {
    std::lock_guard lk(status_mu_);
    return checkpoint_error_;
}

// ---- reads -----------------------------------------------------------------------------------

std::uint64_t AuditLog::size() const {
    std::shared_lock tl(tree_mu_);
    return tree_.size();
}

std::uint64_t AuditLog::checkpoint_size() const {
    std::shared_lock tl(tree_mu_);
    return checkpoint_size_;
}

Hash AuditLog::root() const {
    std::shared_lock tl(tree_mu_);
    return frontier_.root();
}

core::Result<Hash> AuditLog::root(std::uint64_t size) const {
    std::shared_lock tl(tree_mu_);
    return tree_.root(size);
}

core::Result<Hash> AuditLog::leaf(std::uint64_t index) const {
    std::shared_lock tl(tree_mu_);
    if (index >= tree_.size()) {
        return make_error(ErrorKind::not_found, "audit.index_out_of_range", "no such entry");
    }
    return tree_.leaf(index);
}

std::string AuditLog::latest_checkpoint() const {
    std::shared_lock tl(tree_mu_);
    return latest_note_;
}

core::Result<std::vector<Hash>> AuditLog::inclusion_proof(std::uint64_t index,
                                                          std::uint64_t size) const {
    std::shared_lock tl(tree_mu_);
    return tree_.inclusion_proof(index, size);
}

core::Result<std::vector<Hash>> AuditLog::consistency_proof(std::uint64_t first,
                                                            std::uint64_t second) const {
    std::shared_lock tl(tree_mu_);
    return tree_.consistency_proof(first, second);
}

bool AuditLog::is_pruned(std::uint64_t index) const {
    auto it = std::upper_bound(pruned_.begin(), pruned_.end(), index,
                               [](std::uint64_t v, const PrunedRange& r) { return v < r.first; });
    if (it == pruned_.begin()) return false;
    --it;
    return index - it->first < it->count;
}

std::string pruned_entry_line(std::uint64_t index, const Hash& leaf) {
    return "{\"leaf_hash\":\"" + core::base64_encode(leaf) +
           "\",\"pruned\":true,\"seq\":" + std::to_string(index) + "}";
}

namespace {

// Adds ranges to into, keeping it sorted by first and merged where ranges touch or overlap.
void merge_pruned_ranges(std::vector<PrunedRange>& into, const std::vector<PrunedRange>& ranges) {
    into.insert(into.end(), ranges.begin(), ranges.end());
    std::sort(into.begin(), into.end(),
              [](const PrunedRange& a, const PrunedRange& b) { return a.first < b.first; });
    std::vector<PrunedRange> merged;
    for (const PrunedRange& r : into) {
        if (!merged.empty() && r.first <= merged.back().first + merged.back().count) {
            PrunedRange& last = merged.back();
            last.count = std::max(last.first + last.count, r.first + r.count) - last.first;
        } else {
            merged.push_back(r);
        }
    }
    into = std::move(merged);
}

}  // namespace

core::Result<PruneReport> AuditLog::prune_before(core::TimePoint before) {
    std::lock_guard pl(prune_mu_);
    if (state_.load() != LogState::open) return failed_error();
    PruneReport report;
    std::string last_segment;
    {
        std::shared_lock tl(tree_mu_);
        report.size = tree_.size();
        report.newest_checkpoint = checkpoint_size_;
        // The writer writes a batch (starting a segment for it when the last one is full)
        // before it publishes the batch: only a segment whose entries are all in the tree (the
        // next one starts at or below its size) is rewritten, so no offset published later can
        // go stale.
        std::size_t open_segment = 0;
        while (open_segment + 1 < segments_.size() &&
               segments_[open_segment + 1].first_index <= tree_.size()) {
            ++open_segment;
        }
        last_segment = segments_[open_segment].file;
        report.limit = std::min(checkpoint_size_, segments_[open_segment].first_index);
    }
    if (report.limit == 0) return report;  // no sealed, signed entry

    PruneHooks hooks;
    hooks.check_leaf = [this](std::uint64_t index, const Hash& leaf) {
        std::shared_lock tl(tree_mu_);
        return index < tree_.size() && tree_.leaf(index) == leaf;
    };
    hooks.commit = [this](const RewrittenSegment& seg,
                          const std::function<core::Status()>& rename) -> core::Status {
        std::unique_lock tl(tree_mu_);
        auto it = std::find_if(segments_.begin(), segments_.end(),
                               [&](const SegmentInfo& s) { return s.file == seg.file; });
        if (it == segments_.end() || it->first_index != seg.first_index ||
            seg.first_index + seg.offsets.size() > offsets_.size()) {
            return integrity("audit.entry_changed",
                             seg.file + " no longer holds the entries the log published");
        }
        if (auto st = rename(); !st) return st;
        // Readers hold tree_mu_ shared while they read a segment by offset: from here on they
        // open the new file with its offsets, never the new file with the old ones.
        std::copy(seg.offsets.begin(), seg.offsets.end(),
                  offsets_.begin() + static_cast<std::ptrdiff_t>(seg.first_index));
        it->bytes = seg.bytes;
        merge_pruned_ranges(pruned_, seg.pruned);
        return core::ok_status();
    };
    Finding finding;
    if (auto st = prune_segments(options_.dir, *ops_, dir_fd_.get(), before, report.limit,
                                 last_segment, hooks, report, &finding);
        !st) {
        return std::move(st).error();
    }
    return report;
}

bool AuditLog::pruned(std::uint64_t index) const {
    std::shared_lock tl(tree_mu_);
    return is_pruned(index);
}

core::Result<std::vector<std::string>> AuditLog::read_entries(std::uint64_t start,
                                                              std::uint64_t end) const {
    std::shared_lock tl(tree_mu_);
    if (start > end || end > tree_.size() || end - start > kMaxReadEntries) {
        return make_error(ErrorKind::usage, "audit.range_invalid",
                          "need start <= end <= size and at most 10000 entries");
    }
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(end - start));
    core::UniqueFd fd;
    std::size_t open_segment = segments_.size();
    for (std::uint64_t i = start; i < end; ++i) {
        if (is_pruned(i)) {
            out.push_back(pruned_entry_line(i, tree_.leaf(i)));
            continue;
        }
        auto it = std::upper_bound(
            segments_.begin(), segments_.end(), i,
            [](std::uint64_t v, const SegmentInfo& s) { return v < s.first_index; });
        const auto seg = static_cast<std::size_t>(std::distance(segments_.begin(), it) - 1);
        if (seg != open_segment) {
            const fs::path path = options_.dir / segments_[seg].file;
            fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!fd) return io_error("audit.io_error", "cannot open " + path.string(), errno);
            open_segment = seg;
        }
        const std::uint64_t begin = offsets_[i];
        const bool same_segment = i + 1 < tree_.size() && (seg + 1 >= segments_.size() ||
                                                           i + 1 < segments_[seg + 1].first_index);
        const std::uint64_t stop = same_segment ? offsets_[i + 1] : segments_[seg].bytes;
        std::string line(static_cast<std::size_t>(stop - begin), '\0');
        std::size_t got = 0;
        while (got < line.size()) {
            const ssize_t n = ::pread(fd.get(), line.data() + got, line.size() - got,
                                      static_cast<off_t>(begin + got));
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                const int err = n < 0 ? errno : EIO;
                return io_error("audit.io_error", "cannot read " + segments_[seg].file, err);
            }
            got += static_cast<std::size_t>(n);
        }
        if (line.empty() || line.back() != '\n') {
            return integrity("audit.entry_malformed", "entry changed on disk");
        }
        line.pop_back();
        out.push_back(std::move(line));
    }
    return out;
}

}  // namespace licentra::audit
