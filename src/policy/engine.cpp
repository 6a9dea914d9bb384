#include "policy/engine.hpp"

#include <algorithm>
#include <functional>
#include <sstream>

#include "core/bytes.hpp"
#include "policy/approval.hpp"
#include "policy/duration.hpp"

namespace licentra::policy {

namespace {

constexpr std::uint16_t bit(Action a) noexcept {
    return static_cast<std::uint16_t>(1u << static_cast<unsigned>(a));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

bool matches(const IdentitySpec& spec, const core::ClientIdentity& id) noexcept {
    switch (spec.kind) {
        case IdentitySpec::Kind::spki_sha256:
            return spec.spki_sha256 == id.spki_sha256;
        case IdentitySpec::Kind::san_uri:
            return std::find(id.san_uris.begin(), id.san_uris.end(), spec.value) !=
                   id.san_uris.end();
        case IdentitySpec::Kind::san_dns:
            // RFC 4343: DNS names compare case-insensitively.
            return std::any_of(id.san_dns.begin(), id.san_dns.end(),
                               [&](const std::string& d) { return iequals(d, spec.value); });
        case IdentitySpec::Kind::subject_cn_issuer:
            return !spec.value.empty() && spec.value == id.subject_cn &&
                   spec.issuer == id.issuer_dn;
        default:
            return false;
    }
}

}  // namespace

Engine::Engine(EngineKey /*key*/, CompiledPolicy policy)
    : version_(policy.version),
      pseudonyms_(policy.pseudonyms),
      sha256_(policy.sha256),
      roles_(std::move(policy.roles)),
      principals_(std::move(policy.principals)),
      keys_(std::move(policy.keys)) {}

core::Result<const Principal*> Engine::identify(const core::ClientIdentity& id) const {
    const Principal* found = nullptr;
    for (const Principal& p : principals_) {
        if (!matches(p.identity, id)) continue;
        if (found != nullptr) {
            return core::make_error(core::ErrorKind::denied, "policy.ambiguous_identity",
                                    "the client certificate matches principals \"" + found->name +
                                        "\" and \"" + p.name + "\"");
        }
        found = &p;
    }
    if (found == nullptr) {
        return core::make_error(core::ErrorKind::denied, "policy.unknown_principal",
                                "the client certificate does not identify any principal");
    }
    return found;
}

const Principal* Engine::find_principal(std::string_view name) const noexcept {
    auto it = std::lower_bound(principals_.begin(), principals_.end(), name,
                               [](const Principal& p, std::string_view n) { return p.name < n; });
    if (it == principals_.end() || it->name != name) return nullptr;
    return &*it;
}

std::ptrdiff_t Engine::key_index(std::string_view key) const noexcept {
    auto it = std::lower_bound(keys_.begin(), keys_.end(), key,
                               [](const KeyRules& k, std::string_view n) { return k.name < n; });
    if (it == keys_.end() || it->name != key) return -1;
    return it - keys_.begin();
}

const KeyRules* Engine::key_rules(std::string_view key) const noexcept {
    const std::ptrdiff_t i = key_index(key);
    return i < 0 ? nullptr : &keys_[static_cast<std::size_t>(i)];
}

Engine::Deny Engine::decide(const Principal& p, Action action,
                            std::string_view key) const noexcept {
    std::less<const Principal*> before;
    if (principals_.empty() || before(&p, principals_.data()) ||
        !before(&p, principals_.data() + principals_.size())) {
        return Deny::foreign_principal;
    }
    const std::uint16_t b = bit(action);
    if (!action_is_key_scoped(action)) {
        if (!key.empty()) return Deny::key_not_applicable;
        return (p.global_actions & b) != 0 ? Deny::none : Deny::action_not_granted;
    }
    if (key.empty()) return Deny::key_required;
    const std::ptrdiff_t i = key_index(key);
    if (i < 0) return Deny::unknown_key;
    if ((p.key_actions[static_cast<std::size_t>(i)] & b) != 0) return Deny::none;
    for (std::uint16_t mask : p.key_actions) {
        if ((mask & b) != 0) return Deny::key_out_of_scope;
    }
    return Deny::action_not_granted;
}

core::Error Engine::deny_error(Deny d, std::string_view principal, Action action,
                               std::string_view key) {
    const std::string who = "\"" + std::string(principal) + "\"";
    const std::string what = std::string(action_name(action));
    const std::string on = key.empty() ? std::string() : " on key \"" + std::string(key) + "\"";
    switch (d) {
        case Deny::unknown_principal:
            return core::make_error(core::ErrorKind::denied, "policy.unknown_principal",
                                    "principal " + who + " is not in the policy");
        case Deny::foreign_principal:
            return core::make_error(core::ErrorKind::internal, "policy.foreign_principal",
                                    "principal " + who + " belongs to another policy snapshot");
        case Deny::unknown_key:
            return core::make_error(core::ErrorKind::denied, "policy.unknown_key",
                                    "key \"" + std::string(key) + "\" is not in the policy");
        case Deny::key_required:
            return core::make_error(core::ErrorKind::denied, "policy.key_required",
                                    what + " needs a key name");
        case Deny::key_not_applicable:
            return core::make_error(core::ErrorKind::denied, "policy.key_not_applicable",
                                    what + " is not scoped to keys");
        case Deny::action_not_granted:
            return core::make_error(core::ErrorKind::denied, "policy.action_not_granted",
                                    who + " may not " + what);
        case Deny::key_out_of_scope:
            return core::make_error(core::ErrorKind::denied, "policy.key_out_of_scope",
                                    who + " may not " + what + on);
        case Deny::none:
        default:
            return core::make_error(core::ErrorKind::internal, "policy.internal",
                                    "no denial reason");
    }
}

core::Status Engine::check(std::string_view principal, Action action, std::string_view key) const {
    const Principal* p = find_principal(principal);
    const Deny d = p == nullptr ? Deny::unknown_principal : decide(*p, action, key);
    if (d != Deny::none) return deny_error(d, principal, action, key);
    return core::ok_status();
}

core::Result<core::Grant<core::action::KeyLifecycleExecute>> Engine::system_grant(
    std::string_view key, SystemPurpose purpose) const {
    const KeyRules* k = key_rules(key);
    if (k == nullptr) {
        return core::make_error(core::ErrorKind::denied, "policy.unknown_key",
                                "key \"" + std::string(key) + "\" is not in the policy");
    }
    if (purpose == SystemPurpose::scheduled_rotation) {
        if (!k->rotation.period) {
            return core::make_error(core::ErrorKind::denied, "policy.no_rotation_schedule",
                                    "key \"" + k->name + "\" has no rotation period");
        }
        if (k->rotation.requires_approval) {
            return core::make_error(
                core::ErrorKind::denied, "policy.approval_required",
                "scheduled rotation of key \"" + k->name + "\" needs approvals; open a request");
        }
    }
    return core::Grant<core::action::KeyLifecycleExecute>(std::string(kSystemPrincipal), k->name);
}

core::Grant<core::action::AuditCheckpointSign> Engine::checkpoint_grant() const {
    return core::Grant<core::action::AuditCheckpointSign>(std::string(kSystemPrincipal), "audit");
}

core::Result<core::Grant<core::action::KeyLifecycleExecute>> Engine::execution_grant(
    const ApprovalRequest& request, core::TimePoint now) const {
    auto refuse = [](std::string code, std::string message) {
        return core::make_error(core::ErrorKind::denied, std::move(code), std::move(message));
    };
    if (request.state() != RequestState::pending) {
        return refuse(
            "policy.request_closed",
            "request " + request.id() + " is " + std::string(request_state_name(request.state())));
    }
    if (request.expired(now)) {
        return refuse("policy.request_expired", "request " + request.id() + " has expired");
    }
    if (request.policy_sha256() != sha256_) {
        return refuse("policy.request_policy_changed",
                      "request " + request.id() + " was opened under another policy");
    }
    const KeyRules* k = key_rules(request.key());
    if (k == nullptr)
        return refuse("policy.unknown_key", "key \"" + request.key() + "\" is not in the policy");
    const std::uint32_t quorum = k->approval(request.operation()).quorum;
    std::vector<std::string_view> seen;
    for (const ApprovalRecord& a : request.approvals()) {
        // Re-checked here because a stored request may have been edited on the token.
        if (a.principal == request.requester()) continue;
        if (std::find(seen.begin(), seen.end(), a.principal) != seen.end()) continue;
        if (!check(a.principal, Action::request_approve, request.key()).ok()) continue;
        seen.push_back(a.principal);
    }
    if (seen.size() < quorum) {
        return refuse("policy.quorum_not_reached", "request " + request.id() + " has " +
                                                       std::to_string(seen.size()) + " of " +
                                                       std::to_string(quorum) + " approvals");
    }
    return core::Grant<core::action::KeyLifecycleExecute>(request.requester(), request.key());
}

std::string Engine::sha256_hex() const { return core::hex_encode(sha256_); }

std::vector<const Principal*> Engine::approvers(std::string_view key) const {
    std::vector<const Principal*> out;
    for (const Principal& p : principals_) {
        if (permits(p, Action::request_approve, key)) out.push_back(&p);
    }
    return out;
}

std::string Engine::render_matrix() const {
    struct Row {
        std::string principal;
        std::string action;
        std::string key;
    };
    std::vector<Row> rows;
    for (const Principal& p : principals_) {
        for (Action a : kAllActions) {
            if (!action_is_key_scoped(a)) {
                if (permits(p, a, {})) rows.push_back({p.name, std::string(action_name(a)), "-"});
                continue;
            }
            for (const KeyRules& k : keys_) {
                if (permits(p, a, k.name))
                    rows.push_back({p.name, std::string(action_name(a)), k.name});
            }
        }
    }
    std::size_t w1 = 9;
    std::size_t w2 = 6;
    for (const Row& r : rows) {
        w1 = std::max(w1, r.principal.size());
        w2 = std::max(w2, r.action.size());
    }
    std::ostringstream out;
    auto pad = [](const std::string& s, std::size_t w) {
        return s + std::string(w - s.size() + 2, ' ');
    };
    out << "version " << version_ << "\n\n";
    out << "# permissions\n" << pad("principal", w1) << pad("action", w2) << "key\n";
    for (const Row& r : rows) out << pad(r.principal, w1) << pad(r.action, w2) << r.key << "\n";

    out << "\n# identities\n";
    for (const Principal& p : principals_) {
        out << p.name << "  ";
        switch (p.identity.kind) {
            case IdentitySpec::Kind::spki_sha256:
                out << "spki_sha256=" << core::hex_encode(p.identity.spki_sha256);
                break;
            case IdentitySpec::Kind::san_uri:
                out << "san_uri=" << p.identity.value;
                break;
            case IdentitySpec::Kind::san_dns:
                out << "san_dns=" << p.identity.value;
                break;
            case IdentitySpec::Kind::subject_cn_issuer:
            default:
                out << "subject_cn=" << p.identity.value << " issuer=\"" << p.identity.issuer
                    << "\"";
                break;
        }
        out << "  roles=";
        for (std::size_t i = 0; i < p.roles.size(); ++i) out << (i ? "," : "") << p.roles[i];
        if (p.signing_rate_limit) {
            out << "  signing_rate_limit=" << p.signing_rate_limit->per_second << "/s burst "
                << p.signing_rate_limit->burst;
        }
        out << "\n";
    }

    out << "\n# keys\n";
    for (const KeyRules& k : keys_) {
        out << k.name << "  algorithm=" << crypto::jws_name(k.algorithm) << "  issuer=" << k.issuer
            << "  max_validity=" << format_duration(k.max_validity);
        out << "  rotation=" << (k.rotation.period ? format_duration(*k.rotation.period) : "manual")
            << "  publish_ahead=" << format_duration(k.rotation.publish_ahead)
            << "  verify_grace=" << format_duration(k.rotation.verify_grace)
            << "  rotation_requires_approval=" << (k.rotation.requires_approval ? "yes" : "no")
            << "\n";
        auto list = [&out](std::string_view label, const std::vector<std::string>& v) {
            out << "  " << label << "=";
            for (std::size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
            out << "\n";
        };
        list("required", k.claims.required);
        list("allowed", k.claims.allowed);
        list("pseudonymized", k.claims.pseudonymize);
        list("forbidden", k.claims.forbidden);
        std::vector<std::string> names;
        for (const Principal* p : approvers(k.name)) names.push_back(p->name);
        for (Operation op : kAllOperations) {
            const ApprovalRule& r = k.approval(op);
            out << "  " << operation_name(op) << ": quorum=" << r.quorum
                << " lifetime=" << format_duration(r.lifetime) << " approvers=";
            for (std::size_t i = 0; i < names.size(); ++i) out << (i ? "," : "") << names[i];
            out << "\n";
        }
    }
    return out.str();
}

}  // namespace licentra::policy
