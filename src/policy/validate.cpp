// Stage 2: checks across a PolicyDocument (validate.hpp).
#include "policy/validate.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "policy/duration.hpp"
#include "policy/permissions.hpp"
#include "policy/text.hpp"

namespace licentra::policy {

namespace {

enum Duty : unsigned { kDutySign = 1, kDutyManage = 2, kDutyAudit = 4 };

unsigned duty_of(Action a) {
    switch (a) {
        case Action::token_sign:
            return kDutySign;
        case Action::key_rotate_request:
        case Action::key_retire_request:
        case Action::key_destroy_request:
        case Action::request_approve:
        case Action::request_reject:
            return kDutyManage;
        case Action::audit_read:
            return kDutyAudit;
        case Action::keys_read:
        case Action::jwks_read:
        default:
            return 0;
    }
}

unsigned duties_of(const std::vector<RoleGrant>& grants) {
    unsigned duties = 0;
    for (const RoleGrant& g : grants) {
        for (Action a : g.actions) duties |= duty_of(a);
    }
    return duties;
}

std::string duty_conflict(unsigned duties) {
    if ((duties & kDutySign) && (duties & kDutyManage)) {
        return "signing (token.sign) and key management (key.*.request, request.*)";
    }
    if ((duties & kDutyManage) && (duties & kDutyAudit)) {
        return "key management (key.*.request, request.*) and auditing (audit.read)";
    }
    if ((duties & kDutySign) && (duties & kDutyAudit)) {
        return "signing (token.sign) and auditing (audit.read)";
    }
    return {};
}

void sort_unique(std::vector<std::string>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

template <class T>
void sort_by_name(std::vector<T>& v) {
    std::sort(v.begin(), v.end(), [](const T& a, const T& b) { return a.name < b.name; });
}

std::string child_path(const Location& map, std::string_view name) {
    return map.path.empty() ? std::string(name) : map.path + "." + std::string(name);
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

// Checks the sections in the parser's order (keys, roles, exclusive roles, principals), so that
// errors at the same position keep the order they had when parsing and checking were one pass.
class Validator {
  public:
    explicit Validator(const PolicyDocument& doc) : doc_(doc) {}

    // Every error, in the order of the checks.
    std::vector<Diagnostic> run();
    void move_model_into(ValidatedPolicy& v);

  private:
    void err(const Location& at, std::string message) { err_at(at, at.path, std::move(message)); }
    void err_at(const Location& at, std::string path, std::string message) {
        diags_.push_back(
            Diagnostic{doc_.file, at.line, at.column, std::move(path), std::move(message)});
    }

    void check_keys();
    KeyRules check_key(const KeyDoc& d);
    void check_claims(const ClaimsDoc& d, ClaimRules& c);
    void take_claims(const std::vector<Name>& names, const ClaimRules& c,
                     std::vector<std::string>& into, std::map<std::string, Location>& at);
    void check_rules(const std::vector<ValueRuleDoc>& rules, ClaimRules& c);
    void check_rotation(const KeyDoc& d, KeyRules& k);
    void check_roles();
    bool resolve_grant(const GrantDoc& d, RoleGrant& g);
    void check_exclusive_pairs();
    void check_principals();
    Principal check_principal(const PrincipalDoc& d, std::set<std::string>& names,
                              std::map<std::string, std::string>& identities);
    void check_principal_roles(const PrincipalDoc& d, Principal& p);
    void check_exclusive(const Location& at, const std::vector<std::string>& roles);
    void check_quorums();
    void check_quorum(const KeyRules& k, Operation op, const std::vector<std::string>& approvers,
                      std::vector<std::string> requesters);

    const PolicyDocument& doc_;
    std::vector<Diagnostic> diags_;
    std::vector<std::string> global_forbidden_;
    std::vector<KeyRules> keys_;
    std::vector<Role> roles_;
    std::vector<Principal> principals_;
    std::vector<std::pair<std::string, std::string>> exclusive_;
    // Where each key and each declared quorum is written (the last of duplicate names).
    std::map<std::string, Location> key_at_;
    std::map<std::pair<std::string, Operation>, Location> quorum_at_;
};

std::vector<Diagnostic> Validator::run() {
    global_forbidden_ = builtin_forbidden_claims();
    for (const Name& n : doc_.forbidden_claims) global_forbidden_.push_back(lower(n.value));
    sort_unique(global_forbidden_);
    check_keys();
    check_roles();
    check_exclusive_pairs();
    check_principals();
    // After an earlier error the permissions are incomplete; quorum errors would only cascade.
    if (doc_.complete && diags_.empty()) check_quorums();
    return std::move(diags_);
}

void Validator::move_model_into(ValidatedPolicy& v) {
    v.version = doc_.version;
    v.pseudonyms = doc_.pseudonyms;
    v.keys = std::move(keys_);
    v.roles = std::move(roles_);
    v.principals = std::move(principals_);
}

// ---- keys --------------------------------------------------------------------------------
void Validator::check_keys() {
    for (const KeyDoc& d : doc_.keys) {
        keys_.push_back(check_key(d));
        key_at_[d.name.value] = d.at;
        for (Operation op : kAllOperations) {
            const ApprovalDoc& a = d.approvals[static_cast<std::size_t>(op)];
            if (a.quorum_at) quorum_at_[{d.name.value, op}] = *a.quorum_at;
        }
    }
    sort_by_name(keys_);
}

KeyRules Validator::check_key(const KeyDoc& d) {
    KeyRules k;
    k.name = d.name.value;
    k.algorithm = d.algorithm;
    k.issuer = d.issuer;
    k.max_validity = d.max_validity.value_or(Seconds(0));
    check_claims(d.claims, k.claims);
    check_rotation(d, k);
    for (Operation op : kAllOperations) {
        const auto i = static_cast<std::size_t>(op);
        k.approvals[i] = d.approvals[i].rule;
    }
    k.allow_forced_destroy = d.allow_forced_destroy;
    return k;
}

void Validator::check_claims(const ClaimsDoc& d, ClaimRules& c) {
    c.forbidden = global_forbidden_;
    for (const Name& n : d.forbidden) c.forbidden.push_back(lower(n.value));
    sort_unique(c.forbidden);
    std::map<std::string, Location> at;  // the last listing of each claim
    take_claims(d.required, c, c.required, at);
    std::vector<std::string> allowed;
    take_claims(d.allowed, c, allowed, at);
    for (const std::string& a : allowed) {
        if (contains(c.required, a)) {
            err(at[a], quote(a) + " is listed both as required and as allowed");
        } else {
            c.allowed.push_back(a);
        }
    }
    sort_unique(c.required);
    sort_unique(c.allowed);
    auto declared = [&c](std::string_view name) {
        return std::binary_search(c.required.begin(), c.required.end(), name, std::less<>()) ||
               std::binary_search(c.allowed.begin(), c.allowed.end(), name, std::less<>());
    };
    for (const Name& n : d.pseudonymize) {
        if (!declared(n.value)) {
            err(n.at, quote(n.value) + " is neither a required nor an allowed claim");
        } else {
            c.pseudonymize.push_back(n.value);
        }
    }
    sort_unique(c.pseudonymize);
    check_rules(d.rules, c);
}

void Validator::take_claims(const std::vector<Name>& names, const ClaimRules& c,
                            std::vector<std::string>& into, std::map<std::string, Location>& at) {
    for (const Name& n : names) {
        if (std::find(kDaemonClaims.begin(), kDaemonClaims.end(), n.value) != kDaemonClaims.end()) {
            err(n.at, quote(n.value) + " is set by the signer and cannot be supplied by callers");
        } else if (n.value == "exp" || n.value == "nbf") {
            err(n.at, quote(n.value) +
                          " is built in (exp is always required, nbf always allowed); "
                          "do not list it");
        } else if (std::binary_search(c.forbidden.begin(), c.forbidden.end(), lower(n.value))) {
            err(n.at, quote(n.value) + " is a forbidden claim (personal data)");
        } else {
            into.push_back(n.value);
            at[n.value] = n.at;
        }
    }
}

void Validator::check_rules(const std::vector<ValueRuleDoc>& rules, ClaimRules& c) {
    for (const ValueRuleDoc& r : rules) {
        const std::string& name = r.claim.value;
        if (!std::binary_search(c.required.begin(), c.required.end(), name) &&
            !std::binary_search(c.allowed.begin(), c.allowed.end(), name)) {
            err(r.claim.at,
                "rule for " + quote(name) + ", which is neither a required nor an allowed claim");
            continue;
        }
        diags_.insert(diags_.end(), r.problems.begin(), r.problems.end());
        if (r.problems.empty()) c.rules.emplace(name, r.rule);
    }
}

void Validator::check_rotation(const KeyDoc& d, KeyRules& k) {
    const RotationDoc& r = d.rotation;
    RotationRules& out = k.rotation;
    out.period = r.period;
    out.verify_grace = k.max_validity;
    if (r.publish_ahead) {
        out.publish_ahead = r.publish_ahead->value;
        if (out.period && out.publish_ahead >= *out.period) {
            err(r.publish_ahead->at, "publish_ahead must be shorter than the rotation period");
        }
    }
    if (r.verify_grace) {
        out.verify_grace = r.verify_grace->value;
        // A retired version must stay in the JWKS until the last token it signed expires.
        if (d.max_validity && out.verify_grace < *d.max_validity) {
            err(r.verify_grace->at, "verify_grace (" + format_duration(out.verify_grace) +
                                        ") is shorter than max_validity (" +
                                        format_duration(*d.max_validity) +
                                        "): tokens would outlive their verification key");
        }
    }
    if (r.requires_approval) {
        out.requires_approval = r.requires_approval->value;
        if (out.requires_approval && !out.period) {
            err(r.requires_approval->at,
                "requires_approval applies to scheduled rotation; set a period");
        }
    }
}

// ---- roles -------------------------------------------------------------------------------
void Validator::check_roles() {
    for (const RoleDoc& d : doc_.roles) {
        Role role;
        role.name = d.name.value;
        for (const GrantDoc& gd : d.grants) {
            RoleGrant g;
            if (resolve_grant(gd, g)) role.grants.push_back(std::move(g));
        }
        if (std::string c = duty_conflict(duties_of(role.grants)); !c.empty()) {
            err(d.name.at, "role " + quote(role.name) + " combines " + c +
                               "; separation of duties forbids it");
        }
        roles_.push_back(std::move(role));
    }
    sort_by_name(roles_);
}

// True if the grant is usable: well formed, and every key name or pattern names a key.
bool Validator::resolve_grant(const GrantDoc& d, RoleGrant& g) {
    bool ok = d.well_formed;
    g.actions = d.actions;
    for (const Name& pattern : d.keys) {
        const bool any = std::any_of(keys_.begin(), keys_.end(), [&](const KeyRules& k) {
            return glob_match(pattern.value, k.name);
        });
        if (!any) {
            err(pattern.at, pattern.value.find_first_of("*?") == std::string::npos
                                ? "unknown key " + quote(pattern.value)
                                : "pattern " + quote(pattern.value) + " matches no declared key");
            ok = false;
            continue;
        }
        g.keys.push_back(pattern.value);
    }
    return ok;
}

void Validator::check_exclusive_pairs() {
    for (const ExclusivePair& pair : doc_.exclusive_roles) {
        bool ok = true;
        for (const Name& r : pair.roles) {
            if (find_role(roles_, r.value) == nullptr) {
                err(r.at, "unknown role " + quote(r.value));
                ok = false;
            }
        }
        if (ok && pair.roles[0].value == pair.roles[1].value) {
            err(pair.at, "a role cannot be exclusive with itself");
            ok = false;
        }
        if (ok) exclusive_.emplace_back(pair.roles[0].value, pair.roles[1].value);
    }
}

// ---- principals --------------------------------------------------------------------------
void Validator::check_principals() {
    std::set<std::string> names;
    std::map<std::string, std::string> identities;  // canonical identity -> principal
    for (const PrincipalDoc& d : doc_.principals) {
        principals_.push_back(check_principal(d, names, identities));
    }
    sort_by_name(principals_);
}

Principal Validator::check_principal(const PrincipalDoc& d, std::set<std::string>& names,
                                     std::map<std::string, std::string>& identities) {
    Principal p;
    if (d.name) {
        if (!names.insert(d.name->value).second) {
            err(d.name->at, "duplicate principal name " + quote(d.name->value));
        } else {
            p.name = d.name->value;
        }
    }
    if (d.identity) {
        p.identity = d.identity->spec;
        // A principal whose name was refused is recorded under the empty name.
        const auto [it, fresh] = identities.emplace(d.identity->canonical, p.name);
        if (!fresh) err(d.identity->at, "same identity as principal " + quote(it->second));
    }
    p.signing_rate_limit = d.signing_rate_limit;
    check_principal_roles(d, p);
    return p;
}

void Validator::check_principal_roles(const PrincipalDoc& d, Principal& p) {
    unsigned duties = 0;
    bool roles_ok = false;
    if (d.roles_at) {
        roles_ok = true;
        for (const Name& rn : d.roles) {
            const Role* r = find_role(roles_, rn.value);
            if (r == nullptr) {
                err(rn.at, "unknown role " + quote(rn.value));
                roles_ok = false;
                continue;
            }
            duties |= duties_of(r->grants);
            p.roles.push_back(rn.value);
        }
        check_exclusive(*d.roles_at, p.roles);
        if (std::string c = duty_conflict(duties); !c.empty()) {
            err(*d.roles_at,
                "these roles together grant " + c + "; separation of duties forbids it");
        }
    }
    if (d.rate_limit_at && roles_ok && !(duties & kDutySign)) {
        err(*d.rate_limit_at, "signing_rate_limit is set on a principal that cannot sign");
    }
}

void Validator::check_exclusive(const Location& at, const std::vector<std::string>& roles) {
    std::set<std::pair<std::string, std::string>> reported;
    auto check = [&](std::string_view a, std::string_view b) {
        if (!contains(roles, a) || !contains(roles, b)) return;
        std::string lo(a);
        std::string hi(b);
        if (hi < lo) std::swap(lo, hi);
        if (!reported.emplace(std::move(lo), std::move(hi)).second) return;
        err(at, "roles " + quote(a) + " and " + quote(b) + " are exclusive (separation of duties)");
    };
    for (const auto& [a, b] : kDefaultExclusiveRoles) check(a, b);
    for (const auto& [a, b] : exclusive_) check(a, b);
}

// ---- quorums -----------------------------------------------------------------------------
void Validator::check_quorums() {
    std::vector<Permissions> perms;
    for (const Principal& p : principals_) perms.push_back(permissions_of(p.roles, roles_, keys_));
    auto holders = [&](std::size_t key, Action a) {
        std::vector<std::string> names;
        for (std::size_t i = 0; i < principals_.size(); ++i) {
            if (perms[i].per_key[key] & action_bit(a)) names.push_back(principals_[i].name);
        }
        return names;
    };
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        const std::vector<std::string> approvers = holders(i, Action::request_approve);
        for (Operation op : kAllOperations) {
            check_quorum(keys_[i], op, approvers, holders(i, request_action(op)));
        }
    }
}

void Validator::check_quorum(const KeyRules& k, Operation op,
                             const std::vector<std::string>& approvers,
                             std::vector<std::string> requesters) {
    const std::uint32_t q = k.approval(op).quorum;
    const auto declared = quorum_at_.find({k.name, op});
    const Location& at = declared != quorum_at_.end() ? declared->second : key_at_.at(k.name);
    const std::string where =
        declared != quorum_at_.end()
            ? at.path
            : child_path(at, "approvals." + std::string(operation_name(op)) + ".quorum");
    if (op == Operation::rotate && k.rotation.requires_approval) {
        requesters.emplace_back(kSystemPrincipal);
    }
    if (requesters.empty() && declared == quorum_at_.end()) return;  // nobody can ask
    const std::string what = "quorum " + std::to_string(q) + " for " +
                             std::string(operation_name(op)) + " on key " + quote(k.name);
    if (q > approvers.size()) {
        err_at(at, where,
               what + " is larger than the " + std::to_string(approvers.size()) +
                   " principal(s) that may approve it");
        return;
    }
    for (const std::string& r : requesters) {
        const std::size_t others = approvers.size() - (contains(approvers, r) ? 1 : 0);
        if (q > others) {
            err_at(at, where,
                   what + " cannot be reached when " + quote(r) +
                       " requests it: the requester cannot approve and only " +
                       std::to_string(others) + " other principal(s) may");
            break;
        }
    }
}

}  // namespace

Validation validate(const PolicyDocument& document) {
    Validator validator(document);
    Validation out;
    out.diagnostics = validator.run();
    if (!document.complete || !out.diagnostics.empty()) return out;
    ValidatedPolicy policy;
    validator.move_model_into(policy);
    out.policy = std::move(policy);
    return out;
}

}  // namespace licentra::policy
