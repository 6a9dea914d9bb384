// Key lifecycle use cases: rotation, retirement and destruction under dual control, scheduled
// rotation, request expiry. Requests live on the HSM token (RequestStore); every request,
// approval, rejection, expiry and execution is its own audit entry carrying the request digest.
#include <algorithm>

#include "core/bytes.hpp"
#include "core/time.hpp"
#include "service/service.hpp"

namespace licentra::service {

using core::ErrorKind;
using core::make_error;
namespace act = core::action;

namespace {

keys::Timing timing_of(const policy::KeyRules& rules) {
    return {rules.rotation.publish_ahead, rules.max_validity, rules.rotation.verify_grace};
}

std::string action_of(policy::Operation op, std::string_view step) {
    return "key." + std::string(policy::operation_name(op)) + "." + std::string(step);
}

bool valid_request_id(const std::string& id) {
    return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
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

core::Result<policy::ApprovalRequest> Service::load_request(const std::string& id) {
    if (!valid_request_id(id)) {
        return make_error(ErrorKind::not_found, "service.no_such_request", "no such request");
    }
    auto text = deps_.requests->get(id);
    if (!text) return text.error();
    if (!*text)
        return make_error(ErrorKind::not_found, "service.no_such_request", "no such request");
    return policy::ApprovalRequest::from_json(**text);
}

core::Status Service::store_request(const policy::ApprovalRequest& r) {
    return deps_.requests->put(r.id(), r.to_json());
}

core::Status Service::remove_request(const std::string& id) { return deps_.requests->remove(id); }

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

keys::TransitionHook Service::transition_hook(const policy::Engine& engine,
                                              const std::string& principal,
                                              const std::string& request_id,
                                              std::optional<std::string> digest) {
    return [this, &engine, principal, request_id, digest](std::string_view event,
                                                          const keys::KeyVersion& v) {
        audit::Entry e;
        e.principal = principal;
        e.action = std::string(event);
        e.result = audit::Outcome::allowed;
        e.key = v.name;
        e.version = v.record.version;
        if (!v.kid.empty()) e.kid = v.kid;
        if (!request_id.empty()) e.request_id = request_id;
        e.request_digest = digest;
        e.policy_sha256 = engine.sha256_hex();
        // Runs while signing is held off: appended asynchronously so the entry is queued in
        // order, without waiting for the disk under the gate.
        deps_.audit->append_async(std::move(e), [](core::Result<audit::Appended>) {});
    };
}

core::Result<nlohmann::json> Service::execute(const policy::Engine& engine,
                                              policy::ApprovalRequest& request,
                                              const Caller& caller, core::TimePoint now) {
    auto grant = engine.execution_grant(request, now);
    if (!grant) return grant.error();
    const policy::KeyRules* rules = engine.key_rules(request.key());
    if (rules == nullptr) {
        return make_error(ErrorKind::not_found, "policy.unknown_key", "unknown key");
    }
    const std::string digest = core::hex_encode(request.digest());
    auto hook = transition_hook(engine, request.requester(), caller.request_id, digest);
    core::Result<keys::KeyVersion> result = make_error(ErrorKind::internal, "service.unreached");
    switch (request.operation()) {
        case policy::Operation::rotate:
            result = deps_.keys->rotate(*grant, rules->algorithm, timing_of(*rules), now, hook);
            break;
        case policy::Operation::retire:
            result = deps_.keys->retire(*grant, *request.version(), timing_of(*rules), now, hook);
            break;
        case policy::Operation::destroy: {
            const auto f = request.params().find("force");
            const bool force = f != request.params().end() && f->is_boolean() && f->get<bool>();
            if (force && !rules->allow_forced_destroy) {
                result =
                    make_error(ErrorKind::denied, "policy.force_not_allowed",
                               "the policy does not allow forced destruction of " + request.key());
                break;
            }
            result = deps_.keys->destroy(*grant, *request.version(), force, now, hook);
            break;
        }
        default:
            break;
    }
    if (!result) {
        audit_request(engine, request.requester(), action_of(request.operation(), "execute"),
                      request, caller, audit::Outcome::failed, result.error().code);
        // The request was decided and tried; a retry needs a fresh request and fresh approvals.
        (void)remove_request(request.id());
        return result.error();
    }
    if (auto st = request.mark_executed(*grant); !st) return st.error();
    audit_request(engine, request.requester(), action_of(request.operation(), "execute"), request,
                  caller, audit::Outcome::allowed);
    (void)remove_request(request.id());
    return nlohmann::json{{"version", result->record.version},
                          {"state", std::string(keys::state_name(result->record.state))},
                          {"kid", result->kid}};
}

Outcome<nlohmann::json> Service::open_request(const Caller& caller, policy::Operation op,
                                              const std::string& key,
                                              std::optional<std::uint32_t> version, bool force) {
    using Out = Outcome<nlohmann::json>;
    const auto engine = deps_.policy->current();
    const std::string action = action_of(op, "request");
    auto principal = identify(*engine, caller, action, key);
    if (!principal) return Out::fail(principal.error());
    const auto now = core::Clock::now();
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
        return Out::fail(opened.error());
    }
    if (version) {
        // Refuse a request for a version that does not exist now, rather than at execution.
        bool found = false;
        for (const auto& v : deps_.keys->versions(key)) found |= v.record.version == *version;
        if (!found) {
            auto err = make_error(ErrorKind::not_found, "keys.no_such_version",
                                  "key " + key + " has no version " + std::to_string(*version));
            audit_refusal(*engine, (*principal)->name, action, caller, key, err);
            return Out::fail(err);
        }
    }
    std::lock_guard lock(requests_mutex_);
    if (auto st = store_request(*opened); !st) return Out::fail(st.error());
    audit_request(*engine, (*principal)->name, action, *opened, caller, audit::Outcome::allowed);
    nlohmann::json view = request_json(*opened, now);
    view["executed"] = false;
    if (opened->executable(now)) {
        auto done = execute(*engine, *opened, caller, now);
        if (!done) return Out::fail(done.error());
        view = request_json(*opened, now);
        view["executed"] = true;
        view["result"] = *done;
    }
    return Out::success(std::move(view));
}

Outcome<nlohmann::json> Service::list_requests(const Caller& caller) {
    using Out = Outcome<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.list");
    if (!principal) return Out::fail(principal.error());
    auto all = deps_.requests->all();
    if (!all) return Out::fail(all.error());
    const auto now = core::Clock::now();
    nlohmann::json out = nlohmann::json::array();
    bool any_right = false;
    for (const auto& rules : engine->keys()) {
        any_right |= engine->permits(**principal, policy::Action::request_approve, rules.name) ||
                     engine->permits(**principal, policy::Action::request_reject, rules.name);
    }
    if (!any_right) {
        auto err = make_error(ErrorKind::denied, "policy.action_not_granted",
                              "listing requests needs request.approve or request.reject");
        audit_refusal(*engine, (*principal)->name, "request.list", caller, std::nullopt, err);
        return Out::fail(err);
    }
    for (const auto& text : *all) {
        auto r = policy::ApprovalRequest::from_json(text);
        if (!r) continue;
        if (!engine->permits(**principal, policy::Action::request_approve, r->key()) &&
            !engine->permits(**principal, policy::Action::request_reject, r->key())) {
            continue;
        }
        out.push_back(request_json(*r, now));
    }
    return Out::success({{"requests", std::move(out)}});
}

Outcome<nlohmann::json> Service::get_request(const Caller& caller, const std::string& id) {
    using Out = Outcome<nlohmann::json>;
    auto r = load_request(id);
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.read");
    if (!principal) return Out::fail(principal.error());
    if (!r) return Out::fail(r.error());
    if (!engine->permits(**principal, policy::Action::request_approve, r->key()) &&
        !engine->permits(**principal, policy::Action::request_reject, r->key())) {
        return Out::fail(make_error(ErrorKind::denied, "policy.action_not_granted",
                                    "not an approver of this key"));
    }
    return Out::success(request_json(*r, core::Clock::now()));
}

Outcome<nlohmann::json> Service::approve_request(const Caller& caller, const std::string& id,
                                                 std::optional<std::string> expected_digest) {
    using Out = Outcome<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.approve");
    if (!principal) return Out::fail(principal.error());
    std::lock_guard lock(requests_mutex_);
    auto r = load_request(id);
    if (!r) return Out::fail(r.error());
    const std::string action = action_of(r->operation(), "approve");
    std::optional<crypto::Sha256Digest> expected;
    if (expected_digest) {
        auto bytes = core::hex_decode(*expected_digest);
        if (!bytes || bytes->size() != 32) {
            return Out::fail(make_error(ErrorKind::usage, "service.bad_digest",
                                        "digest must be 64 hex characters"));
        }
        expected.emplace();
        std::copy(bytes->begin(), bytes->end(), expected->begin());
    }
    const auto now = core::Clock::now();
    auto st = r->approve(*engine, (*principal)->name, now, expected ? &*expected : nullptr);
    if (!st) {
        audit_request(
            *engine, (*principal)->name, action, *r, caller,
            st.error().kind == ErrorKind::denied ? audit::Outcome::denied : audit::Outcome::failed,
            st.error().code);
        return Out::fail(st.error());
    }
    if (auto s2 = store_request(*r); !s2) return Out::fail(s2.error());
    audit_request(*engine, (*principal)->name, action, *r, caller, audit::Outcome::allowed);
    nlohmann::json view = request_json(*r, now);
    view["executed"] = false;
    if (r->executable(now)) {
        auto done = execute(*engine, *r, caller, now);
        if (!done) return Out::fail(done.error());
        view = request_json(*r, now);
        view["executed"] = true;
        view["result"] = *done;
    }
    return Out::success(std::move(view));
}

Outcome<nlohmann::json> Service::reject_request(const Caller& caller, const std::string& id) {
    using Out = Outcome<nlohmann::json>;
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "request.reject");
    if (!principal) return Out::fail(principal.error());
    std::lock_guard lock(requests_mutex_);
    auto r = load_request(id);
    if (!r) return Out::fail(r.error());
    const std::string action = action_of(r->operation(), "reject");
    const auto now = core::Clock::now();
    if (auto st = r->reject(*engine, (*principal)->name, now); !st) {
        audit_request(
            *engine, (*principal)->name, action, *r, caller,
            st.error().kind == ErrorKind::denied ? audit::Outcome::denied : audit::Outcome::failed,
            st.error().code);
        return Out::fail(st.error());
    }
    audit_request(*engine, (*principal)->name, action, *r, caller, audit::Outcome::allowed);
    (void)remove_request(r->id());
    return Out::success(request_json(*r, now));
}

void Service::tick(core::TimePoint now) {
    const auto engine = deps_.policy->current();
    const std::string system(policy::kSystemPrincipal);
    // 1. Pre-active versions whose publish-ahead period is over start signing.
    (void)deps_.keys->activate_due(
        now,
        [&](std::string_view name) -> std::optional<keys::Timing> {
            const policy::KeyRules* rules = engine->key_rules(name);
            if (rules == nullptr) return std::nullopt;
            return timing_of(*rules);
        },
        transition_hook(*engine, system, {}, std::nullopt));

    std::lock_guard lock(requests_mutex_);
    // 2. Requests past their lifetime expire (audited once, then removed from the token).
    std::vector<std::string> pending_rotation_keys;
    if (auto all = deps_.requests->all(); all) {
        for (const auto& text : *all) {
            auto r = policy::ApprovalRequest::from_json(text);
            if (!r) continue;
            if (r->state() == policy::RequestState::pending && r->expired(now)) {
                audit_request(*engine, system, action_of(r->operation(), "expire"), *r, {},
                              audit::Outcome::allowed);
                (void)remove_request(r->id());
            } else if (r->operation() == policy::Operation::rotate) {
                pending_rotation_keys.push_back(r->key());
            }
        }
    }
    // 3. Scheduled rotations.
    const std::int64_t t = core::unix_millis(now);
    for (const auto& rules : engine->keys()) {
        if (!rules.rotation.period) continue;
        auto versions = deps_.keys->versions(rules.name);
        bool waiting = false;
        std::optional<std::int64_t> active_since;
        for (const auto& v : versions) {
            waiting |= v.record.state == keys::KeyState::pre_active;
            if (v.record.state == keys::KeyState::active) {
                active_since = v.record.activated_ms.value_or(v.record.created_ms);
            }
        }
        if (waiting || !active_since) continue;
        // The next version is published publish_ahead before the period ends.
        const std::int64_t due = *active_since + 1000 * (rules.rotation.period->count() -
                                                         rules.rotation.publish_ahead.count());
        if (t < due) continue;
        if (rules.rotation.requires_approval) {
            if (std::find(pending_rotation_keys.begin(), pending_rotation_keys.end(), rules.name) !=
                pending_rotation_keys.end()) {
                continue;
            }
            auto r = policy::ApprovalRequest::open_scheduled(*engine, rules.name, now);
            if (!r || !store_request(*r)) continue;
            audit_request(*engine, system, "key.rotate.request", *r, {}, audit::Outcome::allowed);
            continue;
        }
        auto grant =
            engine->system_grant(rules.name, policy::Engine::SystemPurpose::scheduled_rotation);
        if (!grant) continue;
        auto rotated = deps_.keys->rotate(*grant, rules.algorithm, timing_of(rules), now,
                                          transition_hook(*engine, system, {}, std::nullopt));
        if (!rotated) {
            audit::Entry e;
            e.principal = system;
            e.action = "key.rotate";
            e.result = audit::Outcome::failed;
            e.key = rules.name;
            e.reason = rotated.error().code;
            e.policy_sha256 = engine->sha256_hex();
            deps_.audit->append_async(std::move(e), [](core::Result<audit::Appended>) {});
        }
    }
}

}  // namespace licentra::service
