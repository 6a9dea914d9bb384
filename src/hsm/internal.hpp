// Internals of the PKCS#11 layer, shared by src/hsm/*.cpp and the hsm tests only.
// This is the one header that includes pkcs11.h (p11-kit's copy).
#pragma once

#include <p11-kit/pkcs11.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "core/secret.hpp"
#include "hsm/hsm.hpp"

namespace licentra::hsm {

// Attribute values for templates (PKCS#11 templates take pointers, so they need storage).
inline constexpr CK_BBOOL kTrue = CK_TRUE;
inline constexpr CK_BBOOL kFalse = CK_FALSE;
// CK_ATTRIBUTE.pValue is non-const even in templates the token only reads.
inline CK_VOID_PTR ptr(const void* p) { return const_cast<void*>(p); }

// ---- CK_RV classification: the one place that decides what a return value means ----
enum class Fault {
    none,          // CKR_OK
    request,       // the request itself was rejected (arguments, mechanism, template)
    conflict,      // contradicts token state (read-only, another user logged in)
    stale_handle,  // object/key handle no longer valid: find the object again
    session,       // this session is broken: evict it, reopen, retry once
    device,        // token or device gone or failing: evict, reopen with backoff, retry once
    auth,          // PIN rejected, locked or expired: never retry
    internal,      // anything else
};
[[nodiscard]] Fault classify(CK_RV rv) noexcept;
[[nodiscard]] core::ErrorKind error_kind(Fault fault) noexcept;
[[nodiscard]] std::string_view fault_code(Fault fault) noexcept;  // "hsm.session_broken", ...
[[nodiscard]] std::string rv_name(CK_RV rv);                      // "CKR_PIN_INCORRECT"
// The error for a failed C_* call: kind and code from classify(rv).
[[nodiscard]] core::Error p11_error(const char* function, CK_RV rv, std::string_view context);
// True when the session should be evicted and the operation retried once.
[[nodiscard]] inline bool evicts_session(Fault f) noexcept {
    return f == Fault::session || f == Fault::device;
}

namespace detail {

// The logged wrapper around every C_* call: with LICENTRA_HSM_TRACE=1 it prints the function
// name and the return value name to stderr. Never arguments (they may hold PINs or data).
bool trace_enabled() noexcept;
void trace(const char* function, CK_RV rv);
std::uint64_t login_calls() noexcept;  // number of C_Login calls in this process (tests)
void count_login() noexcept;
// Counts a C_* call in metrics(): operation and result, and the CKR_* name if it failed.
void count_call(const char* function, CK_RV rv) noexcept;

template <typename Fn, typename... Args>
inline CK_RV call(const char* name, Fn fn, Args... args) {
    const CK_RV rv = fn(args...);
    count_call(name, rv);
    if (trace_enabled()) trace(name, rv);
    return rv;
}
#define LICENTRA_P11(fl, fn, ...) ::licentra::hsm::detail::call(#fn, (fl)->fn, __VA_ARGS__)

struct ModuleState {
    std::filesystem::path path;
    void* dl = nullptr;
    CK_FUNCTION_LIST* fl = nullptr;
    pid_t pid = 0;  // process that called C_Initialize
    bool initialized = false;
    ~ModuleState();
};

struct KeyHandles {
    std::atomic<CK_OBJECT_HANDLE> priv{CK_INVALID_HANDLE};
    std::atomic<CK_OBJECT_HANDLE> pub{CK_INVALID_HANDLE};
    std::atomic<std::uint64_t> epoch{0};  // login epoch the handles were found in
};

// One open PKCS#11 session. C_CloseSession only in the destructor.
class Session {
  public:
    Session(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE h, std::uint64_t generation)
        : fl_(fl), h_(h), generation_(generation) {}
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    [[nodiscard]] CK_SESSION_HANDLE handle() const noexcept { return h_; }
    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
    void set_generation(std::uint64_t g) noexcept { generation_ = g; }

  private:
    CK_FUNCTION_LIST* fl_;
    CK_SESSION_HANDLE h_;
    std::uint64_t generation_;
};

// A find operation; C_FindObjectsFinal in the destructor.
class FindOperation {
  public:
    FindOperation(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s) : fl_(fl), s_(s) {}
    ~FindOperation();
    FindOperation(const FindOperation&) = delete;
    FindOperation& operator=(const FindOperation&) = delete;
    // C_FindObjectsInit + C_FindObjects until exhausted. Returns CKR_OK or the failing rv.
    CK_RV run(CK_ATTRIBUTE* tmpl, CK_ULONG count, std::vector<CK_OBJECT_HANDLE>& out,
              const char** failed_fn);

  private:
    CK_FUNCTION_LIST* fl_;
    CK_SESSION_HANDLE s_;
    bool active_ = false;
};

class TokenState;

// A borrowed pooled session; returns it to the pool (or closes it if evicted) on destruction.
class Lease {
  public:
    Lease() = default;
    Lease(TokenState* pool, std::unique_ptr<Session> s) : pool_(pool), s_(std::move(s)) {}
    ~Lease();
    Lease(Lease&& o) noexcept : pool_(o.pool_), s_(std::move(o.s_)), evict_(o.evict_) {
        o.pool_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    [[nodiscard]] CK_SESSION_HANDLE handle() const noexcept { return s_->handle(); }
    void evict() noexcept { evict_ = true; }

  private:
    TokenState* pool_ = nullptr;
    std::unique_ptr<Session> s_;
    bool evict_ = false;
};

// Per-attempt context handed to operations: the session, and the rv of the failing call so
// the runner can decide whether to evict and retry.
struct Attempt {
    CK_FUNCTION_LIST* fl;
    CK_SESSION_HANDLE session;
    CK_RV fault_rv = CKR_OK;
    const char* fault_function = nullptr;
    core::Error fail(const char* function, CK_RV rv, std::string_view context) {
        fault_rv = rv;
        fault_function = function;
        return p11_error(function, rv, context);
    }
};

class TokenState {
  public:
    std::shared_ptr<Module> module;
    CK_FUNCTION_LIST* fl = nullptr;
    CK_SLOT_ID slot = 0;
    std::string label;
    std::string serial;
    std::string description;  // what the URI looked for, for messages
    core::SecretBytes pin;
    TokenOptions options;

    // Login state. The epoch increases each time a fresh C_Login succeeds after the first:
    // cached object handles from an older epoch are found again before use.
    std::mutex login_mu;
    std::atomic<std::uint64_t> epoch{1};
    std::atomic<bool> pin_rejected{false};
    bool logged_in_once = false;

    // Pool.
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::unique_ptr<Session>> idle;
    std::size_t open_count = 0;    // idle + leased + being opened
    std::uint64_t generation = 1;  // sessions opened before the last fault are suspect
    std::atomic<std::uint64_t> fault_generation{0};
    bool closing = false;

    // Serializes this process's object writes, each preceded by a search: a module may keep a
    // per-process view of the token that a write of its own can mark as current without
    // reading the other processes' writes first (SoftHSM's file store does: docs/hsm.md).
    std::mutex write_mu;

    // Caches (handles only, never data).
    std::mutex cache_mu;
    std::map<std::string, std::shared_ptr<KeyHandles>> hmac_keys;
    std::atomic<int> pss_mode{
        0};  // 0 unknown, 1 CKM_SHA256_RSA_PKCS_PSS, 2 hash + CKM_RSA_PKCS_PSS

    // Operational fault lines (TokenOptions::log).
    FaultLog faults;

    // The module lost the token and keeps it lost: C_GetTokenInfo on our slot answers
    // CKR_GENERAL_ERROR or CKR_SLOT_ID_INVALID after an operation failed. SoftHSM does this when
    // its token directory vanishes (docs/hsm.md, "Fault recovery"): its in-process view stays
    // broken after the files come back until the module is initialized again. While lost,
    // acquire() refuses new work (hsm.token_lost) so in-flight calls drain, and once no session
    // is leased it re-initializes the module (C_Finalize + C_Initialize, at most every
    // kReinitInterval) and selects the token again by label and serial.
    static constexpr std::chrono::milliseconds kReinitInterval{250};
    std::atomic<bool> lost{false};
    // Set by Token::reload_view(): re-initialize even though the token answers, to drop a
    // per-process view of the token that stopped matching it (docs/hsm.md). New calls wait
    // for the calls in flight to drain instead of failing (reload_waiters counts them).
    std::atomic<bool> force_reinit{false};
    std::size_t reload_waiters = 0;                       // guarded by mu
    std::chrono::steady_clock::time_point next_reinit{};  // guarded by mu
    std::uint64_t reinits = 0;                            // guarded by mu (tests, logs)
    // After a failed operation: probes C_GetTokenInfo and sets `lost` when the token is gone
    // in the module's view. Returns true if lost.
    bool check_lost();
    // Under mu with no session leased or being opened: closes the idle sessions, C_Finalize +
    // C_Initialize, finds the token again. Returns true when the token is back.
    bool reinitialize_locked(std::unique_lock<std::mutex>& lock);

    ~TokenState();

    // Reports a failed call to the fault log (request and state-conflict errors are the
    // caller's, not faults). signing: the operation was a signature.
    void note_rv(const Attempt& a, bool signing);

    // Borrows a session: an idle one (checked with C_GetSessionInfo if opened before the last
    // fault), or a new one (opened and logged in with bounded backoff). Waits at most
    // options.acquire_timeout for a free pool slot.
    core::Result<Lease> acquire();  // timed into metrics().session_wait
    core::Result<Lease> acquire_untimed();
    void release(std::unique_ptr<Session> s, bool evict) noexcept;
    // Records a session/device fault: idle sessions opened before it get checked on reuse.
    void note_fault(std::uint64_t session_generation) noexcept;
    core::Result<std::unique_ptr<Session>> open_session_with_backoff();
    core::Result<std::unique_ptr<Session>> open_session_once(CK_RV* rv_out);
    core::Status ensure_login(CK_SESSION_HANDLE s, CK_RV* rv_out);

    // Runs op on a pooled session; a session or device fault evicts the session and the
    // operation is retried once on a fresh session. op: (Attempt&) -> core::Result<T>.
    // signing: a signature (its faults and recoveries are logged apart from the others, so a
    // token that reads but cannot sign is not reported as recovered).
    template <typename T, typename Op>
    core::Result<T> run(Op&& op, bool signing = false) {
        for (int attempt = 0;; ++attempt) {
            auto lease = acquire();
            if (!lease) return std::move(lease).error();
            Attempt a{fl, lease->handle()};
            core::Result<T> r = op(a);
            if (r.ok()) {
                if (faults.faulted()) {
                    if (signing) faults.recovered("signing: ");
                    faults.recovered("hsm.");
                }
                return r;
            }
            note_rv(a, signing);
            if (r.error().kind != core::ErrorKind::usage &&
                r.error().kind != core::ErrorKind::conflict && check_lost()) {
                core::Error e = std::move(r).error();
                e.kind = core::ErrorKind::hsm_unavailable;
                e.code = "hsm.token_lost";
                e.message += " (token " + label +
                             " lost by the module; it is re-initialized "
                             "when no call is in flight)";
                lease->evict();
                return e;
            }
            if (!evicts_session(classify(a.fault_rv))) return r;
            lease->evict();
            if (attempt >= 1) {
                core::Error e = std::move(r).error();
                e.message += " (after one retry on a fresh session)";
                return e;
            }
        }
    }
};

inline core::Status to_status(core::Result<std::monostate> r) {
    if (r) return {};
    return std::move(r).error();
}

// ---- test hooks ----
// C_GetAttributeValue of one attribute on the key's private object; returns the rv.
CK_RV read_private_attribute(Token& token, const KeyRef& key, CK_ATTRIBUTE_TYPE type);
// Key attribute policy, separated so it can be tested on crafted values.
struct KeyAttributes {
    std::optional<bool> token, priv, sensitive, always_sensitive, extractable, never_extractable,
        local, sign, decrypt, unwrap, derive, sign_recover;
    std::optional<bool> pub_verify, pub_encrypt, pub_wrap, pub_derive, pub_token;
};
// Every violated rule, or empty if the key is acceptable.
std::vector<std::string> key_attribute_violations(const KeyAttributes& attrs);

}  // namespace detail
}  // namespace licentra::hsm
