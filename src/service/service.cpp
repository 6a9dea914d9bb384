#include "service/service.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "audit/proof_json.hpp"
#include "audit/pseudonym_epoch.hpp"
#include "audit/record.hpp"
#include "core/bytes.hpp"
#include "core/time.hpp"
#include "crypto/algorithm.hpp"
#include "token/claims.hpp"
#include "token/jwk.hpp"
#include "token/jws.hpp"

namespace licentra::service {

using core::ErrorKind;
using core::make_error;
namespace act = core::action;

namespace {

std::vector<std::string> claim_names(const nlohmann::json& claims) {
    std::vector<std::string> names;
    if (!claims.is_object()) return names;
    for (auto it = claims.begin(); it != claims.end(); ++it) names.push_back(it.key());
    std::sort(names.begin(), names.end());
    return names;
}

std::optional<std::string> time_field(const std::optional<std::int64_t>& ms) {
    if (!ms) return std::nullopt;
    return core::format_rfc3339_ms(core::from_unix_millis(*ms));
}

nlohmann::json version_json(const keys::KeyVersion& v) {
    nlohmann::json j = {
        {"version", v.record.version},
        {"state", std::string(keys::state_name(v.record.state))},
        {"algorithm", std::string(crypto::jws_name(v.record.algorithm))},
        {"created", core::format_rfc3339_ms(core::from_unix_millis(v.record.created_ms))}};
    if (!v.kid.empty()) j["kid"] = v.kid;
    if (auto t = time_field(v.record.activate_at_ms)) j["activate_at"] = *t;
    if (auto t = time_field(v.record.activated_ms)) j["activated"] = *t;
    if (auto t = time_field(v.record.retired_ms)) j["retired"] = *t;
    if (auto t = time_field(v.record.verify_until_ms)) j["verify_until"] = *t;
    if (auto t = time_field(v.record.destroyed_ms)) j["destroyed"] = *t;
    return j;
}

}  // namespace

std::string unknown_principal_name(const core::ClientIdentity& identity) {
    return "cert:" + core::hex_encode(identity.spki_sha256).substr(0, 16);
}

core::Result<std::unique_ptr<Service>> Service::create(Dependencies deps) {
    const std::pair<bool, const char*> required[] = {
        {deps.requests != nullptr, "a request store"},
        {deps.policy != nullptr, "the policy"},
        {deps.keys != nullptr, "the key manager"},
        {deps.audit != nullptr, "the audit log"},
        {deps.pseudonymizer != nullptr, "the pseudonymizer"},
        {deps.executor != nullptr, "an executor"}};
    for (const auto& [present, what] : required) {
        if (!present) {
            return make_error(ErrorKind::usage, "service.missing_dependency",
                              std::string("the service needs ") + what);
        }
    }
    auto bad = [](const std::string& what) {
        return make_error(ErrorKind::usage, "service.bad_dependency", what);
    };
    if (deps.replica.empty()) return bad("the replica name is empty");
    if (!deps.claims.workable()) return bad("claim timings need 0 < write_bound < settle");
    if (deps.outcome_wait <= std::chrono::milliseconds::zero()) {
        return bad("the outcome wait must be positive");
    }
    if (deps.receipt_wait < std::chrono::milliseconds::zero() ||
        deps.receipt_retry_after <= std::chrono::seconds::zero()) {
        return bad("the receipt wait must not be negative and Retry-After must be positive");
    }
    return std::unique_ptr<Service>(new Service(std::move(deps)));
}

Service::Service(Dependencies deps) : deps_(std::move(deps)) {
    // Versions that start signing by time alone are recorded in this replica's log when it
    // starts signing with them.
    deps_.keys->set_observer(
        transition_hook(std::string(policy::kSystemPrincipal), {}, std::nullopt));
}

std::string Service::principal_name(const core::ClientIdentity& identity) const {
    const auto engine = deps_.policy->current();
    auto principal = engine->identify(identity);
    return principal ? (*principal)->name : unknown_principal_name(identity);
}

core::Result<const policy::Principal*> Service::identify(const policy::Engine& engine,
                                                         const Caller& caller,
                                                         std::string_view action,
                                                         std::optional<std::string> key) {
    auto principal = engine.identify(caller.identity);
    if (!principal) {
        audit_refusal(engine, unknown_principal_name(caller.identity), std::string(action), caller,
                      std::move(key), principal.error());
    }
    return principal;
}

void Service::audit_refusal(const policy::Engine& engine, std::string principal, std::string action,
                            const Caller& caller, std::optional<std::string> key,
                            const core::Error& error, std::vector<std::string> claims) {
    if (error.kind == ErrorKind::denied || error.kind == ErrorKind::limit ||
        error.kind == ErrorKind::usage) {
        stats_.denied.fetch_add(1, std::memory_order_relaxed);
    } else {
        stats_.failed.fetch_add(1, std::memory_order_relaxed);
    }
    audit::Entry e;
    e.principal = std::move(principal);
    e.action = std::move(action);
    e.result = error.kind == ErrorKind::denied || error.kind == ErrorKind::limit ||
                       error.kind == ErrorKind::usage
                   ? audit::Outcome::denied
                   : audit::Outcome::failed;
    e.key = std::move(key);
    e.reason = error.code;
    e.request_id = caller.request_id;
    e.policy_sha256 = engine.sha256_hex();
    if (!claims.empty()) e.claims = std::move(claims);
    // Best effort: a refusal is answered whether or not the log can record it.
    deps_.audit->append_async(std::move(e), [](core::Result<audit::Appended>) {});
}

namespace {

// A key the snapshot says is in use but that the token does not show right now (objects
// unreadable, a lost object list, an object another writer has in flux) is a token fault: 503,
// not 404.
core::Error token_fault(core::Error err) {
    if (err.code == "hsm.key_not_found" || err.code == "hsm.object_gone") {
        err.kind = ErrorKind::hsm_unavailable;
    }
    return err;
}

}  // namespace

void Service::sign_token(Caller caller, std::string key, nlohmann::json claims,
                         std::function<void(core::Result<IssuedToken>)> done) {
    const auto engine = deps_.policy->current();
    const std::string action(act::TokenSign::name);
    auto principal = identify(*engine, caller, action, key);
    if (!principal) return done(core::Result<IssuedToken>(principal.error()));
    const std::string& name = (*principal)->name;
    auto grant = engine->authorize<act::TokenSign>(**principal, key);
    if (!grant) {
        audit_refusal(*engine, name, action, caller, key, grant.error());
        return done(core::Result<IssuedToken>(grant.error()));
    }
    if (auto st = limiter_.acquire(**principal); !st) {
        audit_refusal(*engine, name, action, caller, key, st.error());
        return done(core::Result<IssuedToken>(st.error()));
    }
    const auto now = clock_now();
    auto names = claim_names(claims);
    if (auto violations = engine->validate_claims(key, claims, now); !violations.empty()) {
        auto err = make_error(ErrorKind::usage, "service.claims_invalid",
                              std::to_string(violations.size()) + " claim rule(s) violated");
        audit_refusal(*engine, name, action, caller, key, err, names);
        err.violations = std::move(violations);
        return done(core::Result<IssuedToken>(std::move(err)));
    }
    // Fail closed before touching the HSM: without a writable log no token can leave.
    if (!deps_.audit->healthy()) {
        auto err = make_error(ErrorKind::unavailable, "service.audit_unavailable",
                              "the audit log cannot record; signing is suspended");
        stats_.failed.fetch_add(1, std::memory_order_relaxed);
        return done(core::Result<IssuedToken>(std::move(err)));
    }
    const policy::KeyRules* rules = engine->key_rules(key);
    auto jti = token::new_jti();
    if (!jti) return done(core::Result<IssuedToken>(jti.error()));
    auto full = token::make_claims(claims, rules->issuer, now, *jti);
    if (!full) {
        audit_refusal(*engine, name, action, caller, key, full.error(), names);
        return done(core::Result<IssuedToken>(full.error()));
    }
    // Pseudonyms of the claims the policy names for recording (values never reach the log).
    std::vector<std::pair<std::string, nlohmann::json>> to_pseudonymize;
    for (const auto& claim : rules->claims.pseudonymize) {
        auto it = claims.find(claim);
        if (it != claims.end()) to_pseudonymize.emplace_back(claim, *it);
    }

    // One answer per request: the job's, or the deadline's (hsm.call_timeout) when the HSM work
    // overran. A signature that arrives after the deadline answered is discarded before it
    // becomes a token or an audit entry: no token leaves without its durable entry.
    auto answered = std::make_shared<std::atomic<bool>>(false);
    auto on_overrun = [this, answered, engine, name, caller, key, names, done]() {
        if (answered->exchange(true)) return;
        auto err = make_error(ErrorKind::hsm_unavailable, "hsm.timeout",
                              "the HSM did not complete the signature within hsm.call_timeout");
        audit_refusal(*engine, name, std::string(act::TokenSign::name), caller, key, err, names);
        done(core::Result<IssuedToken>(std::move(err)));
    };
    auto job = [this, engine, grant = std::move(*grant), caller = std::move(caller),
                key = std::move(key), full = std::move(*full), names = std::move(names),
                to_pseudonymize = std::move(to_pseudonymize), answered, done]() mutable {
        auto reply = [&answered, &done](core::Result<IssuedToken> out) {
            if (!answered->exchange(true)) done(std::move(out));
        };
        const std::string sign_action(act::TokenSign::name);
        const std::string& who = grant.principal();
        // Pseudonyms first (HSM HMAC): they do not depend on the signature.
        std::optional<std::map<std::string, std::string>> pseudonyms;
        std::optional<audit::PseudonymEpoch> epoch;
        if (!to_pseudonymize.empty()) {
            pseudonyms.emplace();
            // With epochs in the policy, under the key of the epoch this instant falls in.
            if (const auto& epochs = engine->pseudonyms()) {
                epoch = audit::epoch_at(clock_now(), epochs->epoch);
            }
            for (const auto& [claim, value] : to_pseudonymize) {
                auto p = audit::claim_pseudonym(*deps_.pseudonymizer, claim, value, epoch);
                if (!p) return reply(core::Result<IssuedToken>(token_fault(p.error())));
                (*pseudonyms)[claim] = std::move(*p);
            }
        }
        auto refuse = [&](core::Error err) {
            audit_refusal(*engine, who, sign_action, caller, key, err, names);
            reply(core::Result<IssuedToken>(std::move(err)));
        };
        // The lease keeps its version signing until the entry below is queued: the log orders
        // every token before the lifecycle change that ended its version's signing.
        auto lease = deps_.keys->lease(grant);
        if (!lease) return refuse(lease.error());
        const keys::KeyVersion& v = lease->version();
        auto input = token::make_signing_input(v.record.algorithm, v.kid, full);
        if (!input) return refuse(input.error());
        const std::string_view alg = crypto::jws_name(v.record.algorithm);
        const auto sign_start = std::chrono::steady_clock::now();
        auto signature = lease->sign(core::as_bytes(input->text));
        if (signature) {
            stats_.sign_seconds.at({alg}).observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - sign_start)
                    .count());
        }
        if (!signature) {
            if (answered->load()) return;  // the deadline answered and audited it
            return refuse(token_fault(signature.error()));
        }
        // A signature that arrives after the deadline answered is discarded here, before it
        // becomes a token or an audit entry. From here on this job owns the answer.
        if (answered->exchange(true)) return;
        auto tok = token::assemble_token(*input, *signature);
        if (!tok) {
            audit_refusal(*engine, who, sign_action, caller, key, tok.error(), names);
            return done(core::Result<IssuedToken>(tok.error()));
        }
        audit::Entry e;
        e.principal = who;
        e.action = sign_action;
        e.result = audit::Outcome::allowed;
        e.key = key;
        e.kid = v.kid;
        e.version = v.record.version;
        e.request_id = caller.request_id;
        e.token_sha256 = token::token_sha256_hex(*tok);
        e.policy_sha256 = engine->sha256_hex();
        if (!names.empty()) e.claims = std::move(names);
        e.pseudonyms = std::move(pseudonyms);
        if (epoch) e.pseudonym_epoch = epoch->name();
        IssuedToken issued{std::move(*tok), v.kid, 0};
        deps_.audit->append_async(
            std::move(e), [this, issued = std::move(issued), key_name = key, alg,
                           done](core::Result<audit::Appended> appended) mutable {
                if (!appended) {
                    // Fail closed: the signature exists only in this process; dropped.
                    stats_.failed.fetch_add(1, std::memory_order_relaxed);
                    return done(core::Result<IssuedToken>(
                        make_error(ErrorKind::unavailable, "service.audit_unavailable",
                                   "the audit entry could not be made durable; no token issued")));
                }
                issued.audit_index = appended->index;
                stats_.tokens_issued.fetch_add(1, std::memory_order_relaxed);
                stats_.tokens.at({key_name, alg}).inc();
                done(core::Result<IssuedToken>(std::move(issued)));
            });
    };
    if (!deps_.executor->post_bounded(std::move(job), std::move(on_overrun))) {
        stats_.failed.fetch_add(1, std::memory_order_relaxed);
        done(core::Result<IssuedToken>(
            make_error(ErrorKind::overloaded, "service.overloaded", "signing queue is full")));
    }
}

template <class Tag>
core::Result<core::Grant<Tag>> Service::authorize_read(const Caller& caller, std::string_view key) {
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, Tag::name,
                              key.empty() ? std::nullopt : std::optional<std::string>(key));
    if (!principal) return principal.error();
    auto grant = engine->authorize<Tag>(**principal, key);
    if (!grant) {
        audit_refusal(*engine, (*principal)->name, std::string(Tag::name), caller,
                      key.empty() ? std::nullopt : std::optional<std::string>(key), grant.error());
    }
    return grant;
}

core::Result<Service::PublishedJwks> Service::jwks(const Caller& caller) {
    if (auto g = authorize_read<act::JwksRead>(caller, {}); !g) {
        return core::Result<PublishedJwks>(g.error());
    }
    return public_jwks();
}

core::Result<Service::PublishedJwks> Service::public_jwks() {
    auto published = deps_.keys->published(clock_now());
    std::vector<token::JwksKey> entries;
    entries.reserve(published.size());
    for (const auto& v : published) {
        entries.push_back({v.public_key.get(),
                           {{"licentra_key", v.name},
                            {"licentra_version", v.record.version},
                            {"licentra_state", std::string(keys::state_name(v.record.state))}}});
    }
    auto doc = token::jwks_json(entries);
    if (!doc) return core::Result<PublishedJwks>(doc.error());
    std::chrono::seconds max_age = std::chrono::hours(1);
    const auto engine = deps_.policy->current();  // held for the loop: a reload may replace it
    for (const auto& rules : engine->keys()) {
        max_age = std::min(max_age, std::chrono::duration_cast<std::chrono::seconds>(
                                        rules.rotation.publish_ahead / 2));
    }
    return core::Result<PublishedJwks>(
        {std::move(*doc), std::max(max_age, std::chrono::seconds{0})});
}

core::Result<nlohmann::json> Service::list_keys(const Caller& caller) {
    const auto engine = deps_.policy->current();
    auto principal = identify(*engine, caller, "keys.read");
    if (!principal) return core::Result<nlohmann::json>(principal.error());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& rules : engine->keys()) {
        // Only the keys the caller may read; a key it may not is left out, not refused.
        auto grant = engine->authorize<act::KeysRead>(**principal, rules.name);
        if (!grant) continue;
        nlohmann::json versions = nlohmann::json::array();
        for (const auto& v : deps_.keys->versions(*grant)) versions.push_back(version_json(v));
        out.push_back({{"name", rules.name},
                       {"algorithm", std::string(crypto::jws_name(rules.algorithm))},
                       {"versions", std::move(versions)}});
    }
    return core::Result<nlohmann::json>(nlohmann::json{{"keys", std::move(out)}});
}

core::Result<nlohmann::json> Service::get_key(const Caller& caller, const std::string& name) {
    auto grant = authorize_read<act::KeysRead>(caller, name);
    if (!grant) return core::Result<nlohmann::json>(grant.error());
    const auto engine = deps_.policy->current();
    const policy::KeyRules* rules = engine->key_rules(name);
    nlohmann::json versions = nlohmann::json::array();
    for (const auto& v : deps_.keys->versions(*grant)) versions.push_back(version_json(v));
    return core::Result<nlohmann::json>(
        {{"name", name},
         {"algorithm", rules ? std::string(crypto::jws_name(rules->algorithm)) : std::string()},
         {"versions", std::move(versions)}});
}

core::Result<std::string> Service::audit_checkpoint(const Caller& caller) {
    auto grant = authorize_read<act::AuditRead>(caller, {});
    if (!grant) return core::Result<std::string>(grant.error());
    return core::Result<std::string>(deps_.audit->reader(*grant).latest_checkpoint());
}

core::Result<std::string> Service::audit_entries(const Caller& caller, std::uint64_t start,
                                                 std::uint64_t end) {
    auto grant = authorize_read<act::AuditRead>(caller, {});
    if (!grant) return core::Result<std::string>(grant.error());
    const audit::GrantedRead log = deps_.audit->reader(*grant);
    // An end past the log's size is clamped, so an auditor can page with a fixed window.
    end = std::min(end, log.size());
    if (start > end) start = end;
    auto lines = log.read_entries(start, end);
    if (!lines) return core::Result<std::string>(lines.error());
    std::string out;
    for (const auto& l : *lines) {
        out += l;
        out += '\n';
    }
    return core::Result<std::string>(std::move(out));
}

core::Result<nlohmann::json> Service::inclusion_proof(const Caller& caller, std::uint64_t index,
                                                      std::uint64_t size) {
    auto grant = authorize_read<act::AuditRead>(caller, {});
    if (!grant) return core::Result<nlohmann::json>(grant.error());
    const audit::GrantedRead log = deps_.audit->reader(*grant);
    auto proof = log.inclusion_proof(index, size);
    if (!proof) return core::Result<nlohmann::json>(proof.error());
    auto leaf = log.leaf(index);
    auto root = log.root(size);
    if (!leaf || !root) {
        return core::Result<nlohmann::json>(leaf ? root.error() : leaf.error());
    }
    return core::Result<nlohmann::json>(
        audit::inclusion_proof_json(index, size, *leaf, *root, *proof));
}

core::Result<nlohmann::json> Service::consistency_proof(const Caller& caller, std::uint64_t first,
                                                        std::uint64_t second) {
    auto grant = authorize_read<act::AuditRead>(caller, {});
    if (!grant) return core::Result<nlohmann::json>(grant.error());
    const audit::GrantedRead log = deps_.audit->reader(*grant);
    auto proof = log.consistency_proof(first, second);
    if (!proof) return core::Result<nlohmann::json>(proof.error());
    auto r1 = log.root(first);
    auto r2 = log.root(second);
    if (!r1 || !r2) return core::Result<nlohmann::json>(r1 ? r2.error() : r1.error());
    return core::Result<nlohmann::json>(
        audit::consistency_proof_json(first, second, *r1, *r2, *proof));
}

core::Status Service::bootstrap_keys() {
    const auto engine = deps_.policy->current();
    core::Status failure;
    for (const auto& rules : engine->keys()) {
        auto grant = engine->system_grant(rules.name, policy::Engine::SystemPurpose::bootstrap);
        if (!grant) return grant.error();
        auto created = deps_.keys->bootstrap(*grant, rules.algorithm);
        if (!created) {
            failure = created.error();  // the other keys are still created
            continue;
        }
        if (!created->has_value()) continue;
        audit::Entry e;
        e.principal = std::string(policy::kSystemPrincipal);
        e.action = "key.bootstrap";
        e.result = audit::Outcome::allowed;
        e.key = rules.name;
        e.kid = (*created)->kid;
        e.version = (*created)->record.version;
        e.policy_sha256 = engine->sha256_hex();
        auto appended = deps_.audit->append(std::move(e));
        if (!appended) return appended.error();
    }
    return failure;
}

}  // namespace licentra::service
