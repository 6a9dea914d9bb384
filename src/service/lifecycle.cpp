// Key lifecycle use cases: rotation, retirement and destruction under dual control, scheduled
// rotation, request expiry. Requests are append-only records on the HSM token that every
// replica folds alike (service/request_records.hpp); a closing decision (execute, reject,
// expire) is taken by exactly one replica through a claim (keys/claim.hpp). Every request,
// approval, rejection, expiry and execution is its own audit entry carrying the request digest,
// in the log of the replica that did it.
#include <algorithm>
#include <thread>

#include "core/bytes.hpp"
#include "core/time.hpp"
#include "crypto/random.hpp"
#include "service/service.hpp"

namespace licentra::service {

using core::ErrorKind;
using core::make_error;
namespace act = core::action;

namespace {

// Decided requests stay on the token this long (the audit logs are their history).
constexpr std::chrono::hours kDecidedRetention{1};
constexpr std::chrono::milliseconds kOutcomePoll{50};

keys::Timing timing_of(const policy::KeyRules& rules) {
    return {rules.rotation.publish_ahead, rules.max_validity, rules.rotation.verify_grace};
}

// A cause that passes: a slow or busy token, an HSM fault, an HSM answer the daemon has no name
// for, an object another replica changed while it was read. An execution that failed for it is
// not the request's outcome: the request stays pending and is executed later.
bool passing_fault(const core::Error& e) {
    return e.kind == ErrorKind::unavailable || e.kind == ErrorKind::hsm_unavailable ||
           e.kind == ErrorKind::overloaded || e.code == "hsm.internal" ||
           e.code == "hsm.object_gone";
}

std::string action_of(policy::Operation op, std::string_view step) {
    return "key." + std::string(policy::operation_name(op)) + "." + std::string(step);
}

core::Error closed_error(const StoredRequest& s) {
    if (s.closing_since_ms) {
        return make_error(ErrorKind::conflict, "policy.request_closed",
                          "request " + s.request.id() + " is being closed by another replica");
    }
    return make_error(ErrorKind::conflict, "policy.request_closed",
                      "request " + s.request.id() + " is " +
                          std::string(policy::request_state_name(s.request.state())));
}

}  // namespace

nlohmann::json request_json(const policy::ApprovalRequest& r, core::TimePoint now) {
    nlohmann::json approvals = nlohmann::json::array();
    for (const auto& a : r.approvals()) {
        approvals.push_back({{"principal", a.principal}, {"at", core::format_rfc3339_ms(a.at)}});
    }
    std::string state(policy::request_state_name(r.state()));
    if (r.state() == policy::RequestState::pending && r.expired(now)) state = "expired";
    nlohmann::json j = {{"id", r.id()},
                        {"digest", core::hex_encode(r.digest())},
                        {"operation", std::string(policy::operation_name(r.operation()))},
                        {"key", r.key()},
                        {"params", r.params()},
                        {"requester", r.requester()},
                        {"created", core::format_rfc3339_ms(r.created())},
                        {"expires", core::format_rfc3339_ms(r.expires())},
                        {"quorum", r.quorum()},
                        {"approvals", std::move(approvals)},
                        {"state", state}};
    if (r.version()) j["version"] = *r.version();
    if (r.rejection()) j["rejected_by"] = r.rejection()->principal;
    return j;
}

nlohmann::json request_json(const StoredRequest& s, core::TimePoint now) {
    nlohmann::json j = request_json(s.request, now);
    if (s.closing_since_ms) j["state"] = "closing";
    if (s.outcome) {
        j["closed_by"] = s.outcome->principal;
        j["closed_at"] = core::format_rfc3339_ms(core::from_unix_millis(s.outcome->at_ms));
        j["replica"] = s.outcome->by;
        if (s.outcome->reason) j["reason"] = *s.outcome->reason;
        if (s.outcome->result == policy::RequestState::executed && s.outcome->version) {
            j["result"] = {{"version", *s.outcome->version},
                           {"state", s.outcome->state.value_or("")},
                           {"kid", s.outcome->kid.value_or("")}};
        }
    }
    j["executed"] = s.request.state() == policy::RequestState::executed;
    return j;
}

core::Result<StoredRequest> Service::load_request(const std::string& id, core::TimePoint now) {
    auto none = [] {
        return make_error(ErrorKind::not_found, "service.no_such_request", "no such request");
    };
    if (!valid_request_id(id)) return none();
    // A record another replica has just written can be missing from this process's view of
    // the token for a moment (SoftHSM's file store reads a new object file while its writer
    // is still filling it), so "no such request" is only answered after looking again.
    constexpr int kLooks = 4;
    for (int look = 0;; ++look) {
        auto records = deps_.requests->list(id);
        if (!records) return records.error();
        auto folded = fold_request(id, *records, now);
        if (!folded) return folded.error();
        if (*folded) return std::move(**folded);
        if (look + 1 == kLooks) return none();
        std::this_thread::sleep_for(std::chrono::milliseconds(20 << look));
    }
}

std::chrono::milliseconds Service::stale_view_after() const {
    // Two close rounds and a version claim take at most 2 x settle each; the operation itself
    // (a key pair generated in the HSM) gets 5 s more.
    return 6 * deps_.claims.settle + std::chrono::seconds(5);
}

bool Service::suspect_stale_view(const std::string& why, core::TimePoint now) {
    const std::int64_t now_ms = core::unix_millis(now);
    std::int64_t last = last_view_reload_ms_.load();
    if (now_ms - last < stale_view_after().count()) return false;
    if (!last_view_reload_ms_.compare_exchange_strong(last, now_ms)) return false;  // another
    deps_.requests->reload_view(why + "; reading the token again");
    return true;
}

void Service::suspect_closing(const StoredRequest& s, core::TimePoint now) {
    if (!s.closing_since_ms) return;
    const auto since = core::from_unix_millis(*s.closing_since_ms);
    if (since + stale_view_after() >= now) return;
    suspect_stale_view(
        "request " + s.request.id() + " has read as closing for " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - since).count()) +
            " s with no outcome",
        now);
}

void Service::suspect_unseen_version(const std::string& key, const OutcomeRecord& o,
                                     core::TimePoint now) {
    const auto at = core::from_unix_millis(o.at_ms);
    // Only recent outcomes: a version destroyed since then is gone for good.
    if (at + stale_view_after() >= now || at + kCloseAbandoned < now) return;
    for (const auto& v : deps_.keys->versions(key)) {
        if (v.record.version == *o.version) return;
    }
    suspect_stale_view("version " + std::to_string(*o.version) + " of " + key + " was created by " +
                           o.by + " but is not on the token as read here",
                       now);
}

keys::ClaimStorage Service::claim_storage() const {
    keys::ClaimStorage s;
    RequestStore* store = deps_.requests;
    s.list = [store](const std::string& prefix) -> core::Result<std::vector<std::string>> {
        auto listed = store->list(prefix);
        if (!listed) return listed.error();
        std::vector<std::string> names;
        for (auto& [name, text] : *listed) names.push_back(name);
        return names;
    };
    s.create = [store](const std::string& name, core::ByteView value) {
        return store->create(name, std::string(core::as_chars(value)));
    };
    s.remove = [store](const std::string& name) { return store->remove(name); };
    s.wait = deps_.claim_wait;
    return s;
}

void Service::audit_request(const policy::Engine& engine, const std::string& principal,
                            const std::string& action, const policy::ApprovalRequest& r,
                            const Caller& caller, audit::Outcome result,
                            std::optional<std::string> reason) {
    audit::Entry e;
    e.principal = principal;
    e.action = action;
    e.result = result;
    e.key = r.key();
    if (r.version()) e.version = *r.version();
    e.reason = std::move(reason);
    if (!caller.request_id.empty()) e.request_id = caller.request_id;
    e.request_digest = core::hex_encode(r.digest());
    e.policy_sha256 = engine.sha256_hex();
    // Lifecycle decisions are rare and must be on record before anyone is told they happened.
    (void)deps_.audit->append(std::move(e));
}

keys::TransitionHook Service::transition_hook(const std::string& principal,
                                              const std::string& request_id,
                                              std::optional<std::string> digest) {
    return
        [this, principal, request_id, digest](std::string_view event, const keys::KeyVersion& v) {
            audit::Entry e;
            e.principal = principal;
            e.action = std::string(event);
            e.result = audit::Outcome::allowed;
            e.key = v.name;
            e.version = v.record.version;
            if (!v.kid.empty()) e.kid = v.kid;
            if (!request_id.empty()) e.request_id = request_id;
            e.request_digest = digest;
            e.policy_sha256 = deps_.policy->current()->sha256_hex();
            // Runs while signing is held off: appended asynchronously so the entry is queued in
            // order, without waiting for the disk under the gate.
            deps_.audit->append_async(std::move(e), [](core::Result<audit::Appended>) {});
        };
}

core::Result<keys::KeyVersion> Service::run_operation(const policy::Engine& engine,
                                                      const policy::ApprovalRequest& request,
                                                      const std::string& principal,
                                                      const Caller& caller, core::TimePoint now) {
    auto grant = engine.execution_grant(request, now);
    if (!grant) return grant.error();
    const policy::KeyRules* rules = engine.key_rules(request.key());
    if (rules == nullptr) {
        return make_error(ErrorKind::not_found, "policy.unknown_key", "unknown key");
    }
    const std::string digest = core::hex_encode(request.digest());
    auto hook = transition_hook(principal, caller.request_id, digest);
    switch (request.operation()) {
        case policy::Operation::rotate:
            return deps_.keys->rotate(*grant, rules->algorithm, timing_of(*rules), now, hook,
                                      request.id());
        case policy::Operation::retire:
            return deps_.keys->retire(*grant, *request.version(), timing_of(*rules), now, hook);
        case policy::Operation::destroy: {
            const auto f = request.params().find("force");
            const bool force = f != request.params().end() && f->is_boolean() && f->get<bool>();
            if (force && !rules->allow_forced_destroy) {
                return make_error(
                    ErrorKind::denied, "policy.force_not_allowed",
                    "the policy does not allow forced destruction of " + request.key());
            }
            return deps_.keys->destroy(*grant, *request.version(), force, now, hook);
        }
        default:
            return make_error(ErrorKind::internal, "service.unreached", "unknown operation");
    }
}

core::Result<Service::Closed> Service::close(const policy::Engine& engine, const std::string& id,
                                             Decision d, const std::string& principal,
                                             const Caller& caller, bool wait) {
    const auto now = clock_now();
    const nlohmann::json claim_value = {{"decision", std::string(decision_name(d))},
                                        {"by", deps_.replica},
                                        {"at_ms", core::unix_millis(now)}};
    const std::string claim_text = claim_value.dump();
    auto still_open = [&]() -> core::Result<bool> {
        auto s = load_request(id, now);
        if (!s) return s.error();
        const auto& r = s->request;
        if (s->outcome || s->closing_since_ms || r.state() != policy::RequestState::pending) {
            return false;
        }
        switch (d) {
            case Decision::execute:
                return r.executable(now);
            case Decision::expire:
                return r.expired(now);
            case Decision::reject:
            default:
                return true;
        }
    };
    bool won = false;
    keys::ClaimReport my_claim;
    keys::ClaimReport my_decision;
    constexpr int kAttempts = 5;
    int withdrawn = 0;
    // A claim step slower than the write bound is withdrawn (safe, but nobody may close the
    // request while the token stays that slow): the operator sees it in the log.
    auto note_withdrawn = [&](std::string_view round, const keys::ClaimReport& report) {
        ++withdrawn;
        log("requests: " + std::string(round) + " claim on request " + id + " " +
            keys::withdrawn_note(report, deps_.claims));
    };
    for (int attempt = 0; attempt < kAttempts && !won; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(keys::retry_delay(deps_.claims));
        auto outcome = keys::claim(claim_storage(), id + "/close/", principal,
                                   core::as_bytes(claim_text), deps_.claims, still_open, &my_claim);
        if (!outcome) return outcome.error();
        if (*outcome == keys::ClaimOutcome::withdrawn) note_withdrawn("close", my_claim);
        won = *outcome == keys::ClaimOutcome::won;
        if (won) {
            // A second round among the winners of the first: a module whose per-process view
            // can miss a write that raced one of its own could let two replicas win one round;
            // both would have to miss each other twice (docs/adr/0004).
            auto confirmed =
                keys::claim(claim_storage(), id + "/decide/", principal, core::as_bytes(claim_text),
                            deps_.claims, {}, &my_decision);
            if (!confirmed) return confirmed.error();
            if (*confirmed == keys::ClaimOutcome::withdrawn) note_withdrawn("decide", my_decision);
            won = *confirmed == keys::ClaimOutcome::won;
            if (!won) (void)keys::release_claim(claim_storage(), my_claim.claimed);
        }
        if (won) break;
        // Another replica decides, or every claimer stood back: wait for an outcome while a
        // claim is there; try again once none is left.
        const auto deadline = std::chrono::steady_clock::now() + deps_.outcome_wait;
        for (;;) {
            auto s = load_request(id, clock_now());
            if (!s) return s.error();
            const bool open = !s->outcome && s->request.state() == policy::RequestState::pending;
            if (!open || std::chrono::steady_clock::now() >= deadline ||
                (!wait && s->closing_since_ms)) {
                return Closed{std::move(*s), false, std::nullopt};
            }
            if (s->closing_since_ms) {
                suspect_closing(*s, clock_now());
            } else {
                // Nobody holds it: retry if it can still be closed this way.
                auto again = still_open();
                if (!again || !*again) return Closed{std::move(*s), false, std::nullopt};
                break;
            }
            std::this_thread::sleep_for(kOutcomePoll);
        }
    }
    if (!won) {
        auto s = load_request(id, clock_now());
        if (!s) return s.error();
        if (!s->outcome && !s->closing_since_ms &&
            s->request.state() == policy::RequestState::pending) {
            log("requests: could not claim request " + id + " in " + std::to_string(kAttempts) +
                " tries (" + std::to_string(withdrawn) + " withdrawn as too slow, " +
                std::to_string(kAttempts - withdrawn) +
                " lost to other claims); it stays pending and the periodic tick of every replica "
                "tries again");
        }
        return Closed{std::move(*s), false, std::nullopt};
    }

    // This replica alone closes the request.
    auto s = load_request(id, now);
    if (!s) return s.error();
    const policy::ApprovalRequest& r = s->request;
    OutcomeRecord o;
    o.decision = d;
    o.by = deps_.replica;
    o.principal = principal;
    o.at_ms = core::unix_millis(now);
    audit::Outcome audited = audit::Outcome::allowed;
    std::optional<core::Error> failure;
    switch (d) {
        case Decision::execute: {
            // The execution is the act of the approval that completed the quorum.
            o.principal = r.quorum_completed_by().value_or(principal);
            auto done = run_operation(engine, r, o.principal, caller, now);
            if (done) {
                o.result = policy::RequestState::executed;
                o.version = done->record.version;
                o.state = std::string(keys::state_name(done->record.state));
                o.kid = done->kid;
            } else if (passing_fault(done.error())) {
                // The request stays pending, and this or another replica executes it later; what
                // the attempt left on the token is folded like any other record (a stray pair keeps
                // its version number taken). The attempt is on record, and in the log.
                audit_request(engine, o.principal, action_of(r.operation(), "execute"), r, caller,
                              audit::Outcome::failed, done.error().code);
                log("requests: executing request " + id + " failed for a passing cause (" +
                    done.error().to_string() + "); it stays pending and is executed later");
                (void)keys::release_claim(claim_storage(), my_decision.claimed);
                (void)keys::release_claim(claim_storage(), my_claim.claimed);
                return done.error();
            } else {
                o.result = policy::RequestState::failed;
                o.reason = done.error().code;
                audited = audit::Outcome::failed;
                failure = done.error();
            }
            break;
        }
        case Decision::reject:
            o.result = policy::RequestState::rejected;
            break;
        case Decision::expire:
        default:
            o.result = policy::RequestState::expired;
            o.principal = std::string(policy::kSystemPrincipal);
            break;
    }
    audit_request(engine, o.principal, action_of(r.operation(), decision_name(d)), r, caller,
                  audited, o.reason);
    auto nonce = crypto::random_bytes(16);
    if (!nonce) return nonce.error();
    if (auto st = deps_.requests->create(id + "/outcome/" + core::hex_encode(*nonce), o.to_json());
        !st) {
        // The request stays "closing" and counts as failed once abandoned; the effect (if
        // any) is on the token and in this replica's audit log.
        return st.error();
    }
    auto after = load_request(id, clock_now());
    if (!after) return after.error();
    return Closed{std::move(*after), true, std::move(failure)};
}

namespace {

// The answer to the officer whose action closed (or tried to close) a request: the view, or
// the error that made the operation fail (on this replica or, by its code, on another).
core::Result<nlohmann::json> answer(const Service::Closed& closed, core::TimePoint now) {
    using Out = core::Result<nlohmann::json>;
    const StoredRequest& s = closed.request;
    if (s.request.state() == policy::RequestState::failed) {
        if (closed.failure) return Out(*closed.failure);
        return Out(make_error(
            ErrorKind::conflict,
            s.outcome && s.outcome->reason ? *s.outcome->reason : "service.execution_failed",
            "the operation failed on replica " + (s.outcome ? s.outcome->by : std::string("?"))));
    }
    return Out(request_json(s, now));
}

}  // namespace

core::Result<nlohmann::json> Service::deferred(const core::Error& error, const std::string& id) {
    // The request or approval is on the token; only its execution waits for a passing fault
    // (the periodic tick of any replica executes it). Say so rather than fail the officer.
    if (!passing_fault(error)) {
        return core::Result<nlohmann::json>(error);
    }
    auto s = load_request(id, clock_now());
    if (!s) return core::Result<nlohmann::json>(error);
    auto view = request_json(*s, clock_now());
    view["execution_deferred"] = error.code;
    return core::Result<nlohmann::json>(std::move(view));
}

core::Result<nlohmann::json> Service::open_request(const Caller& caller, policy::Operation op,
                                                   const std::string& key,
                                                   std::optional<std::uint32_t> version,
                                                   bool force) {
    using Out = core::Result<nlohmann::json>;
    const auto engine = deps_.policy->current();
    const std::string action = action_of(op, "request");
    auto principal = identify(*engine, caller, action, key);
    if (!principal) return Out(principal.error());
    const auto now = clock_now();
    nlohmann::json params = nlohmann::json::object();
    if (force) params["force"] = true;
    core::Result<policy::ApprovalRequest> opened =
        make_error(ErrorKind::internal, "service.unreached");
    auto open_with = [&](auto grant) {
        if (!grant) return core::Result<policy::ApprovalRequest>(grant.error());
        return policy::ApprovalRequest::open(*engine, *grant, version, params, now);
    };
    switch (op) {
        case policy::Operation::rotate:
            opened = open_with(engine->authorize<act::KeyRotateRequest>(**principal, key));
            break;
        case policy::Operation::retire:
            opened = open_with(engine->authorize<act::KeyRetireRequest>(**principal, key));
            break;
        case policy::Operation::destroy:
            opened = open_with(engine->authorize<act::KeyDestroyRequest>(**principal, key));
            break;
        default:
            break;
    }
    if (!opened) {
        audit_refusal(*engine, (*principal)->name, action, caller, key, opened.error());
        return Out(opened.error());
    }
    if (version) {
        // Refuse a request for a version that does not exist now, rather than at execution.
        bool found = false;
        for (const auto& v : deps_.keys->versions(key)) found |= v.record.version == *version;
        if (!found) {
            auto err = make_error(ErrorKind::not_found, "keys.no_such_version",
                                  "key " + key + " has no version " + std::to_string(*version));
            audit_refusal(*engine, (*principal)->name, action, caller, key, err);
            return Out(err);
        }
    }
    if (auto st = deps_.requests->create(opened->id(), opened->to_json()); !st) {
        return Out(st.error());
    }
    audit_request(*engine, (*principal)->name, action, *opened, caller, audit::Outcome::allowed);
    if (!opened->executable(now)) {
        return Out(request_json(StoredRequest{*opened, std::nullopt, std::nullopt}, now));
    }
    auto closed = close(*engine, opened->id(), Decision::execute, (*principal)->name, caller, true);
    if (!closed) return deferred(closed.error(), opened->id());
    return answer(*closed, clock_now());
}

core::Result<nlohmann::json> Service::list_requests(const Caller& caller) {
    using Out = core::Result<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.list");
    if (!principal) return Out(principal.error());
    bool any_right = false;
    for (const auto& rules : engine->keys()) {
        any_right |= engine->permits(**principal, policy::Action::request_approve, rules.name) ||
                     engine->permits(**principal, policy::Action::request_reject, rules.name);
    }
    if (!any_right) {
        auto err = make_error(ErrorKind::denied, "policy.action_not_granted",
                              "listing requests needs request.approve or request.reject");
        audit_refusal(*engine, (*principal)->name, "request.list", caller, std::nullopt, err);
        return Out(err);
    }
    auto all = deps_.requests->list("");
    if (!all) return Out(all.error());
    const auto now = clock_now();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [id, records] : group_by_request(*all)) {
        auto s = fold_request(id, records, now);
        if (!s || !*s) continue;
        const auto& r = (*s)->request;
        if (r.state() != policy::RequestState::pending) continue;  // decided: in the audit log
        if (!engine->permits(**principal, policy::Action::request_approve, r.key()) &&
            !engine->permits(**principal, policy::Action::request_reject, r.key())) {
            continue;
        }
        out.push_back(request_json(**s, now));
    }
    return Out(nlohmann::json{{"requests", std::move(out)}});
}

core::Result<nlohmann::json> Service::get_request(const Caller& caller, const std::string& id) {
    using Out = core::Result<nlohmann::json>;
    const auto now = clock_now();
    auto s = load_request(id, now);
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.read");
    if (!principal) return Out(principal.error());
    if (!s) return Out(s.error());
    if (!engine->permits(**principal, policy::Action::request_approve, s->request.key()) &&
        !engine->permits(**principal, policy::Action::request_reject, s->request.key())) {
        return Out(make_error(ErrorKind::denied, "policy.action_not_granted",
                              "not an approver of this key"));
    }
    return Out(request_json(*s, now));
}

core::Result<nlohmann::json> Service::approve_request(const Caller& caller, const std::string& id,
                                                      std::optional<std::string> expected_digest) {
    using Out = core::Result<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.approve");
    if (!principal) return Out(principal.error());
    const auto now = clock_now();
    auto s = load_request(id, now);
    if (!s) return Out(s.error());
    policy::ApprovalRequest& r = s->request;
    const std::string action = action_of(r.operation(), "approve");
    std::optional<crypto::Sha256Digest> expected;
    if (expected_digest) {
        auto bytes = core::hex_decode(*expected_digest);
        if (!bytes || bytes->size() != 32) {
            return Out(make_error(ErrorKind::usage, "service.bad_digest",
                                  "digest must be 64 hex characters"));
        }
        expected.emplace();
        std::copy(bytes->begin(), bytes->end(), expected->begin());
    }
    core::Status st = s->closing_since_ms ? core::Status(closed_error(*s))
                                          : r.approve(*engine, (*principal)->name, now,
                                                      expected ? &*expected : nullptr);
    if (!st) {
        audit_request(
            *engine, (*principal)->name, action, r, caller,
            st.error().kind == ErrorKind::denied ? audit::Outcome::denied : audit::Outcome::failed,
            st.error().code);
        return Out(st.error());
    }
    const nlohmann::json record = {{"at_ms", core::unix_millis(now)}};
    if (auto created =
            deps_.requests->create(id + "/approval/" + (*principal)->name, record.dump());
        !created) {
        return Out(created.error());
    }
    audit_request(*engine, (*principal)->name, action, r, caller, audit::Outcome::allowed);
    // Approvals through other replicas count too: fold the token again.
    auto fresh = load_request(id, clock_now());
    if (!fresh) return Out(fresh.error());
    if (!fresh->request.executable(clock_now())) {
        return Out(request_json(*fresh, clock_now()));
    }
    auto closed = close(*engine, id, Decision::execute, (*principal)->name, caller, true);
    if (!closed) return deferred(closed.error(), id);
    return answer(*closed, clock_now());
}

core::Result<nlohmann::json> Service::reject_request(const Caller& caller, const std::string& id) {
    using Out = core::Result<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.reject");
    if (!principal) return Out(principal.error());
    const auto now = clock_now();
    auto s = load_request(id, now);
    if (!s) return Out(s.error());
    const std::string action = action_of(s->request.operation(), "reject");
    policy::ApprovalRequest probe = s->request;
    core::Status st = s->closing_since_ms ? core::Status(closed_error(*s))
                                          : probe.reject(*engine, (*principal)->name, now);
    if (!st) {
        audit_request(
            *engine, (*principal)->name, action, s->request, caller,
            st.error().kind == ErrorKind::denied ? audit::Outcome::denied : audit::Outcome::failed,
            st.error().code);
        return Out(st.error());
    }
    auto closed = close(*engine, id, Decision::reject, (*principal)->name, caller, true);
    if (!closed) return Out(closed.error());
    if (!closed->decided_here) {
        // Another replica closed it first (executed, rejected or expired): say so.
        auto err = closed_error(closed->request);
        audit_request(*engine, (*principal)->name, action, s->request, caller,
                      audit::Outcome::failed, err.code);
        return Out(err);
    }
    return Out(request_json(closed->request, clock_now()));
}

void Service::tick(core::TimePoint now) {
    const auto engine = deps_.policy->current();
    const std::string system(policy::kSystemPrincipal);
    // Keys that have no version yet (their creation by another replica did not finish).
    for (const auto& rules : engine->keys()) {
        if (!deps_.keys->versions(rules.name).empty()) continue;
        auto grant = engine->system_grant(rules.name, policy::Engine::SystemPurpose::bootstrap);
        if (!grant) continue;
        (void)deps_.keys->bootstrap(*grant, rules.algorithm);
    }
    std::vector<std::string> pending_rotation_keys;
    auto all = deps_.requests->list("");
    if (!all) {
        if (std::string e = all.error().to_string(); e != tick_list_error_) {
            log("requests: cannot list the approval requests on the token (" + e +
                "); expiries, executions and scheduled rotations wait until they can be");
            tick_list_error_ = std::move(e);
        }
    } else if (!tick_list_error_.empty()) {
        log("requests: the approval requests can be listed again");
        tick_list_error_.clear();
    }
    if (all) {
        // For /metrics: every policy key, and the requests still pending at `now`.
        std::map<std::string, std::uint64_t> pending;
        for (const auto& rules : engine->keys()) pending[rules.name] = 0;
        for (const auto& [id, records] : group_by_request(*all)) {
            auto folded = fold_request(id, records, now);
            if (!folded || !*folded) continue;
            const auto& r = (*folded)->request;
            if (r.state() == policy::RequestState::pending && !r.expired(now)) {
                ++pending[r.key()];
            }
        }
        std::lock_guard lock(pending_mu_);
        pending_ = std::move(pending);
    }
    if (all) {
        for (const auto& [id, records] : group_by_request(*all)) {
            auto folded = fold_request(id, records, now);
            if (!folded || !*folded) continue;
            const StoredRequest& s = **folded;
            const auto& r = s.request;
            if (r.state() != policy::RequestState::pending) {
                if (s.outcome && s.outcome->version && r.operation() == policy::Operation::rotate &&
                    r.state() == policy::RequestState::executed) {
                    suspect_unseen_version(r.key(), *s.outcome, now);
                }
                // Decided long ago: the audit logs hold its history; free the token.
                const std::int64_t decided = s.outcome ? s.outcome->at_ms : core::unix_millis(now);
                if (core::from_unix_millis(decided) + kDecidedRetention < now) {
                    for (const auto& [name, text] : records) (void)deps_.requests->remove(name);
                }
                continue;
            }
            if (s.closing_since_ms) {
                suspect_closing(s, now);
                if (r.operation() == policy::Operation::rotate) {
                    pending_rotation_keys.push_back(r.key());
                }
                continue;
            }
            if (r.expired(now)) {
                (void)close(*engine, id, Decision::expire, system, {}, false);
            } else if (r.executable(now) &&
                       r.approvals().back().at + 4 * deps_.claims.settle < now) {
                // Approved, but the replica that should have executed it did not (it stood
                // back from a slow or contended claim, or died): one replica executes it now.
                // A fresh approval is left to the approver's replica, which is still trying.
                // Or this replica's view missed the claims and outcome another replica wrote
                // (a module whose per-process view misses a write that raced one of its own,
                // docs/adr/0004): its own claims would not heal that view, and an execution
                // from it would act on a stale key state. So the token is read again first,
                // at most once per interval; the next tick decides on what it then shows.
                const auto waited =
                    std::chrono::duration_cast<std::chrono::seconds>(now - r.approvals().back().at);
                if (suspect_stale_view("request " + id + " has had its quorum for " +
                                           std::to_string(waited.count()) +
                                           " s and reads as pending with no close",
                                       now)) {
                    continue;
                }
                (void)close(*engine, id, Decision::execute, system, {}, false);
            } else if (r.operation() == policy::Operation::rotate) {
                pending_rotation_keys.push_back(r.key());
            }
        }
    }
    tick_scheduled_rotations(*engine, now, pending_rotation_keys);
}

std::optional<std::int64_t> scheduled_rotation_due_ms(
    const policy::KeyRules& rules, const std::vector<keys::KeyVersion>& versions) {
    if (!rules.rotation.period) return std::nullopt;
    bool waiting = false;
    const keys::KeyVersion* active = nullptr;
    for (const auto& v : versions) {
        waiting |= v.record.state == keys::KeyState::pre_active;
        if (v.record.state == keys::KeyState::active) active = &v;
    }
    if (waiting || active == nullptr) return std::nullopt;
    const std::int64_t active_since =
        active->record.activated_ms.value_or(active->record.created_ms);
    // The next version is published publish_ahead before the period ends.
    return active_since +
           1000 * (rules.rotation.period->count() - rules.rotation.publish_ahead.count());
}

std::map<std::string, std::uint64_t> Service::pending_requests() const {
    std::lock_guard lock(pending_mu_);
    return pending_;
}

void Service::tick_scheduled_rotations(const policy::Engine& engine, core::TimePoint now,
                                       const std::vector<std::string>& pending_rotation_keys) {
    const std::string system(policy::kSystemPrincipal);
    const std::int64_t t = core::unix_millis(now);
    for (const auto& rules : engine.keys()) {
        const auto versions = deps_.keys->versions(rules.name);
        const auto due = scheduled_rotation_due_ms(rules, versions);
        if (!due || t < *due) continue;
        const auto active = std::find_if(versions.begin(), versions.end(), [](const auto& v) {
            return v.record.state == keys::KeyState::active;
        });  // there is one: due is set
        if (rules.rotation.requires_approval) {
            if (std::find(pending_rotation_keys.begin(), pending_rotation_keys.end(), rules.name) !=
                pending_rotation_keys.end()) {
                continue;
            }
            // One scheduled request per active version, whichever replica opens it.
            const std::string point =
                "scheduled/" + rules.name + "/v" + std::to_string(active->record.version) + "/";
            const nlohmann::json value = {{"by", deps_.replica}, {"at_ms", t}};
            const std::string text = value.dump();
            auto won =
                keys::claim(claim_storage(), point, {}, core::as_bytes(text), deps_.claims, {});
            if (!won || *won != keys::ClaimOutcome::won) continue;
            auto r = policy::ApprovalRequest::open_scheduled(engine, rules.name, now);
            if (!r || !deps_.requests->create(r->id(), r->to_json())) continue;
            audit_request(engine, system, "key.rotate.request", *r, {}, audit::Outcome::allowed);
            continue;
        }
        auto grant =
            engine.system_grant(rules.name, policy::Engine::SystemPurpose::scheduled_rotation);
        if (!grant) continue;
        auto rotated = deps_.keys->rotate(*grant, rules.algorithm, timing_of(rules), now,
                                          transition_hook(system, {}, std::nullopt));
        if (!rotated && rotated.error().code != "keys.rotation_in_progress" &&
            rotated.error().code != "keys.rotation_pending") {
            audit::Entry e;
            e.principal = system;
            e.action = "key.rotate";
            e.result = audit::Outcome::failed;
            e.key = rules.name;
            e.reason = rotated.error().code;
            e.policy_sha256 = engine.sha256_hex();
            deps_.audit->append_async(std::move(e), [](core::Result<audit::Appended>) {});
        }
    }
}

}  // namespace licentra::service
