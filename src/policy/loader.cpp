#include "policy/loader.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <tuple>

#include "core/bytes.hpp"
#include "policy/duration.hpp"
#include "yaml/document.hpp"

namespace licentra::policy {

std::string Diagnostic::to_string() const {
    std::string s = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    if (!path.empty()) s += path + ": ";
    return s + message;
}

core::Error PolicyLoad::error() const {
    std::string msg;
    for (const Diagnostic& d : diagnostics) {
        if (!msg.empty()) msg += "\n";
        msg += d.to_string();
    }
    if (msg.empty()) msg = "invalid policy";
    return core::make_error(core::ErrorKind::usage, "policy.invalid", std::move(msg));
}

namespace detail {

namespace {

using YamlNode = yaml::Node;
using Fields = std::map<std::string, const YamlNode*, std::less<>>;

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Claim names: 1-64 of [A-Za-z0-9_.:-].
bool valid_claim_name(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '.' || c == ':' || c == '-';
    });
}

bool valid_pattern(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '*' || c == '?';
    });
}

// POSIX fnmatch(3) without flags: '*' any run, '?' one character. valid_pattern admits no '[',
// ']' or '\\', so no other fnmatch syntax can reach it.
bool glob_match(const std::string& pattern, const std::string& text) {
    return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

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

}  // namespace

class EngineBuilder {
  public:
    EngineBuilder(std::string file, std::vector<Diagnostic>& diags)
        : file_(std::move(file)), diags_(diags) {}

    std::shared_ptr<const Engine> build(const YamlNode& root, const crypto::Sha256Digest& sha) {
        auto engine = std::shared_ptr<Engine>(new Engine());
        engine->sha256_ = sha;
        Fields top;
        if (!fields(root,
                    {"version", "forbidden_claims", "exclusive_roles", "roles", "principals",
                     "keys", "pseudonyms"},
                    top)) {
            return nullptr;
        }
        if (const YamlNode* v = need(root, top, "version")) {
            if (auto n = integer(*v, 0, 1000)) {
                if (*n != 1)
                    err(*v, "unsupported policy version " + std::to_string(*n) + "; expected 1");
                engine->version_ = static_cast<int>(*n);
            }
        }
        global_forbidden_ = builtin_forbidden_claims();
        if (auto it = top.find("forbidden_claims"); it != top.end()) {
            for (const auto& [name, node] : claim_list(*it->second)) {
                global_forbidden_.push_back(lower(name));
            }
        }
        sort_unique(global_forbidden_);
        if (auto it = top.find("pseudonyms"); it != top.end()) {
            parse_pseudonyms(*it->second, *engine);
        }

        if (const YamlNode* k = need(root, top, "keys")) parse_keys(*k, *engine);
        if (const YamlNode* r = need(root, top, "roles")) parse_roles(*r, *engine);
        if (auto it = top.find("exclusive_roles"); it != top.end()) {
            parse_exclusive(*it->second, *engine);
        }
        if (const YamlNode* p = need(root, top, "principals")) parse_principals(*p, *engine);
        check_quorums(*engine);
        if (!diags_.empty()) return nullptr;
        return engine;
    }

  private:
    // pseudonyms: {epoch: 90d, retention: 730d}
    void parse_pseudonyms(const YamlNode& n, Engine& engine) {
        Fields f;
        if (!fields(n, {"epoch", "retention"}, f)) return;
        PseudonymRules rules;
        bool ok = true;
        if (const YamlNode* e = need(n, f, "epoch")) {
            auto d = duration(*e, Seconds(1));
            ok = ok && d.has_value();
            if (d) rules.epoch = *d;
        } else {
            ok = false;
        }
        if (const YamlNode* r = need(n, f, "retention")) {
            auto d = duration(*r, Seconds(0));
            ok = ok && d.has_value();
            if (d) rules.retention = *d;
        } else {
            ok = false;
        }
        if (ok) engine.pseudonyms_ = rules;
    }

    // ---- diagnostics -------------------------------------------------------------------
    void err(const YamlNode& n, std::string message) {
        diags_.push_back(Diagnostic{file_, n.line, n.column, n.path(), std::move(message)});
    }
    void err_at(const YamlNode& n, std::string path, std::string message) {
        diags_.push_back(Diagnostic{file_, n.line, n.column, std::move(path), std::move(message)});
    }
    static std::string child_path(const YamlNode& map, std::string_view name) {
        std::string p = map.path();
        return p.empty() ? std::string(name) : p + "." + std::string(name);
    }

    // ---- typed accessors -----------------------------------------------------------------
    bool fields(const YamlNode& n, std::initializer_list<std::string_view> allowed, Fields& out) {
        if (!n.is_map()) {
            err(n, "expected a mapping, found a " + std::string(n.kind_name()));
            return false;
        }
        for (const auto& [k, v] : n.pairs) {
            if (std::find(allowed.begin(), allowed.end(), k->value) == allowed.end()) {
                std::string known;
                for (std::string_view a : allowed)
                    known += (known.empty() ? "" : ", ") + std::string(a);
                err(*k, "unknown key " + quote(k->value) + " (expected one of: " + known + ")");
                continue;
            }
            out.emplace(k->value, v);  // duplicates were reported by the YAML reader
        }
        return true;
    }
    const YamlNode* need(const YamlNode& map, const Fields& f, std::string_view name) {
        auto it = f.find(name);
        if (it == f.end()) {
            err_at(map, child_path(map, name), "missing required key " + quote(name));
            return nullptr;
        }
        return it->second;
    }
    static const YamlNode* opt(const Fields& f, std::string_view name) {
        auto it = f.find(name);
        return it == f.end() ? nullptr : it->second;
    }
    std::optional<std::string> str(const YamlNode& n) {
        if (!n.is_scalar()) {
            err(n, "expected a string, found a " + std::string(n.kind_name()));
            return std::nullopt;
        }
        if (n.value.empty()) {
            err(n, "must not be empty");
            return std::nullopt;
        }
        return n.value;
    }
    std::optional<std::int64_t> integer(const YamlNode& n, std::int64_t lo, std::int64_t hi) {
        if (!n.is_scalar() || !n.plain || n.value.empty() || n.value.size() > 18) {
            err(n, "expected an integer");
            return std::nullopt;
        }
        std::size_t i = n.value[0] == '-' ? 1 : 0;
        if (i == n.value.size()) {
            err(n, "expected an integer");
            return std::nullopt;
        }
        std::int64_t v = 0;
        for (; i < n.value.size(); ++i) {
            const char c = n.value[i];
            if (c < '0' || c > '9') {
                err(n, "expected an integer");
                return std::nullopt;
            }
            v = v * 10 + (c - '0');
        }
        if (n.value[0] == '-') v = -v;
        if (v < lo || v > hi) {
            err(n, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
            return std::nullopt;
        }
        return v;
    }
    std::optional<bool> boolean(const YamlNode& n) {
        if (n.is_scalar() && n.plain && (n.value == "true" || n.value == "false")) {
            return n.value == "true";
        }
        err(n, "expected true or false");
        return std::nullopt;
    }
    std::optional<Seconds> duration(const YamlNode& n, Seconds min) {
        if (!n.is_scalar() || !n.plain) {
            err(n, "expected a duration such as 90d, 12h, 30m or 45s");
            return std::nullopt;
        }
        auto d = parse_duration(n.value);
        if (!d) {
            err(n, "invalid duration " + quote(n.value) +
                       " (an integer and one unit: d, h, m or s, at most 36500d)");
            return std::nullopt;
        }
        if (*d < min) {
            err(n, "must be at least " + format_duration(min));
            return std::nullopt;
        }
        return d;
    }
    std::optional<double> rate(const YamlNode& n) {
        // Plain decimal: digits with an optional fraction ("0.5", "200").
        bool ok = n.is_scalar() && n.plain && !n.value.empty() && n.value.size() <= 12;
        int dots = 0;
        if (ok) {
            for (char c : n.value) {
                if (c == '.') {
                    ++dots;
                } else if (c < '0' || c > '9') {
                    ok = false;
                }
            }
            ok = ok && dots <= 1 && n.value.front() != '.' && n.value.back() != '.';
        }
        if (!ok) {
            err(n, "expected a positive number");
            return std::nullopt;
        }
        const double v = std::stod(n.value);
        if (!(v > 0) || v > 1e6) {
            err(n, "must be greater than 0 and at most 1000000");
            return std::nullopt;
        }
        return v;
    }
    // A list of scalars; each reported problem points at its item. Duplicates are errors.
    std::vector<std::pair<std::string, const YamlNode*>> list(const YamlNode& n,
                                                              bool (*valid)(std::string_view),
                                                              std::string_view what) {
        std::vector<std::pair<std::string, const YamlNode*>> out;
        if (!n.is_seq()) {
            err(n, "expected a list, found a " + std::string(n.kind_name()));
            return out;
        }
        for (const YamlNode* item : n.items) {
            if (!item->is_scalar()) {
                err(*item, "expected a " + std::string(what) + ", found a " +
                               std::string(item->kind_name()));
                continue;
            }
            if (!valid(item->value)) {
                err(*item, "invalid " + std::string(what) + " " + quote(item->value));
                continue;
            }
            if (std::any_of(out.begin(), out.end(),
                            [&](const auto& e) { return e.first == item->value; })) {
                err(*item, "duplicate " + std::string(what) + " " + quote(item->value));
                continue;
            }
            out.emplace_back(item->value, item);
        }
        return out;
    }
    std::vector<std::pair<std::string, const YamlNode*>> claim_list(const YamlNode& n) {
        return list(n, valid_claim_name, "claim name");
    }
    static void sort_unique(std::vector<std::string>& v) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
    }

    // ---- keys ----------------------------------------------------------------------------
    void parse_keys(const YamlNode& n, Engine& e) {
        if (!n.is_map()) {
            err(n, "expected a mapping of key names, found a " + std::string(n.kind_name()));
            return;
        }
        if (n.pairs.empty()) err(n, "declare at least one key");
        for (const auto& [kn, kv] : n.pairs) {
            if (!valid_name(kn->value)) {
                err(*kn, "invalid key name " + quote(kn->value) +
                             " (1-64 of a-z 0-9 . _ -, starting with a letter or digit)");
                continue;
            }
            KeyRules k;
            k.name = kn->value;
            parse_key(*kv, k);
            key_nodes_[k.name] = kv;
            e.keys_.push_back(std::move(k));
        }
        std::sort(e.keys_.begin(), e.keys_.end(),
                  [](const KeyRules& a, const KeyRules& b) { return a.name < b.name; });
    }

    void parse_key(const YamlNode& n, KeyRules& k) {
        Fields f;
        if (!fields(n,
                    {"algorithm", "issuer", "max_validity", "claims", "rotation", "approvals",
                     "allow_forced_destroy"},
                    f)) {
            return;
        }
        if (const YamlNode* a = opt(f, "algorithm")) {
            if (auto s = str(*a)) {
                auto alg = crypto::algorithm_from_jws_name(*s);
                if (!alg) {
                    err(*a, "unknown algorithm " + quote(*s) +
                                " (expected EdDSA, ES256, ES384 or PS256)");
                } else {
                    k.algorithm = *alg;
                }
            }
        }
        if (const YamlNode* i = need(n, f, "issuer")) {
            if (auto s = str(*i)) {
                if (s->size() > 256) err(*i, "issuer is longer than 256 characters");
                k.issuer = *s;
            }
        }
        bool validity_ok = false;
        if (const YamlNode* m = need(n, f, "max_validity")) {
            if (auto d = duration(*m, Seconds(60))) {
                k.max_validity = *d;
                validity_ok = true;
            }
        }
        if (const YamlNode* c = opt(f, "claims")) {
            parse_claims(*c, k.claims);
        } else {
            k.claims.forbidden = global_forbidden_;
        }
        k.rotation.verify_grace = k.max_validity;
        if (const YamlNode* r = opt(f, "rotation")) parse_rotation(*r, k, validity_ok);
        if (const YamlNode* a = opt(f, "approvals")) parse_approvals(*a, k);
        if (const YamlNode* x = opt(f, "allow_forced_destroy")) {
            if (auto b = boolean(*x)) k.allow_forced_destroy = *b;
        }
    }

    void parse_claims(const YamlNode& n, ClaimRules& c) {
        Fields f;
        c.forbidden = global_forbidden_;
        if (!fields(n, {"required", "allowed", "forbidden", "pseudonymize", "rules"}, f)) return;
        if (const YamlNode* x = opt(f, "forbidden")) {
            for (const auto& [name, node] : claim_list(*x)) c.forbidden.push_back(lower(name));
        }
        sort_unique(c.forbidden);
        auto take = [&](const char* field, std::vector<std::string>& into) {
            const YamlNode* x = opt(f, field);
            if (x == nullptr) return;
            for (const auto& [name, node] : claim_list(*x)) {
                if (std::find(kDaemonClaims.begin(), kDaemonClaims.end(), name) !=
                    kDaemonClaims.end()) {
                    err(*node,
                        quote(name) + " is set by the signer and cannot be supplied by callers");
                } else if (name == "exp" || name == "nbf") {
                    err(*node, quote(name) +
                                   " is built in (exp is always required, nbf always allowed); "
                                   "do not list it");
                } else if (std::binary_search(c.forbidden.begin(), c.forbidden.end(),
                                              lower(name))) {
                    err(*node, quote(name) + " is a forbidden claim (personal data)");
                } else {
                    into.push_back(name);
                    claim_nodes_[name] = node;
                }
            }
        };
        claim_nodes_.clear();
        take("required", c.required);
        std::vector<std::string> allowed;
        take("allowed", allowed);
        for (const std::string& a : allowed) {
            if (std::find(c.required.begin(), c.required.end(), a) != c.required.end()) {
                err(*claim_nodes_[a], quote(a) + " is listed both as required and as allowed");
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
        if (const YamlNode* x = opt(f, "pseudonymize")) {
            for (const auto& [name, node] : claim_list(*x)) {
                if (!declared(name)) {
                    err(*node, quote(name) + " is neither a required nor an allowed claim");
                } else {
                    c.pseudonymize.push_back(name);
                }
            }
            sort_unique(c.pseudonymize);
        }
        if (const YamlNode* x = opt(f, "rules")) {
            if (!x->is_map()) {
                err(*x, "expected a mapping of claim names to rules");
                return;
            }
            for (const auto& [rn, rv] : x->pairs) {
                if (!valid_claim_name(rn->value)) {
                    err(*rn, "invalid claim name " + quote(rn->value));
                    continue;
                }
                if (!declared(rn->value)) {
                    err(*rn, "rule for " + quote(rn->value) +
                                 ", which is neither a required nor an allowed claim");
                    continue;
                }
                ValueRule r;
                if (parse_rule(*rv, r)) c.rules.emplace(rn->value, std::move(r));
            }
        }
    }

    bool parse_rule(const YamlNode& n, ValueRule& r) {
        Fields f;
        const std::size_t before = diags_.size();
        if (!fields(n,
                    {"type", "min_length", "max_length", "min", "max", "max_items", "one_of",
                     "allow_control_characters"},
                    f)) {
            return false;
        }
        const YamlNode* t = need(n, f, "type");
        if (t == nullptr) return false;
        auto ts = str(*t);
        if (!ts) return false;
        if (*ts == "string") {
            r.type = ValueType::string;
        } else if (*ts == "integer") {
            r.type = ValueType::integer;
        } else if (*ts == "boolean") {
            r.type = ValueType::boolean;
        } else if (*ts == "string_list") {
            r.type = ValueType::string_list;
        } else {
            err(*t, "unknown type " + quote(*ts) +
                        " (expected string, integer, boolean or string_list)");
            return false;
        }
        const bool stringy = r.type == ValueType::string || r.type == ValueType::string_list;
        auto only = [&](const char* field, bool applies) -> const YamlNode* {
            const YamlNode* x = opt(f, field);
            if (x != nullptr && !applies) {
                err(*x, std::string(field) + " does not apply to type " + *ts);
                return nullptr;
            }
            return x;
        };
        constexpr std::int64_t kLen = 1 << 20;
        if (const YamlNode* x = only("min_length", stringy)) {
            if (auto v = integer(*x, 0, kLen)) r.min_length = static_cast<std::uint64_t>(*v);
        }
        if (const YamlNode* x = only("max_length", stringy)) {
            if (auto v = integer(*x, 1, kLen)) r.max_length = static_cast<std::uint64_t>(*v);
        }
        if (r.min_length && r.max_length && *r.min_length > *r.max_length) {
            err(*opt(f, "min_length"), "min_length is greater than max_length");
        }
        if (const YamlNode* x = only("min", r.type == ValueType::integer)) {
            if (auto v = integer(*x, -(1LL << 53), 1LL << 53)) r.min = *v;
        }
        if (const YamlNode* x = only("max", r.type == ValueType::integer)) {
            if (auto v = integer(*x, -(1LL << 53), 1LL << 53)) r.max = *v;
        }
        if (r.min && r.max && *r.min > *r.max) err(*opt(f, "min"), "min is greater than max");
        if (const YamlNode* x = only("max_items", r.type == ValueType::string_list)) {
            if (auto v = integer(*x, 1, 10000)) r.max_items = static_cast<std::uint64_t>(*v);
        }
        if (const YamlNode* x = only("allow_control_characters", stringy)) {
            if (auto b = boolean(*x)) r.allow_control_characters = *b;
        }
        if (const YamlNode* x = only("one_of", stringy)) {
            if (!x->is_seq() || x->items.empty()) {
                err(*x, "expected a non-empty list of strings");
            } else {
                for (const YamlNode* item : x->items) {
                    if (!item->is_scalar()) {
                        err(*item, "expected a string");
                    } else if (std::find(r.one_of.begin(), r.one_of.end(), item->value) !=
                               r.one_of.end()) {
                        err(*item, "duplicate value " + quote(item->value));
                    } else {
                        r.one_of.push_back(item->value);
                    }
                }
            }
        }
        return diags_.size() == before;
    }

    void parse_rotation(const YamlNode& n, KeyRules& k, bool validity_ok) {
        Fields f;
        if (!fields(n, {"period", "publish_ahead", "verify_grace", "requires_approval"}, f)) return;
        if (const YamlNode* x = opt(f, "period")) {
            if (auto d = duration(*x, Seconds(10))) k.rotation.period = *d;
        }
        if (const YamlNode* x = opt(f, "publish_ahead")) {
            if (auto d = duration(*x, Seconds(0))) {
                k.rotation.publish_ahead = *d;
                if (k.rotation.period && *d >= *k.rotation.period) {
                    err(*x, "publish_ahead must be shorter than the rotation period");
                }
            }
        }
        if (const YamlNode* x = opt(f, "verify_grace")) {
            if (auto d = duration(*x, Seconds(0))) {
                k.rotation.verify_grace = *d;
                // A retired version must stay in the JWKS until the last token it signed expires.
                if (validity_ok && *d < k.max_validity) {
                    err(*x, "verify_grace (" + format_duration(*d) +
                                ") is shorter than max_validity (" +
                                format_duration(k.max_validity) +
                                "): tokens would outlive their verification key");
                }
            }
        }
        if (const YamlNode* x = opt(f, "requires_approval")) {
            if (auto b = boolean(*x)) {
                k.rotation.requires_approval = *b;
                if (*b && !k.rotation.period) {
                    err(*x, "requires_approval applies to scheduled rotation; set a period");
                }
            }
        }
    }

    void parse_approvals(const YamlNode& n, KeyRules& k) {
        Fields f;
        if (!fields(n, {"rotate", "retire", "destroy"}, f)) return;
        for (Operation op : kAllOperations) {
            const YamlNode* x = opt(f, operation_name(op));
            if (x == nullptr) continue;
            Fields g;
            if (!fields(*x, {"quorum", "lifetime"}, g)) continue;
            ApprovalRule& r = k.approvals[static_cast<std::size_t>(op)];
            if (const YamlNode* q = opt(g, "quorum")) {
                if (auto v = integer(*q, 0, 64)) r.quorum = static_cast<std::uint32_t>(*v);
                quorum_nodes_[{k.name, op}] = q;
            }
            if (const YamlNode* l = opt(g, "lifetime")) {
                if (auto d = duration(*l, Seconds(5))) {
                    if (*d > Seconds(30LL * 86400)) {
                        err(*l, "approval lifetime is longer than 30d");
                    } else {
                        r.lifetime = *d;
                    }
                }
            }
        }
    }

    // ---- roles ---------------------------------------------------------------------------
    void parse_roles(const YamlNode& n, Engine& e) {
        if (!n.is_map()) {
            err(n, "expected a mapping of role names, found a " + std::string(n.kind_name()));
            return;
        }
        for (const auto& [rn, rv] : n.pairs) {
            if (!valid_name(rn->value)) {
                err(*rn, "invalid role name " + quote(rn->value));
                continue;
            }
            Role role;
            role.name = rn->value;
            unsigned duties = 0;
            if (!rv->is_seq() || rv->items.empty()) {
                err(*rv, "expected a non-empty list of grants ({actions: [...], keys: [...]})");
            } else {
                for (const YamlNode* g : rv->items) {
                    RoleGrant grant;
                    if (parse_grant(*g, e, grant)) {
                        for (Action a : grant.actions) duties |= duty_of(a);
                        role.grants.push_back(std::move(grant));
                    }
                }
            }
            if (std::string c = duty_conflict(duties); !c.empty()) {
                err(*rn, "role " + quote(role.name) + " combines " + c +
                             "; separation of duties forbids it");
            }
            role_nodes_[role.name] = rn;
            e.roles_.push_back(std::move(role));
        }
        std::sort(e.roles_.begin(), e.roles_.end(),
                  [](const Role& a, const Role& b) { return a.name < b.name; });
    }

    bool parse_grant(const YamlNode& n, const Engine& e, RoleGrant& g) {
        Fields f;
        const std::size_t before = diags_.size();
        if (!fields(n, {"actions", "keys"}, f)) return false;
        bool keyed = false;
        bool global = false;
        if (const YamlNode* a = need(n, f, "actions")) {
            if (!a->is_seq() || a->items.empty()) {
                err(*a, "expected a non-empty list of actions");
            } else {
                for (const YamlNode* item : a->items) {
                    auto act = item->is_scalar() ? action_from_name(item->value) : std::nullopt;
                    if (!act) {
                        if (item->is_scalar() &&
                            item->value == core::action::KeyLifecycleExecute::name) {
                            err(*item, "key.lifecycle.execute is reserved to the signer itself");
                        } else {
                            err(*item, "unknown action " +
                                           quote(item->is_scalar() ? item->value : "") +
                                           " (expected token.sign, keys.read, jwks.read, "
                                           "key.rotate.request, key.retire.request, "
                                           "key.destroy.request, request.approve, request.reject "
                                           "or audit.read)");
                        }
                        continue;
                    }
                    if (std::find(g.actions.begin(), g.actions.end(), *act) != g.actions.end()) {
                        err(*item, "duplicate action " + quote(item->value));
                        continue;
                    }
                    (action_is_key_scoped(*act) ? keyed : global) = true;
                    g.actions.push_back(*act);
                }
            }
        }
        const YamlNode* k = opt(f, "keys");
        if (keyed && k == nullptr) {
            err_at(n, child_path(n, "keys"),
                   "missing required key \"keys\": key-scoped actions need key names or patterns");
        }
        if (global && k != nullptr) {
            err(*k, "jwks.read and audit.read are not scoped to keys; grant them without \"keys\"");
        }
        if (k != nullptr) {
            for (const auto& entry : list(*k, valid_pattern, "key name or pattern")) {
                const std::string& pattern = entry.first;
                const YamlNode* node = entry.second;
                const bool any =
                    std::any_of(e.keys_.begin(), e.keys_.end(),
                                [&](const KeyRules& kr) { return glob_match(pattern, kr.name); });
                if (!any) {
                    err(*node, pattern.find_first_of("*?") == std::string::npos
                                   ? "unknown key " + quote(pattern)
                                   : "pattern " + quote(pattern) + " matches no declared key");
                    continue;
                }
                g.keys.push_back(pattern);
            }
        }
        return diags_.size() == before;
    }

    void parse_exclusive(const YamlNode& n, const Engine& e) {
        if (!n.is_seq()) {
            err(n, "expected a list of role pairs");
            return;
        }
        for (const YamlNode* pair : n.items) {
            if (!pair->is_seq() || pair->items.size() != 2 || !pair->items[0]->is_scalar() ||
                !pair->items[1]->is_scalar()) {
                err(*pair, "expected a pair of role names, e.g. [signer, officer]");
                continue;
            }
            bool ok = true;
            for (const YamlNode* r : pair->items) {
                if (!find_role(e, r->value)) {
                    err(*r, "unknown role " + quote(r->value));
                    ok = false;
                }
            }
            if (ok && pair->items[0]->value == pair->items[1]->value) {
                err(*pair, "a role cannot be exclusive with itself");
                ok = false;
            }
            if (ok) exclusive_.emplace_back(pair->items[0]->value, pair->items[1]->value);
        }
    }

    static const Role* find_role(const Engine& e, std::string_view name) {
        for (const Role& r : e.roles_) {
            if (r.name == name) return &r;
        }
        return nullptr;
    }

    // ---- principals ----------------------------------------------------------------------
    void parse_principals(const YamlNode& n, Engine& e) {
        if (!n.is_seq()) {
            err(n, "expected a list of principals, found a " + std::string(n.kind_name()));
            return;
        }
        if (n.items.empty()) err(n, "declare at least one principal");
        std::map<std::string, const YamlNode*> names;
        std::map<std::string, std::string> identities;  // identity key -> principal
        for (const YamlNode* pn : n.items) {
            Principal p;
            const std::size_t before = diags_.size();
            Fields f;
            if (!fields(*pn, {"name", "identity", "roles", "signing_rate_limit"}, f)) continue;
            if (const YamlNode* x = need(*pn, f, "name")) {
                if (auto s = str(*x)) {
                    if (!valid_name(*s)) {
                        err(*x, "invalid principal name " + quote(*s) +
                                    " (1-64 of a-z 0-9 . _ -, starting with a letter or digit)");
                    } else if (*s == kSystemPrincipal) {
                        err(*x, "\"system\" is reserved for the signer itself");
                    } else if (names.count(*s)) {
                        err(*x, "duplicate principal name " + quote(*s));
                    } else {
                        names[*s] = x;
                        p.name = *s;
                    }
                }
            }
            if (const YamlNode* x = need(*pn, f, "identity")) {
                if (auto id = parse_identity(*x, p.identity)) {
                    if (auto it = identities.find(*id); it != identities.end()) {
                        err(*x, "same identity as principal " + quote(it->second));
                    } else {
                        identities[*id] = p.name;
                    }
                }
            }
            unsigned duties = 0;
            bool roles_ok = false;
            if (const YamlNode* x = need(*pn, f, "roles")) {
                roles_ok = true;
                if (x->is_seq() && x->items.empty())
                    err(*x, "give the principal at least one role");
                for (const auto& [role, node] : list(*x, valid_name, "role name")) {
                    const Role* r = find_role(e, role);
                    if (r == nullptr) {
                        err(*node, "unknown role " + quote(role));
                        roles_ok = false;
                        continue;
                    }
                    for (const RoleGrant& g : r->grants) {
                        for (Action a : g.actions) duties |= duty_of(a);
                    }
                    p.roles.push_back(role);
                }
                check_exclusive(*x, p.roles);
                if (std::string c = duty_conflict(duties); !c.empty()) {
                    err(*x,
                        "these roles together grant " + c + "; separation of duties forbids it");
                }
            }
            compile(e, p);
            if (const YamlNode* x = opt(f, "signing_rate_limit")) {
                parse_rate_limit(*x, p);
                if (roles_ok && !(duties & kDutySign)) {
                    err(*x, "signing_rate_limit is set on a principal that cannot sign");
                }
            }
            if (diags_.size() == before) e.principals_.push_back(std::move(p));
        }
        std::sort(e.principals_.begin(), e.principals_.end(),
                  [](const Principal& a, const Principal& b) { return a.name < b.name; });
    }

    // Returns a canonical identity string (for duplicate detection) when valid.
    std::optional<std::string> parse_identity(const YamlNode& n, IdentitySpec& id) {
        Fields f;
        if (!fields(n, {"spki_sha256", "san_uri", "san_dns", "subject_cn", "issuer"}, f)) {
            return std::nullopt;
        }
        const YamlNode* spki = opt(f, "spki_sha256");
        const YamlNode* uri = opt(f, "san_uri");
        const YamlNode* dns = opt(f, "san_dns");
        const YamlNode* cn = opt(f, "subject_cn");
        const YamlNode* issuer = opt(f, "issuer");
        const int forms = (spki != nullptr) + (uri != nullptr) + (dns != nullptr) +
                          (cn != nullptr || issuer != nullptr);
        if (forms != 1) {
            err(n, forms == 0
                       ? "identity needs spki_sha256, san_uri, san_dns, or subject_cn with issuer"
                       : "identity must use exactly one form: spki_sha256, san_uri, "
                         "san_dns, or subject_cn with issuer");
            return std::nullopt;
        }
        if (spki != nullptr) {
            auto s = str(*spki);
            if (!s) return std::nullopt;
            auto bytes = core::hex_decode(lower(*s));
            if (!bytes.ok() || bytes->size() != 32) {
                err(*spki,
                    "expected 64 hex digits (SHA-256 of the certificate's SubjectPublicKeyInfo)");
                return std::nullopt;
            }
            id.kind = IdentitySpec::Kind::spki_sha256;
            std::copy(bytes->begin(), bytes->end(), id.spki_sha256.begin());
            return "spki:" + core::hex_encode(id.spki_sha256);
        }
        if (uri != nullptr) {
            auto s = str(*uri);
            if (!s) return std::nullopt;
            if (s->find(':') == std::string::npos) {
                err(*uri, "expected an absolute URI (scheme:...)");
                return std::nullopt;
            }
            id.kind = IdentitySpec::Kind::san_uri;
            id.value = *s;
            return "uri:" + *s;
        }
        if (dns != nullptr) {
            auto s = str(*dns);
            if (!s) return std::nullopt;
            id.kind = IdentitySpec::Kind::san_dns;
            id.value = lower(*s);
            return "dns:" + id.value;
        }
        if (cn == nullptr || issuer == nullptr) {
            err(n, "subject_cn and issuer must be given together");
            return std::nullopt;
        }
        auto c = str(*cn);
        auto i = str(*issuer);
        if (!c || !i) return std::nullopt;
        if (i->find('=') == std::string::npos) {
            err(*issuer, "expected an RFC 2253 distinguished name such as \"CN=Licentra Dev CA\"");
            return std::nullopt;
        }
        id.kind = IdentitySpec::Kind::subject_cn_issuer;
        id.value = *c;
        id.issuer = *i;
        return "cn:" + *c + "\n" + *i;
    }

    void check_exclusive(const YamlNode& at, const std::vector<std::string>& roles) {
        auto has = [&roles](std::string_view r) {
            return std::find(roles.begin(), roles.end(), r) != roles.end();
        };
        std::set<std::pair<std::string, std::string>> reported;
        auto check = [&](std::string_view a, std::string_view b) {
            if (!has(a) || !has(b)) return;
            std::string lo(a);
            std::string hi(b);
            if (hi < lo) std::swap(lo, hi);
            if (!reported.emplace(std::move(lo), std::move(hi)).second) return;
            err(at,
                "roles " + quote(a) + " and " + quote(b) + " are exclusive (separation of duties)");
        };
        for (const auto& [a, b] : kDefaultExclusiveRoles) check(a, b);
        for (const auto& [a, b] : exclusive_) check(a, b);
    }

    void parse_rate_limit(const YamlNode& n, Principal& p) {
        Fields f;
        if (!fields(n, {"per_second", "burst"}, f)) return;
        RateLimit r;
        const YamlNode* ps = need(n, f, "per_second");
        const YamlNode* b = need(n, f, "burst");
        auto v = ps ? rate(*ps) : std::nullopt;
        auto bv = b ? integer(*b, 1, 1000000) : std::nullopt;
        if (v && bv) {
            r.per_second = *v;
            r.burst = static_cast<std::uint32_t>(*bv);
            p.signing_rate_limit = r;
        }
    }

    void compile(const Engine& e, Principal& p) {
        p.key_actions.assign(e.keys_.size(), 0);
        for (const std::string& rn : p.roles) {
            const Role* r = find_role(e, rn);
            if (r == nullptr) continue;
            for (const RoleGrant& g : r->grants) {
                for (Action a : g.actions) {
                    const auto b = static_cast<std::uint16_t>(1u << static_cast<unsigned>(a));
                    if (!action_is_key_scoped(a)) {
                        p.global_actions = static_cast<std::uint16_t>(p.global_actions | b);
                        continue;
                    }
                    for (std::size_t i = 0; i < e.keys_.size(); ++i) {
                        for (const std::string& pat : g.keys) {
                            if (glob_match(pat, e.keys_[i].name)) {
                                p.key_actions[i] = static_cast<std::uint16_t>(p.key_actions[i] | b);
                            }
                        }
                    }
                }
            }
        }
    }

    // ---- quorums -------------------------------------------------------------------------
    void check_quorums(const Engine& e) {
        if (!diags_.empty()) return;  // permissions are incomplete; avoid cascades
        for (std::size_t i = 0; i < e.keys_.size(); ++i) {
            const KeyRules& k = e.keys_[i];
            std::vector<std::string> approvers;
            for (const Principal& p : e.principals_) {
                if (p.key_actions[i] & (1u << static_cast<unsigned>(Action::request_approve))) {
                    approvers.push_back(p.name);
                }
            }
            for (Operation op : kAllOperations) {
                const std::uint32_t q = k.approval(op).quorum;
                auto qn = quorum_nodes_.find({k.name, op});
                const YamlNode* at = qn != quorum_nodes_.end() ? qn->second : key_nodes_[k.name];
                const std::string where =
                    qn != quorum_nodes_.end()
                        ? at->path()
                        : child_path(*at,
                                     "approvals." + std::string(operation_name(op)) + ".quorum");
                std::vector<std::string> requesters;
                const auto rb = 1u << static_cast<unsigned>(request_action(op));
                for (const Principal& p : e.principals_) {
                    if (p.key_actions[i] & rb) requesters.push_back(p.name);
                }
                if (op == Operation::rotate && k.rotation.requires_approval) {
                    requesters.emplace_back(kSystemPrincipal);
                }
                const bool declared = qn != quorum_nodes_.end();
                if (requesters.empty() && !declared) continue;  // nobody can ask; quorum is moot
                if (q > approvers.size()) {
                    err_at(*at, where,
                           "quorum " + std::to_string(q) + " for " +
                               std::string(operation_name(op)) + " on key " + quote(k.name) +
                               " is larger than the " + std::to_string(approvers.size()) +
                               " principal(s) that may approve it");
                    continue;
                }
                for (const std::string& r : requesters) {
                    const bool self =
                        std::find(approvers.begin(), approvers.end(), r) != approvers.end();
                    const std::size_t others = approvers.size() - (self ? 1 : 0);
                    if (q > others) {
                        err_at(*at, where,
                               "quorum " + std::to_string(q) + " for " +
                                   std::string(operation_name(op)) + " on key " + quote(k.name) +
                                   " cannot be reached when " + quote(r) +
                                   " requests it: the requester cannot approve and only " +
                                   std::to_string(others) + " other principal(s) may");
                        break;
                    }
                }
            }
        }
    }

    std::string file_;
    std::vector<Diagnostic>& diags_;
    std::vector<std::string> global_forbidden_;
    std::vector<std::pair<std::string, std::string>> exclusive_;
    std::map<std::string, const YamlNode*> key_nodes_;
    std::map<std::string, const YamlNode*> role_nodes_;
    std::map<std::string, const YamlNode*> claim_nodes_;
    std::map<std::pair<std::string, Operation>, const YamlNode*> quorum_nodes_;
};

}  // namespace detail

PolicyLoad load_policy_text(std::string_view text, std::string_view file_label) {
    PolicyLoad out;
    const std::string file(file_label);
    try {
        yaml::Document doc = yaml::parse(text, yaml::Options{"policy", yaml::kMaxFileBytes});
        for (const yaml::Issue& i : doc.issues) {
            out.diagnostics.push_back(Diagnostic{file, i.line, i.column, i.path, i.message});
        }
        if (doc.fatal || doc.root == nullptr) return out;
        const crypto::Sha256Digest sha = crypto::sha256(core::as_bytes(text));
        std::vector<Diagnostic> diags;
        detail::EngineBuilder builder(file, diags);
        auto engine = builder.build(*doc.root, sha);
        out.diagnostics.insert(out.diagnostics.end(), diags.begin(), diags.end());
        std::stable_sort(out.diagnostics.begin(), out.diagnostics.end(),
                         [](const Diagnostic& a, const Diagnostic& b) {
                             return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                         });
        if (out.diagnostics.empty()) out.engine = std::move(engine);
    } catch (const std::exception& e) {
        out.engine.reset();
        out.diagnostics.push_back(
            Diagnostic{file, 1, 1, "", std::string("internal error: ") + e.what()});
    }
    return out;
}

PolicyLoad load_policy_file(const std::filesystem::path& path) {
    PolicyLoad out;
    const std::string label = path.string();
    auto fail = [&](std::string message) {
        out.diagnostics.push_back(Diagnostic{label, 1, 1, "", std::move(message)});
        return std::move(out);
    };
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return fail("cannot read the policy file: " + ec.message());
    if (size > yaml::kMaxFileBytes) {
        return fail("file of " + std::to_string(size) + " bytes exceeds the limit of " +
                    std::to_string(yaml::kMaxFileBytes) + " bytes");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open the policy file");
    std::string text;
    text.resize(yaml::kMaxFileBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) return fail("cannot read the policy file");
    return load_policy_text(text, label);
}

}  // namespace licentra::policy
