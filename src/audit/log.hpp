// The append-only, tamper-evident audit log (DESIGN.md "Audit log", "Reliability promises").
//
// Appending threads validate and serialize their entry, take the next seq and the time under a
// short lock (so seq order is queue order is file order) and compute its leaf hash themselves.
// One writer thread owns the segment file: it takes everything queued, writes the batch with one
// write loop and one fdatasync, adds the batch to the tree and completes every waiter (group
// commit), then starts on the next batch. A checkpoint thread signs checkpoints, woken only when
// one is due, so a slow or hung HSM never holds up an append. An append is acknowledged only
// once durable. Any write or sync
// error puts the log in the failed state for good: later appends fail with
// ErrorKind::unavailable, nothing is retried, nothing is reordered.
//
// A watchdog thread bounds each write + fdatasync by LogOptions::sync_timeout: past it, every
// waiting append fails with "audit.sync_timeout" (their entries are still written, in order,
// once the disk answers: an entry without its token is harmless, a token without its entry is
// not) and the log is slow (not healthy, appends refused) until a later sync completes in time.
//
// Failures, deadline misses and checkpoint-signing errors are reported as single lines through
// LogDependencies::log, at most one line per kind per LogOptions::report_interval; a recovery
// writes one line.
//
// Leaf hashes (and the hashes of complete subtrees) are kept in memory, about 64 bytes per
// entry, so roots and proofs never reread the files; the root itself comes from a CompactRange
// updated per append. At open the whole log is read once, parsed strictly and rehashed.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/anchor.hpp"
#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"
#include "audit/file_ops.hpp"
#include "audit/journal.hpp"
#include "audit/merkle.hpp"
#include "audit/prune.hpp"
#include "audit/store.hpp"
#include "core/grant.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "core/unique_fd.hpp"
#include "crypto/signer.hpp"

namespace licentra::audit {

// What read_entries() returns for an entry whose payload was pruned:
// {"leaf_hash":"<base64>","pruned":true,"seq":<index>}. No entry line can look like it (every
// entry begins with {"action":).
[[nodiscard]] std::string pruned_entry_line(std::uint64_t index, const Hash& leaf);

struct LogOptions {
    std::filesystem::path dir;  // created (0700) if missing
    std::string origin;         // checkpoint origin line, e.g. "licentra.example/audit/node-1"
    std::string key_name;       // signed-note key name, e.g. "licentra.example/audit"
    std::uint64_t segment_max_bytes = 64ULL << 20;  // start a new segment file past this size
    std::uint64_t checkpoint_every = 1000;          // sign after this many new entries ...
    std::chrono::milliseconds checkpoint_interval{60'000};  // ... or this long after the first
                                                            // unsigned one, whichever is first
    std::size_t max_batch = 4096;                           // entries per write + fdatasync
    std::size_t max_pending = 65536;  // queued appends beyond this fail with ErrorKind::overloaded
    // Longest write + fdatasync of a batch before its appends fail with "audit.sync_timeout".
    std::chrono::milliseconds sync_timeout{5'000};
    // At most one operational log line per kind of failure in this period.
    std::chrono::milliseconds report_interval{10'000};
};

struct LogDependencies {
    crypto::Signer* signer = nullptr;    // required: Ed25519 checkpoint key
    CheckpointAnchor* anchor = nullptr;  // optional (tests); the daemon always sets it
    FileOps* file_ops = nullptr;         // optional; default posix_file_ops()
    // Optional operational log (one line per call, no newline). Called from the log's threads
    // without any of its locks held; must be thread-safe and must not call into the log.
    std::function<void(std::string_view)> log = nullptr;
};

// What open() found and repaired.
struct RecoveryReport {
    std::optional<TornTail> torn_log;            // cut back from the last segment
    std::optional<TornTail> torn_checkpoint;     // cut back from the checkpoints file
    std::uint64_t size = 0;                      // entries after recovery
    std::uint64_t checkpoint_size = 0;           // newest checkpoint in the directory at open
    std::optional<std::uint64_t> anchored_size;  // the anchor's checkpoint size, if any
};

enum class LogState { open, failed, closed };

// What the writer and the checkpoints did, for /metrics. Updated lock-free.
struct LogMetrics {
    // Each batch's write + fdatasync (and segment roll), seconds.
    core::metrics::Histogram sync_seconds{core::metrics::kLatencySeconds};
    // Entries per batch (group commit).
    core::metrics::Histogram batch_entries{core::metrics::kSizes};
    // When the newest checkpoint was stored (Unix milliseconds): signed by this process, or at
    // open the modification time of the checkpoints file.
    std::atomic<std::int64_t> checkpoint_unix_ms{0};
};

class AuditLog final : public Journal {
  public:
    // Opens (or creates) the log in options.dir: takes the directory lock, reads and verifies
    // every entry and checkpoint, checks the anchored checkpoint, cuts back a torn final record,
    // signs a checkpoint if the log holds entries no checkpoint covers, starts the writer.
    // Errors: usage (options, signer), conflict "audit.locked" (another writer), unavailable
    // (I/O), integrity with the reasons of scan_log_directory / check_checkpoints plus
    // "audit.rolled_back" (log or checkpoints older than the anchored checkpoint) and
    // "audit.anchor_mismatch"; the message names the file and byte offset. The dependencies
    // must outlive the log.
    static core::Result<std::unique_ptr<AuditLog>> open(LogOptions options, LogDependencies deps);

    // close(), then release everything.
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Appends entry (its seq and time are assigned here) and returns once it is durable.
    // Errors: usage "audit.entry_invalid" (validate_entry), unavailable "audit.log_failed" /
    // "audit.log_closed", overloaded "audit.queue_full". Thread-safe. Must not be called from an
    // AppendCallback (it would wait for the thread running the callback).
    [[nodiscard]] core::Result<Appended> append(Entry entry) override;

    // Same, without blocking: done runs exactly once, on one of the log's threads after the
    // entry is durable or has failed (or at once on the calling thread if the entry is rejected
    // up front); successful completions run in seq order, on the writer thread. done must be
    // quick (the next batch's write waits for it) and must not call append(); append_async()
    // from it is fine. Thread-safe.
    void append_async(Entry entry, AppendCallback done) override;

    // Drains the queue, signs a final checkpoint if entries are unsigned, stops the writer and
    // closes the files. Idempotent. Returns the failure that stopped the log, if any.
    core::Status close();

    // Signs a checkpoint now if any entry is unsigned; returns after it is stored.
    [[nodiscard]] core::Status checkpoint_now();

    [[nodiscard]] LogState state() const noexcept;
    // Open, and not slow.
    [[nodiscard]] bool healthy() const noexcept override {
        return state() == LogState::open && !slow_.load();
    }
    // A write + fdatasync missed sync_timeout and no later sync has completed within it yet;
    // appends fail with unavailable "audit.sync_timeout" meanwhile. Clears by itself.
    [[nodiscard]] bool slow() const noexcept { return slow_.load(); }
    // The error that put the log into the failed state.
    [[nodiscard]] std::optional<core::Error> failure() const;
    // The last checkpoint signing or anchoring error (the log keeps running; it retries at the
    // next trigger). Empty once a later checkpoint succeeds.
    [[nodiscard]] std::optional<core::Error> checkpoint_error() const;
    [[nodiscard]] const RecoveryReport& recovery() const noexcept { return recovery_; }
    [[nodiscard]] const NoteVerifier& verifier() const noexcept override {
        return cp_signer_.verifier();
    }
    [[nodiscard]] const LogOptions& options() const noexcept { return options_; }
    [[nodiscard]] const LogMetrics& metrics() const noexcept { return metrics_; }

    // Durable entries. Thread-safe, like every read below.
    [[nodiscard]] std::uint64_t size() const override;
    // Entries the newest signed checkpoint covers (<= size()).
    [[nodiscard]] std::uint64_t checkpoint_size() const override;
    // Root of the whole log (from the compact range) and of any earlier size.
    [[nodiscard]] Hash root() const;
    [[nodiscard]] core::Result<Hash> root(std::uint64_t size) const override;
    [[nodiscard]] core::Result<Hash> leaf(std::uint64_t index) const override;
    // The newest signed checkpoint note (there is always one once open() succeeded).
    [[nodiscard]] std::string latest_checkpoint() const override;
    [[nodiscard]] core::Result<std::vector<Hash>> inclusion_proof(
        std::uint64_t index, std::uint64_t size) const override;
    [[nodiscard]] core::Result<std::vector<Hash>> consistency_proof(
        std::uint64_t first, std::uint64_t second) const override;
    // Raw canonical lines [start, end), end <= size(), at most 10000 per call. An entry whose
    // payload was pruned (`licentra audit prune`) reads as pruned_entry_line(): its seq and the
    // leaf hash that was kept, never a parse error.
    [[nodiscard]] core::Result<std::vector<std::string>> read_entries(
        std::uint64_t start, std::uint64_t end) const override;
    // Whether entry index's payload was pruned (its leaf hash is kept).
    [[nodiscard]] bool pruned(std::uint64_t index) const override;
    // Journal::reader: what a principal's audit.read grant lets it read (audit/journal.hpp).

    // Prunes, while the log runs, exactly what `licentra audit prune --before` would
    // (prune_segments, docs/audit.md#pruning): the payloads of entries whose time is before
    // `before`, below the newest checkpoint's size, outside the segment being appended to (and
    // outside any segment whose entries are not all published yet). Each affected segment is
    // written to a temporary file, synced, and renamed over the segment under the tree lock
    // that read_entries() and the proofs take, in the same step as the new offsets and pruned
    // ranges are published; then the directory is synced. A crash leaves each segment whole or
    // pruned, and open() removes the temporary file. Appends go on meanwhile; the scan reads
    // the whole log, so callers run it rarely (the daemon: audit.prune_after). Idempotent.
    // Every entry about to be pruned must hash to its leaf in the tree (else integrity
    // "audit.entry_changed" and nothing more is pruned). Errors: unavailable "audit.log_failed" /
    // "audit.log_closed"; the scan's findings; "audit.io_error" (the segment being rewritten
    // stays as it was; segments already rewritten stay pruned, which is consistent). Thread-safe;
    // concurrent calls run one after the other. Appends nothing: the caller audits the prune.
    [[nodiscard]] core::Result<PruneReport> prune_before(core::TimePoint before);

  private:
    // Where a synchronous append() sleeps; on its own stack, set exactly once.
    struct SyncWait {
        std::optional<core::Result<Appended>> result;
        std::atomic<std::uint32_t> completed{0};
    };
    // One queued append. The appending thread serializes the entry (EntryTemplate) before it
    // takes the queue lock, gets seq and time under it, and computes the leaf hash after
    // releasing it (hashed = 1); the writer only concatenates bytes. Every Pending is allocated
    // by its appender and, once queued, owned by the log, which frees it after the entry was
    // published or failed. It is answered exactly once (`answered`): by the writer once durable,
    // by a failure, or earlier by the watchdog when its sync misses the deadline.
    struct Pending {
        EntryTemplate line;                        // canonical bytes around seq and time
        std::array<char, kMaxSeqTimeBytes> mid{};  // "seq":N,"time":"..."
        std::size_t mid_len = 0;
        std::uint64_t seq = 0;
        Hash leaf{};
        std::atomic<std::uint32_t> hashed{0};  // leaf is set
        std::atomic<bool> answered{false};
        AppendCallback done;         // append_async
        SyncWait* waiter = nullptr;  // append
    };
    // A claimed answer, delivered outside every lock.
    struct Answer {
        AppendCallback done;
        SyncWait* waiter = nullptr;
    };
    // What the writer takes from the queue in one go and makes durable.
    struct Batch {
        std::vector<Pending*> items;
        std::vector<std::uint64_t> offsets;  // per item, in its segment
        std::size_t segment = 0;             // index into segments_
        std::uint64_t segment_bytes = 0;     // segment length after this batch
    };

    AuditLog(LogOptions options, LogDependencies deps, CheckpointSigner signer);
    bool is_pruned(std::uint64_t index) const;  // tree_mu_ held

    // Appending-thread side: validate + serialize, then take seq/time and queue. Returns the
    // rejection, if any (then p is not queued).
    std::optional<core::Error> submit(Pending& p, const Entry& entry);
    static void finish_hash(Pending& p) noexcept;
    static void wait_hashed(Pending& p) noexcept;
    // Claims p's answer unless someone already did.
    static std::optional<Answer> claim(Pending& p) noexcept;
    static void deliver(Answer answer, core::Result<Appended> result) noexcept;
    // Answers p (unless already answered) and frees it.
    static void finish(Pending* p, core::Result<Appended> result) noexcept;
    void fail_all(std::vector<Pending*>& items, const core::Error& error) noexcept;

    void run_writer();
    void write_batch(Batch& batch);
    // Writer thread: a durable batch into the tree, then its waiters; tells the checkpoint
    // thread when a checkpoint becomes due.
    void publish(Batch& batch);
    // Writer thread: hands a checkpoint_now() generation or the stop signal over.
    void signal_checkpointer(std::uint64_t requested, bool stop);
    void run_checkpointer();
    core::Status write_all(int fd, std::string_view data);
    core::Status roll_segment(std::uint64_t first_index);
    // Signs and stores a checkpoint of the current tree. Disk errors fail the log; signing and
    // anchoring errors are kept in checkpoint_error_.
    core::Status sign_checkpoint();
    void maybe_checkpoint(bool force);
    // After a checkpoint attempt: the interval deadline of entries not yet covered (none when
    // every entry is), or `retry`. Takes cp_mu_, then tree_mu_.
    void schedule_checkpoint(std::optional<std::chrono::steady_clock::time_point> retry);
    void enter_failed(core::Error error);
    core::Error failed_error() const;
    core::Error sync_timeout_error() const;

    // Deadline of the writer's syncs: begin_sync/end_sync bracket each write + fdatasync (items
    // may be null for a sync without entries); end_sync returns whether it missed the deadline.
    void begin_sync(std::vector<Pending*>* items);
    bool end_sync();
    void run_watchdog();
    // The log becomes healthy again after a sync within the deadline.
    void clear_slow();
    // A sync when the log is slow and nothing is queued, to learn whether the disk is back.
    void probe_sync();

    // Operational log lines, rate-limited per kind.
    enum class Report { write_failed, sync_late, checkpoint_failed, count };
    void report(Report kind, const std::string& line);
    void report_recovery(Report kind, const std::string& line);

    LogOptions options_;
    LogDependencies deps_;
    FileOps* ops_;
    CheckpointSigner cp_signer_;
    RecoveryReport recovery_;

    core::UniqueFd dir_fd_;
    core::UniqueFd lock_fd_;
    core::UniqueFd seg_fd_;             // writer thread
    core::UniqueFd cp_fd_;              // checkpoint thread
    std::uint64_t segment_number_ = 0;  // writer thread only
    std::uint64_t segment_bytes_ = 0;   // writer thread only

    // Queue, guarded by mu_.
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Pending*> queue_;
    std::uint64_t next_seq_ = 0;
    std::int64_t time_ms_ = -1;  // time_text_ is format_rfc3339_ms of this millisecond
    std::string time_text_;
    bool stopping_ = false;
    std::uint64_t checkpoint_requested_ = 0;  // checkpoint_now() generations
    std::uint64_t checkpoint_forwarded_ = 0;  // handed to the checkpoint thread (writer)
    std::uint64_t checkpoint_done_ = 0;
    bool checkpointer_done_ = false;
    std::condition_variable checkpoint_cv_;
    std::thread writer_;

    // Writer -> checkpoint thread signals and the checkpoint schedule, guarded by cp_mu_ (taken
    // before tree_mu_ where both are held).
    std::mutex cp_mu_;
    std::condition_variable cp_cv_;
    std::uint64_t cp_requested_ = 0;  // checkpoint_now() generations handed over
    bool cp_entries_due_ = false;     // checkpoint_every entries since the last checkpoint
    bool cp_stop_ = false;            // the writer is done: sign the final checkpoint, end
    std::optional<std::chrono::steady_clock::time_point> checkpoint_due_;  // interval deadline
    std::thread checkpointer_;

    // Tree and indexes, written by the writer under tree_mu_, read by anyone.
    mutable std::shared_mutex tree_mu_;
    MerkleTree tree_;
    CompactRange frontier_;
    std::vector<std::uint64_t> offsets_;
    std::vector<SegmentInfo> segments_;
    std::vector<PrunedRange> pruned_;  // grows only through prune_before
    std::mutex prune_mu_;              // one prune_before at a time
    std::string latest_note_;
    std::uint64_t checkpoint_size_ = 0;

    // Watchdog, guarded by watch_mu_ (taken before mu_ where both are held).
    std::mutex watch_mu_;
    std::condition_variable watch_cv_;
    std::optional<std::chrono::steady_clock::time_point> sync_started_;
    std::vector<Pending*>* inflight_ = nullptr;  // entries of the sync in progress
    bool sync_flagged_ = false;                  // the sync in progress missed its deadline
    bool watch_stop_ = false;
    // The watchdog waits without a deadline (no sync in progress): the next sync must wake it.
    // While it waits for a deadline, a later sync only moves the deadline later, which it sees
    // when it wakes: no wake-up per batch under load.
    bool watch_idle_ = false;
    std::thread watchdog_;
    std::atomic<bool> slow_{false};  // written under mu_

    // Rate limiting of operational log lines.
    struct ReportState {
        std::optional<std::chrono::steady_clock::time_point> last;
        std::uint64_t suppressed = 0;
        bool reported = false;  // a failure line was written and no recovery line since
    };
    std::mutex report_mu_;
    std::array<ReportState, static_cast<std::size_t>(Report::count)> reports_{};

    std::atomic<LogState> state_{LogState::open};
    mutable std::mutex status_mu_;
    std::optional<core::Error> failure_;
    std::optional<core::Error> checkpoint_error_;

    LogMetrics metrics_;
};

}  // namespace licentra::audit
