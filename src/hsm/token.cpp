// Token selection by PKCS#11 URI (RFC 7512, parsed by p11-kit), login, and the session pool.
#include <p11-kit/uri.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "hsm/internal.hpp"

namespace licentra::hsm {

using core::ErrorKind;
using core::make_error;

namespace {

// PKCS#11 pads CK_TOKEN_INFO strings with blanks (v2.40 §3.2).
std::string padded(const unsigned char* s, std::size_t n) {
    std::string out(reinterpret_cast<const char*>(s), n);
    while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
    return out;
}

struct UriDeleter {
    void operator()(P11KitUri* u) const noexcept { p11_kit_uri_free(u); }
};
using UriPtr = std::unique_ptr<P11KitUri, UriDeleter>;

struct ParsedUri {
    UriPtr uri;
    std::string looked_for;                 // human description of the selecting attributes
    std::optional<std::string> pin_source;  // decoded, as written
    std::optional<std::filesystem::path> pin_file;
};

// "token label 'x', serial 'y'": what the URI asks for, for error messages.
std::string describe(P11KitUri* uri) {
    CK_TOKEN_INFO* ti = p11_kit_uri_get_token_info(uri);
    std::vector<std::string> parts;
    auto add = [&](const char* what, const unsigned char* field, std::size_t n) {
        // p11-kit leaves unset fields as all zero bytes.
        bool set = false;
        for (std::size_t i = 0; i < n; ++i) set = set || field[i] != 0;
        if (set) parts.push_back(std::string(what) + " '" + padded(field, n) + "'");
    };
    add("token label", ti->label, sizeof ti->label);
    add("serial", ti->serialNumber, sizeof ti->serialNumber);
    add("model", ti->model, sizeof ti->model);
    add("manufacturer", ti->manufacturerID, sizeof ti->manufacturerID);
    if (parts.empty()) return "any initialized token";
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
    return out;
}

core::Result<ParsedUri> parse_uri(const std::string& text) {
    if (text.rfind("pkcs11:", 0) != 0) {
        return make_error(ErrorKind::usage, "hsm.uri_malformed",
                          "malformed PKCS#11 URI: it must start with \"pkcs11:\" (RFC 7512)");
    }
    UriPtr uri(p11_kit_uri_new());
    if (!uri) return make_error(ErrorKind::internal, "hsm.internal", "p11_kit_uri_new failed");
    const int rc = p11_kit_uri_parse(
        text.c_str(), static_cast<P11KitUriType>(P11_KIT_URI_FOR_TOKEN | P11_KIT_URI_FOR_MODULE),
        uri.get());
    if (rc != P11_KIT_URI_OK) {
        return make_error(ErrorKind::usage, "hsm.uri_malformed",
                          std::string("malformed PKCS#11 URI: ") + p11_kit_uri_message(rc));
    }
    if (p11_kit_uri_any_unrecognized(uri.get())) {
        return make_error(ErrorKind::usage, "hsm.uri_malformed",
                          "malformed PKCS#11 URI: it has attributes that do not select a token "
                          "(object, id, type or unknown names)");
    }
    // RFC 7512 §2.3 allows pin-value; we never take a PIN from a URI (it ends up in configs
    // and process listings).
    if (p11_kit_uri_get_pin_value(uri.get()) != nullptr) {
        return make_error(ErrorKind::usage, "hsm.uri_pin_value",
                          "PKCS#11 URI contains pin-value; use pin-source=file:<path> instead");
    }
    ParsedUri out;
    if (const char* src = p11_kit_uri_get_pin_source(uri.get())) {
        std::string s(src);
        out.pin_source = s;
        if (s.rfind("file:", 0) == 0) s = s.substr(5);
        if (s.empty()) {
            return make_error(ErrorKind::usage, "hsm.uri_malformed",
                              "malformed PKCS#11 URI: empty pin-source");
        }
        out.pin_file = s;
    }
    out.looked_for = describe(uri.get());
    out.uri = std::move(uri);
    return out;
}

}  // namespace

core::Result<TokenUri> check_token_uri(const std::string& uri) {
    auto parsed = parse_uri(uri);
    if (!parsed) return std::move(parsed).error();
    return TokenUri{std::move(parsed->pin_source)};
}

// ---- RAII ----
namespace detail {

Session::~Session() {
    // The session may already be invalid (closed behind our back); the rv is irrelevant.
    (void)LICENTRA_P11(fl_, C_CloseSession, h_);
}

FindOperation::~FindOperation() {
    if (active_) (void)LICENTRA_P11(fl_, C_FindObjectsFinal, s_);
}

CK_RV FindOperation::run(CK_ATTRIBUTE* tmpl, CK_ULONG count, std::vector<CK_OBJECT_HANDLE>& out,
                         const char** failed_fn) {
    CK_RV rv = LICENTRA_P11(fl_, C_FindObjectsInit, s_, tmpl, count);
    if (rv != CKR_OK) {
        *failed_fn = "C_FindObjectsInit";
        return rv;
    }
    active_ = true;
    CK_OBJECT_HANDLE batch[64];
    for (;;) {
        CK_ULONG n = 0;
        rv = LICENTRA_P11(fl_, C_FindObjects, s_, batch, CK_ULONG{64}, &n);
        if (rv != CKR_OK) {
            *failed_fn = "C_FindObjects";
            return rv;
        }
        out.insert(out.end(), batch, batch + n);
        if (n < 64) break;
    }
    rv = LICENTRA_P11(fl_, C_FindObjectsFinal, s_);
    active_ = false;
    if (rv != CKR_OK) *failed_fn = "C_FindObjectsFinal";
    return rv;
}

Lease::~Lease() {
    if (pool_ != nullptr && s_) pool_->release(std::move(s_), evict_);
}

// ---- pool ----

TokenState::~TokenState() {
    std::lock_guard lock(mu);
    closing = true;
    idle.clear();  // C_CloseSession per session; the last close logs the token out
}

void TokenState::note_fault(std::uint64_t session_generation) noexcept {
    std::lock_guard lock(mu);
    if (session_generation >= fault_generation.load()) {
        fault_generation.store(generation);
        ++generation;
    }
}

void TokenState::release(std::unique_ptr<Session> s, bool evict) noexcept {
    if (evict) {
        metrics().sessions_evicted.inc();
        note_fault(s->generation());
        s.reset();  // C_CloseSession outside the pool lock
        std::lock_guard lock(mu);
        --open_count;
    } else {
        std::lock_guard lock(mu);
        idle.push_back(std::move(s));
    }
    cv.notify_one();
}

core::Status TokenState::ensure_login(CK_SESSION_HANDLE s, CK_RV* rv_out) {
    *rv_out = CKR_OK;
    CK_SESSION_INFO info{};
    CK_RV rv = LICENTRA_P11(fl, C_GetSessionInfo, s, &info);
    if (rv != CKR_OK) {
        *rv_out = rv;
        return p11_error("C_GetSessionInfo", rv, "checking the new session on token " + label);
    }
    if (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS) {
        return {};
    }
    std::lock_guard lock(login_mu);
    if (pin_rejected.load()) {
        return make_error(ErrorKind::hsm_unavailable, "hsm.pin_incorrect",
                          "token " + label +
                              " rejected the PIN earlier; not trying again (fix the PIN file "
                              "and restart)");
    }
    // Check the PIN counters first: a login at CKF_USER_PIN_FINAL_TRY could lock the token.
    CK_TOKEN_INFO ti{};
    rv = LICENTRA_P11(fl, C_GetTokenInfo, slot, &ti);
    if (rv != CKR_OK) {
        *rv_out = rv;
        return p11_error("C_GetTokenInfo", rv, "token " + label);
    }
    if ((ti.flags & CKF_USER_PIN_LOCKED) != 0) {
        pin_rejected.store(true);
        return make_error(ErrorKind::hsm_unavailable, "hsm.pin_locked",
                          "the user PIN of token " + label + " is locked; an SO must unlock it");
    }
    if ((ti.flags & CKF_USER_PIN_FINAL_TRY) != 0) {
        return make_error(ErrorKind::hsm_unavailable, "hsm.pin_final_try",
                          "token " + label +
                              " would lock the user PIN on one more wrong attempt; refusing to "
                              "log in automatically (check the PIN file, then log in by hand)");
    }
    count_login();
    // C_Login takes a non-const pointer but does not write through it (v2.40 §5.6).
    rv = LICENTRA_P11(fl, C_Login, s, CK_USER_TYPE{CKU_USER},
                      const_cast<CK_UTF8CHAR*>(pin.view().data()),
                      static_cast<CK_ULONG>(pin.size()));
    if (rv == CKR_USER_ALREADY_LOGGED_IN) return {};  // login state is per application
    if (rv == CKR_OK) {
        if (logged_in_once) epoch.fetch_add(1);
        logged_in_once = true;
        return {};
    }
    *rv_out = rv;
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED ||
        rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
        // Never retry a rejected PIN: every attempt counts towards locking the token.
        pin_rejected.store(true);
        auto e = p11_error("C_Login", rv, "logging in to token " + label);
        e.code = rv == CKR_PIN_LOCKED ? "hsm.pin_locked" : "hsm.pin_incorrect";
        return e;
    }
    return p11_error("C_Login", rv, "logging in to token " + label);
}

core::Result<std::unique_ptr<Session>> TokenState::open_session_once(CK_RV* rv_out) {
    *rv_out = CKR_OK;
    if (::getpid() != module->state().pid) {
        return make_error(ErrorKind::internal, "hsm.forked",
                          "PKCS#11 used in a forked child; the module is not fork-safe");
    }
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = LICENTRA_P11(fl, C_OpenSession, slot, CK_FLAGS{CKF_SERIAL_SESSION | CKF_RW_SESSION},
                            nullptr, nullptr, &h);
    if (rv != CKR_OK) {
        *rv_out = rv;
        return p11_error("C_OpenSession", rv, "opening a session on token " + label);
    }
    std::uint64_t gen;
    {
        std::lock_guard lock(mu);
        gen = generation;
    }
    auto session = std::make_unique<Session>(fl, h, gen);
    auto st = ensure_login(h, rv_out);
    if (!st) return std::move(st).error();
    return session;
}

core::Result<std::unique_ptr<Session>> TokenState::open_session_with_backoff() {
    auto delay = options.backoff.initial;
    const unsigned attempts = std::max(1U, options.backoff.attempts);
    for (unsigned i = 1;; ++i) {
        CK_RV rv = CKR_OK;
        auto s = open_session_once(&rv);
        if (s) return s;
        // Only session/device faults are worth waiting for; a PIN or request error is final.
        if (!evicts_session(classify(rv)) || i >= attempts) return s;
        std::this_thread::sleep_for(delay);
        delay = std::min(delay * 2, options.backoff.max);
    }
}

bool TokenState::check_lost() {
    if (lost.load()) return true;
    CK_TOKEN_INFO ti{};
    const CK_RV rv = LICENTRA_P11(fl, C_GetTokenInfo, slot, &ti);
    if (rv != CKR_GENERAL_ERROR && rv != CKR_SLOT_ID_INVALID) return false;
    if (!lost.exchange(true)) {
        faults.fault("hsm.token_lost", "C_GetTokenInfo returned " + rv_name(rv) + " on token " +
                                           label +
                                           " after a failed call; re-initializing the module "
                                           "once no call is in flight");
        std::lock_guard lock(mu);
        next_reinit = std::chrono::steady_clock::now();
    }
    return true;
}

bool TokenState::reinitialize_locked(std::unique_lock<std::mutex>& lock) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_reinit || open_count != idle.size() || closing) return false;
    next_reinit = now + kReinitInterval;
    // Sessions first: their handles mean nothing after C_Finalize and could name new ones.
    idle.clear();
    open_count = 0;
    (void)lock;  // held throughout: acquire() waits while the module is re-initialized
    // The cheap way first: the token may be back by itself (a module that recovers alone).
    CK_TOKEN_INFO ti{};
    if (!force_reinit.load() && LICENTRA_P11(fl, C_GetTokenInfo, slot, &ti) == CKR_OK) {
        lost.store(false);
        epoch.fetch_add(1);
        return true;
    }
    (void)LICENTRA_P11(fl, C_Finalize, nullptr);
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = LICENTRA_P11(fl, C_Initialize, &args);
    ++reinits;
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        faults.fault("hsm.token_lost", "C_Initialize returned " + rv_name(rv) +
                                           " while re-initializing the module for token " + label);
        return false;
    }
    std::vector<CK_SLOT_ID> slots(64);
    CK_ULONG n = static_cast<CK_ULONG>(slots.size());
    rv = LICENTRA_P11(fl, C_GetSlotList, CK_BBOOL{CK_TRUE}, slots.data(), &n);
    if (rv != CKR_OK) return false;
    slots.resize(std::min<std::size_t>(n, slots.size()));
    for (CK_SLOT_ID s : slots) {
        if (LICENTRA_P11(fl, C_GetTokenInfo, s, &ti) != CKR_OK) continue;
        if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
        if (padded(ti.label, sizeof ti.label) != label ||
            padded(ti.serialNumber, sizeof ti.serialNumber) != serial) {
            continue;
        }
        slot = s;
        force_reinit.store(false);
        lost.store(false);
        epoch.fetch_add(1);  // every cached object handle is found again
        ++generation;
        cv.notify_all();  // callers that waited for the re-initialization open sessions now
        if (options.log) {
            options.log("hsm recovery: re-initialized the PKCS#11 module " +
                        module->path().string() + " (C_Finalize + C_Initialize) and found token " +
                        label + " again; sessions are reopened and keys looked up again");
        }
        return true;
    }
    return false;  // not back yet: tried again after kReinitInterval
}

core::Result<Lease> TokenState::acquire() {
    const auto start = std::chrono::steady_clock::now();
    auto lease = acquire_untimed();
    metrics().session_wait.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return lease;
}

core::Result<Lease> TokenState::acquire_untimed() {
    std::unique_lock lock(mu);
    const auto deadline = std::chrono::steady_clock::now() + options.acquire_timeout;
    for (;;) {
        if (lost.load() && !reinitialize_locked(lock)) {
            if (force_reinit.load() && open_count != idle.size() &&
                std::chrono::steady_clock::now() < deadline) {
                // A view reload of a token that still answers: it waits for the calls in
                // flight to finish, and so do new calls (up to the acquire timeout), rather
                // than fail while nothing is wrong with the token.
                ++reload_waiters;
                (void)cv.wait_until(lock, deadline);
                --reload_waiters;
                continue;
            }
            return make_error(ErrorKind::hsm_unavailable, "hsm.token_lost",
                              "token " + label +
                                  " is lost by the PKCS#11 module (C_GetTokenInfo fails); the "
                                  "module is re-initialized once no call is in flight");
        }
        if (!idle.empty()) {
            auto s = std::move(idle.back());
            idle.pop_back();
            // A session opened before the last fault may have died with it: check it once
            // (C_GetSessionInfo is cheap) instead of failing a caller.
            if (s->generation() <= fault_generation.load()) {
                lock.unlock();
                CK_SESSION_INFO info{};
                const CK_RV rv = LICENTRA_P11(fl, C_GetSessionInfo, s->handle(), &info);
                const bool usable = rv == CKR_OK && (info.state == CKS_RW_USER_FUNCTIONS ||
                                                     info.state == CKS_RO_USER_FUNCTIONS);
                if (!usable) {
                    s.reset();
                    lock.lock();
                    --open_count;
                    continue;  // open_count has room now: a fresh session is opened below
                }
                lock.lock();
                s->set_generation(generation);
                lock.unlock();
                return Lease(this, std::move(s));
            }
            return Lease(this, std::move(s));
        }
        if (open_count < options.pool_size) {
            ++open_count;
            lock.unlock();
            auto s = open_session_with_backoff();
            if (!s) {
                lock.lock();
                --open_count;
                cv.notify_one();
                return std::move(s).error();
            }
            return Lease(this, std::move(s).value());
        }
        if (cv.wait_until(lock, deadline) == std::cv_status::timeout && idle.empty() &&
            open_count >= options.pool_size) {
            return make_error(ErrorKind::overloaded, "hsm.pool_busy",
                              "all " + std::to_string(options.pool_size) + " sessions of token " +
                                  label + " stayed busy for " +
                                  std::to_string(options.acquire_timeout.count()) + " ms");
        }
    }
}

}  // namespace detail

// ---- Token ----

Token::Token(std::unique_ptr<detail::TokenState> state) : state_(std::move(state)) {}
Token::~Token() = default;
const std::string& Token::label() const noexcept { return state_->label; }
const std::string& Token::serial() const noexcept { return state_->serial; }

core::Result<std::unique_ptr<Token>> Token::open(std::shared_ptr<Module> module,
                                                 TokenOptions options) {
    if (!module) return make_error(ErrorKind::usage, "hsm.no_module", "no PKCS#11 module");
    if (options.pool_size == 0) {
        return make_error(ErrorKind::usage, "hsm.pool_size", "pool_size must be at least 1");
    }
    auto parsed = parse_uri(options.uri);
    if (!parsed) return std::move(parsed).error();
    // A relative pin-source is only meaningful to a caller that knows what it is relative to
    // (the daemon resolves it against its configuration file and passes options.pin_file).
    if (!options.pin_file && parsed->pin_file && parsed->pin_file->is_relative()) {
        return make_error(ErrorKind::usage, "hsm.uri_malformed",
                          "malformed PKCS#11 URI: pin-source must be file:<absolute path>");
    }
    CK_FUNCTION_LIST* fl = module->state().fl;

    CK_INFO minfo{};
    CK_RV rv = LICENTRA_P11(fl, C_GetInfo, &minfo);
    if (rv != CKR_OK) return p11_error("C_GetInfo", rv, "reading module information");
    if (!p11_kit_uri_match_module_info(parsed->uri.get(), &minfo)) {
        return make_error(ErrorKind::not_found, "hsm.token_not_found",
                          "no token matches the URI: the module " + module->path().string() +
                              " does not match its library attributes");
    }

    // Two-call idiom; the second count is the one that holds.
    std::vector<CK_SLOT_ID> slots;
    for (int tries = 0; tries < 3; ++tries) {
        CK_ULONG n = 0;
        rv = LICENTRA_P11(fl, C_GetSlotList, CK_BBOOL{CK_TRUE}, nullptr, &n);
        if (rv != CKR_OK) return p11_error("C_GetSlotList", rv, "listing slots");
        slots.resize(n);
        rv = LICENTRA_P11(fl, C_GetSlotList, CK_BBOOL{CK_TRUE}, slots.data(), &n);
        if (rv == CKR_BUFFER_TOO_SMALL) continue;
        if (rv != CKR_OK) return p11_error("C_GetSlotList", rv, "listing slots");
        slots.resize(n);
        break;
    }

    std::vector<std::pair<CK_SLOT_ID, CK_TOKEN_INFO>> matches;
    for (CK_SLOT_ID slot : slots) {
        CK_TOKEN_INFO ti{};
        rv = LICENTRA_P11(fl, C_GetTokenInfo, slot, &ti);
        if (rv != CKR_OK) continue;  // token vanished between the calls
        if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
        if (p11_kit_uri_match_token_info(parsed->uri.get(), &ti)) matches.emplace_back(slot, ti);
    }
    if (matches.empty()) {
        return make_error(ErrorKind::not_found, "hsm.token_not_found",
                          "no token matches the URI (looked for " + parsed->looked_for + " in " +
                              std::to_string(slots.size()) + " slots with a token)");
    }
    if (matches.size() > 1) {
        return make_error(ErrorKind::usage, "hsm.token_ambiguous",
                          "the URI matches " + std::to_string(matches.size()) +
                              " tokens (looked for " + parsed->looked_for +
                              "); add serial= to select one");
    }

    auto state = std::make_unique<detail::TokenState>();
    state->module = module;
    state->fl = fl;
    state->slot = matches[0].first;
    state->label = padded(matches[0].second.label, sizeof matches[0].second.label);
    state->serial = padded(matches[0].second.serialNumber, sizeof matches[0].second.serialNumber);
    state->description = parsed->looked_for;

    const auto pin_path = options.pin_file ? options.pin_file : parsed->pin_file;
    if (!pin_path) {
        return make_error(ErrorKind::usage, "hsm.no_pin_source",
                          "no PIN source: add pin-source=file:<path> to the URI or set a PIN "
                          "file");
    }
    auto pin = core::read_secret_file(*pin_path, 256);
    if (!pin) return std::move(pin).error();
    state->pin = std::move(pin).value();
    state->faults.set_sink(options.log);
    state->options = std::move(options);

    // First session: proves the PIN (one C_Login, never retried) and stays in the pool.
    CK_RV open_rv = CKR_OK;
    auto first = state->open_session_once(&open_rv);
    if (!first) return std::move(first).error();
    {
        std::lock_guard lock(state->mu);
        state->open_count = 1;
        state->idle.push_back(std::move(first).value());
    }
    return std::unique_ptr<Token>(new Token(std::move(state)));
}

PoolStats Token::pool_stats() const {
    auto& t = *state_;
    std::lock_guard lock(t.mu);
    PoolStats p;
    const auto suspect_up_to = t.fault_generation.load();
    for (const auto& s : t.idle) {
        if (s->generation() <= suspect_up_to) {
            ++p.suspect;
        } else {
            ++p.idle;
        }
    }
    p.in_use = t.open_count - t.idle.size();
    return p;
}

void Token::reload_view(std::string_view why) {
    auto& t = *state_;
    if (t.force_reinit.exchange(true)) return;  // already asked
    if (t.options.log) {
        t.options.log("hsm: re-reading token " + t.label +
                      " from scratch (C_Finalize + C_Initialize once no call is in flight): " +
                      (why.empty() ? std::string("the module's view stopped matching the token")
                                   : std::string(why)));
    }
    std::lock_guard lock(t.mu);
    t.lost.store(true);
    t.next_reinit = std::chrono::steady_clock::now();
}

}  // namespace licentra::hsm
