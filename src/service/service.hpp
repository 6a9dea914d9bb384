// The use cases of licentra-signd. Each is authorize -> act -> audit, failing closed:
// no token is returned unless its audit entry is durable.
//
// The service knows nothing about HTTP or PKCS#11: net/ (through app/) turns requests into
// calls here, keys/ reaches the HSM, audit/ records every decision. Blocking work (HSM calls)
// runs on the Executor the caller supplies; completion callbacks run on that executor's thread
// or on the audit writer thread and must be quick.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/anchor.hpp"
#include "audit/checkpoint_waiter.hpp"
#include "audit/journal.hpp"
#include "core/identity.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "keys/key_manager.hpp"
#include "policy/approval.hpp"
#include "policy/engine.hpp"
#include "policy/holder.hpp"
#include "policy/rate_limiter.hpp"
#include "service/request_records.hpp"

namespace licentra::service {

// Where blocking work runs (the daemon's HSM work pool). post() returns false when the queue
// is full; the job is then not run.
class Executor {
  public:
    virtual ~Executor() = default;
    [[nodiscard]] virtual bool post(std::function<void()> job) = 0;
    // As post(), for HSM work with a deadline (hsm.call_timeout): when job has not finished in
    // time, on_overrun runs once on another thread and the thread stuck in job is replaced
    // (net::WorkPool). The default has no deadline.
    [[nodiscard]] virtual bool post_bounded(std::function<void()> job,
                                            std::function<void()> on_overrun) {
        (void)on_overrun;
        return post(std::move(job));
    }
};

// Who is asking, as proven at the TLS handshake, and the request's id.
struct Caller {
    core::ClientIdentity identity;
    std::string request_id;
};

struct IssuedToken {
    std::string token;
    std::string kid;
    std::uint64_t audit_index = 0;
};

// Where approval requests live: append-only CKO_DATA objects on the HSM token under
// "licentra/request/" (service/request_records.hpp). Names are relative to that root.
class RequestStore {
  public:
    virtual ~RequestStore() = default;
    // Creates one more record; never replaces an existing one.
    [[nodiscard]] virtual core::Status create(const std::string& name, const std::string& json) = 0;
    // Every record whose name starts with prefix ("" = all), as (name, JSON text).
    [[nodiscard]] virtual core::Result<std::vector<std::pair<std::string, std::string>>> list(
        const std::string& prefix) = 0;
    [[nodiscard]] virtual core::Status remove(const std::string& name) = 0;
    // Asks the store to read its backing token from scratch: what this replica sees stopped
    // matching what the others wrote (docs/adr/0004). why says in the log what showed it.
    virtual void reload_view(std::string_view why) { (void)why; }
};

struct Dependencies {
    RequestStore* requests = nullptr;
    policy::EngineHolder* policy = nullptr;
    // The key lifecycle and the audit log, through the narrow interfaces the use cases need
    // (the daemon passes its KeyManager and AuditLog).
    keys::Keyring* keys = nullptr;
    audit::Journal* audit = nullptr;
    audit::Pseudonymizer* pseudonymizer = nullptr;  // required if any key records pseudonyms
    Executor* executor = nullptr;
    // How this replica shares decisions with the others (docs/adr/0004).
    std::string replica = "licentra-signd";
    keys::ClaimTiming claims;
    // How a close claimer waits for the claims to settle (keys/claim.hpp); empty: in real
    // time. Tests of one process, whose claims settle at once, pass a wait that returns.
    std::function<void(std::chrono::milliseconds)> claim_wait{};
    // How long a replica that lost a close claim waits for the winner's outcome.
    std::chrono::milliseconds outcome_wait{std::chrono::seconds(30)};
    // Learns of every checkpoint the log stores (audit::WaiterAnchor), so a receipt can wait for
    // the checkpoint that covers its entry. Without it a receipt is only served once covered.
    audit::CheckpointWaiter* checkpoints = nullptr;
    // How long a receipt waits for that checkpoint: the log's checkpoint_interval plus a
    // margin for signing (the daemon derives it), and Retry-After when it did not come.
    std::chrono::milliseconds receipt_wait{std::chrono::seconds(65)};
    std::chrono::seconds receipt_retry_after{5};
    // The wall clock every use case reads (request times, expiry, token times, the published
    // key set); empty: core::Clock::now. Tests inject one to decide at chosen instants.
    std::function<core::TimePoint()> clock{};
    // The operational log: why a request could not be closed (a claim withdrawn as too slow,
    // every try contended). Empty: not logged.
    std::function<void(std::string_view)> log{};
};

class Service {
  public:
    // What closing a request led to (lifecycle.cpp).
    struct Closed {
        StoredRequest request;      // the request after the close (or as the winner left it)
        bool decided_here = false;  // this replica's claim won and it acted
        // Why the operation failed, when the request closed as failed.
        std::optional<core::Error> failure;
    };

    // Validates its dependencies: a request store, the policy, the key manager, the audit log,
    // the pseudonymizer and the executor are required (checkpoints is optional), the replica
    // name is non-empty, the claim timing can work (settle > write bound > 0) and the waits are
    // positive. Errors: usage "service.missing_dependency" naming the first one missing,
    // "service.bad_dependency" naming the value that cannot work.
    [[nodiscard]] static core::Result<std::unique_ptr<Service>> create(Dependencies deps);
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // POST /v1/tokens. authorize (token.sign on key) -> rate limit -> validate claims (every
    // violation) -> set iss/iat/jti -> sign with the key's active version on the executor ->
    // append the audit entry and wait until durable -> done(token). Denials and failures are
    // audited too (best effort: the denial is answered even if the log is down).
    // If the audit log is not healthy the request fails with unavailable before signing.
    void sign_token(Caller caller, std::string key, nlohmann::json claims,
                    std::function<void(core::Result<IssuedToken>)> done);

    // The JWKS as published, and how long a cache may keep it: half the shortest publish-ahead
    // period of the policy's keys (a new version is in the set at least that long before it
    // signs, so a cache that keeps the set half of it still learns the key in time), at most
    // one hour, at least zero.
    struct PublishedJwks {
        std::string body;
        std::chrono::seconds max_age{0};
    };
    // GET /.well-known/jwks.json on the API listener (jwks.read).
    [[nodiscard]] core::Result<PublishedJwks> jwks(const Caller& caller);
    // The same on the public listener: public keys for anyone, no caller, nothing audited.
    [[nodiscard]] core::Result<PublishedJwks> public_jwks();
    // GET /v1/keys, /v1/keys/{name} (keys.read): key metadata as JSON. Listing shows only the
    // keys the caller may read.
    [[nodiscard]] core::Result<nlohmann::json> list_keys(const Caller& caller);
    [[nodiscard]] core::Result<nlohmann::json> get_key(const Caller& caller,
                                                       const std::string& name);

    // Audit reads (audit.read).
    [[nodiscard]] core::Result<std::string> audit_checkpoint(const Caller& caller);
    [[nodiscard]] core::Result<std::string> audit_entries(const Caller& caller, std::uint64_t start,
                                                          std::uint64_t end);  // JSON lines
    [[nodiscard]] core::Result<nlohmann::json> inclusion_proof(const Caller& caller,
                                                               std::uint64_t index,
                                                               std::uint64_t size);
    [[nodiscard]] core::Result<nlohmann::json> consistency_proof(const Caller& caller,
                                                                 std::uint64_t first,
                                                                 std::uint64_t second);

    // GET /v1/tokens/receipt?audit_index=I (docs/api.md): the inclusion receipt of a token's
    // audit entry, in the C2SP tlog-proof format with the entry as its extra data
    // (audit/receipt.hpp). Who: a principal that may token.sign with the entry's key. Order:
    // identify -> the caller may token.sign with some key (403) -> index < log size (404
    // audit.index_out_of_range) -> the entry's payload is not pruned (404
    // service.entry_pruned) -> the entry's key is one the caller may sign with (403, also
    // for entries without a key) -> the entry is an allowed token.sign (409
    // service.not_token_entry) -> a signed checkpoint covers it, waiting up to
    // Dependencies::receipt_wait for the next one (else 503 service.receipt_pending with
    // retry_after). Refusals are audited as action "token.receipt". With token_sha256 (64
    // lowercase hex) the entry must record that token (409 service.token_mismatch otherwise,
    // revealing nothing of the entry): with several replicas an index names an entry of one
    // replica's log only. Reads the log's files: call it off the io threads. done runs once, on
    // the calling thread or on the waiter's thread.
    void token_receipt(const Caller& caller, std::uint64_t index,
                       std::optional<std::string> token_sha256,
                       std::function<void(core::Result<std::string>)> done);

    // ---- key lifecycle under dual control (lifecycle.cpp) ----
    // POST /v1/keys/{name}/rotations, .../versions/{n}/retire, .../versions/{n}/destroy:
    // opens an approval request (stored on the HSM token, so it survives restarts and every
    // daemon sharing the token sees it). If the policy's quorum is already met (quorum 0) it
    // executes at once. Returns the request view (see request_json) with "executed".
    [[nodiscard]] core::Result<nlohmann::json> open_request(const Caller& caller,
                                                            policy::Operation op,
                                                            const std::string& key,
                                                            std::optional<std::uint32_t> version,
                                                            bool force);
    // GET /v1/requests, /v1/requests/{id}: pending requests on keys the caller may approve,
    // reject or request.
    [[nodiscard]] core::Result<nlohmann::json> list_requests(const Caller& caller);
    [[nodiscard]] core::Result<nlohmann::json> get_request(const Caller& caller,
                                                           const std::string& id);
    // POST /v1/requests/{id}/approve: records the approval (never the requester's, never twice,
    // never after expiry); at quorum the operation executes. expected_digest (hex), when given,
    // must match the request's digest.
    [[nodiscard]] core::Result<nlohmann::json> approve_request(
        const Caller& caller, const std::string& id, std::optional<std::string> expected_digest);
    // POST /v1/requests/{id}/reject: closes the request.
    [[nodiscard]] core::Result<nlohmann::json> reject_request(const Caller& caller,
                                                              const std::string& id);

    // Periodic work (the daemon calls it every refresh interval): expires requests, executes
    // approved requests whose execution no replica finished, runs scheduled rotations that are
    // due, creates missing keys and removes requests decided more than an hour ago. Every
    // change is audited as principal "system". (Pre-active versions start signing by time
    // alone: see KeyManager.) Call it from one thread at a time. A token on which the requests
    // cannot be listed is logged once, and again once they can be (not at every tick).
    void tick(core::TimePoint now);

    // Creates v1 of every policy key that has none (audited as principal "system").
    [[nodiscard]] core::Status bootstrap_keys();

    // The name the current policy gives the certificate's holder, or unknown_principal_name:
    // for the access log. Decides nothing.
    [[nodiscard]] std::string principal_name(const core::ClientIdentity& identity) const;

    // Counters for /metrics.
    struct Stats {
        std::atomic<std::uint64_t> tokens_issued{0};
        std::atomic<std::uint64_t> denied{0};
        std::atomic<std::uint64_t> failed{0};
        // Tokens issued (signed and audited) by key and algorithm.
        core::metrics::Family<core::metrics::Counter> tokens{{"key", "algorithm"}, 256};
        // The HSM signature of a token, by algorithm, seconds.
        core::metrics::HistogramFamily sign_seconds{
            {"algorithm"}, 16, core::metrics::kLatencySeconds};
    };
    [[nodiscard]] const Stats& stats() const noexcept { return stats_; }
    // Pending approval requests by key (every policy key, 0 for none), as the last tick() found
    // them on the token.
    [[nodiscard]] std::map<std::string, std::uint64_t> pending_requests() const;

  private:
    explicit Service(Dependencies deps);
    // deps_.clock, or the system clock.
    [[nodiscard]] core::TimePoint clock_now() const {
        return deps_.clock ? deps_.clock() : core::Clock::now();
    }
    // One line to the operational log (deps_.log), if there is one.
    void log(const std::string& line) const {
        if (deps_.log) deps_.log(line);
    }
    // Resolves the caller to a principal with the given engine snapshot; a certificate the
    // policy does not name is refused and the refusal of `action` is audited.
    [[nodiscard]] core::Result<const policy::Principal*> identify(
        const policy::Engine& engine, const Caller& caller, std::string_view action,
        std::optional<std::string> key = std::nullopt);
    template <class Tag>
    [[nodiscard]] core::Result<core::Grant<Tag>> authorize_read(const Caller& caller,
                                                                std::string_view key);
    // Appends a denial/failure entry without waiting (best effort).
    void audit_refusal(const policy::Engine& engine, std::string principal, std::string action,
                       const Caller& caller, std::optional<std::string> key,
                       const core::Error& error, std::vector<std::string> claims = {});

    // Lifecycle helpers (lifecycle.cpp).
    [[nodiscard]] core::Result<StoredRequest> load_request(const std::string& id,
                                                           core::TimePoint now);
    // Closes request `id` with decision d on behalf of principal, against every replica: only
    // the winning claim acts (executes, or records the rejection or expiry), audits it and
    // writes the outcome. A loser waits for the outcome when wait is set.
    [[nodiscard]] core::Result<Closed> close(const policy::Engine& engine, const std::string& id,
                                             Decision d, const std::string& principal,
                                             const Caller& caller, bool wait);
    [[nodiscard]] core::Result<keys::KeyVersion> run_operation(const policy::Engine& engine,
                                                               const policy::ApprovalRequest& r,
                                                               const std::string& principal,
                                                               const Caller& caller,
                                                               core::TimePoint now);
    [[nodiscard]] keys::ClaimStorage claim_storage() const;
    // The receipt of entry `index` (its canonical line) against the newest checkpoint.
    [[nodiscard]] core::Result<std::string> build_receipt(std::uint64_t index,
                                                          const std::string& line) const;
    // The answer when an execution had to wait for a passing fault: the request view with
    // "execution_deferred", or the error itself if it is not such a fault.
    [[nodiscard]] core::Result<nlohmann::json> deferred(const core::Error& error,
                                                        const std::string& id);
    void audit_request(const policy::Engine& engine, const std::string& principal,
                       const std::string& action, const policy::ApprovalRequest& r,
                       const Caller& caller, audit::Outcome result,
                       std::optional<std::string> reason = std::nullopt);
    [[nodiscard]] keys::TransitionHook transition_hook(const std::string& principal,
                                                       const std::string& request_id,
                                                       std::optional<std::string> digest);
    void tick_scheduled_rotations(const policy::Engine& engine, core::TimePoint now,
                                  const std::vector<std::string>& pending_rotation_keys);

    Dependencies deps_;
    policy::RateLimiter limiter_;
    Stats stats_;
    // A request that reads as closing, or an executed rotation whose version the key manager
    // does not show, for longer than a close takes, or an approved request that nobody closed:
    // this replica's view of the token may have stopped matching it; asks for a re-read, at
    // most once per stale_view_after(). True when it asked.
    bool suspect_stale_view(const std::string& why, core::TimePoint now);
    void suspect_closing(const StoredRequest& s, core::TimePoint now);
    void suspect_unseen_version(const std::string& key, const OutcomeRecord& o,
                                core::TimePoint now);
    [[nodiscard]] std::chrono::milliseconds stale_view_after() const;
    std::atomic<std::int64_t> last_view_reload_ms_{0};

    // Why the last tick could not list the requests ("" if it could); tick's thread only.
    std::string tick_list_error_;
    mutable std::mutex pending_mu_;
    std::map<std::string, std::uint64_t> pending_;  // by key, guarded by pending_mu_
};

// When the scheduled rotation of a key's active version is due (Unix milliseconds): the next
// version is created publish_ahead before the rotation period ends. None without a rotation
// period, without an active version, or while a pre-active version waits.
[[nodiscard]] std::optional<std::int64_t> scheduled_rotation_due_ms(
    const policy::KeyRules& rules, const std::vector<keys::KeyVersion>& versions);

// The JSON view of an approval request served by the API (docs/api.md).
[[nodiscard]] nlohmann::json request_json(const policy::ApprovalRequest& r, core::TimePoint now);
// The same for a stored request: state "closing" while a replica executes it; "result" and
// "closed_by" once it is closed.
[[nodiscard]] nlohmann::json request_json(const StoredRequest& s, core::TimePoint now);

// A principal name for audit entries when the certificate maps to no principal:
// "cert:<first 16 hex of the SPKI SHA-256>".
[[nodiscard]] std::string unknown_principal_name(const core::ClientIdentity& identity);

}  // namespace licentra::service
