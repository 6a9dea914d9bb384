// Stage 1: YAML tree -> PolicyDocument (document.hpp).
#include <algorithm>
#include <initializer_list>
#include <map>
#include <string>

#include "core/bytes.hpp"
#include "policy/document.hpp"
#include "policy/duration.hpp"
#include "policy/text.hpp"
#include "yaml/document.hpp"

namespace licentra::policy {

namespace {

using YamlNode = yaml::Node;
using Fields = std::map<std::string, const YamlNode*, std::less<>>;

bool valid_pattern(std::string_view n) {
    if (n.empty() || n.size() > 64) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || c == '*' || c == '?';
    });
}

Location location(const YamlNode& n) { return Location{n.line, n.column, n.path()}; }

Name name_of(const YamlNode& n) { return Name{n.value, location(n)}; }

std::string child_path(const YamlNode& map, std::string_view name) {
    std::string p = map.path();
    return p.empty() ? std::string(name) : p + "." + std::string(name);
}

const YamlNode* opt(const Fields& f, std::string_view name) {
    auto it = f.find(name);
    return it == f.end() ? nullptr : it->second;
}

// Typed access to YAML values; every problem becomes a Diagnostic in the current sink.
class Reader {
  public:
    explicit Reader(std::string file) : file_(std::move(file)) {}

    [[nodiscard]] const std::string& file() const noexcept { return file_; }
    [[nodiscard]] std::vector<Diagnostic> take() { return std::move(diags_); }
    [[nodiscard]] bool clean() const noexcept { return diags_.empty(); }

    // Sends diagnostics to `into` until the returned guard is destroyed.
    class Redirect {
      public:
        Redirect(Reader& r, std::vector<Diagnostic>& into) : r_(r), saved_(r.sink_) {
            r.sink_ = &into;
        }
        ~Redirect() { r_.sink_ = saved_; }
        Redirect(const Redirect&) = delete;
        Redirect& operator=(const Redirect&) = delete;

      private:
        Reader& r_;
        std::vector<Diagnostic>* saved_;
    };

    [[nodiscard]] std::size_t count() const noexcept { return sink_->size(); }

    void err(const YamlNode& n, std::string message) { err_at(n, n.path(), std::move(message)); }
    void err_at(const YamlNode& n, std::string path, std::string message) {
        sink_->push_back(Diagnostic{file_, n.line, n.column, std::move(path), std::move(message)});
    }

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
        const YamlNode* n = opt(f, name);
        if (n == nullptr) {
            err_at(map, child_path(map, name), "missing required key " + quote(name));
        }
        return n;
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
    std::optional<std::int64_t> integer(const YamlNode& n, std::int64_t lo, std::int64_t hi);
    std::optional<bool> boolean(const YamlNode& n) {
        if (n.is_scalar() && n.plain && (n.value == "true" || n.value == "false")) {
            return n.value == "true";
        }
        err(n, "expected true or false");
        return std::nullopt;
    }
    std::optional<Seconds> duration(const YamlNode& n, Seconds min);
    std::optional<double> rate(const YamlNode& n);
    std::vector<Name> list(const YamlNode& n, bool (*valid)(std::string_view),
                           std::string_view what);
    std::vector<Name> claim_list(const YamlNode& n) {
        return list(n, valid_claim_name, "claim name");
    }

  private:
    std::string file_;
    std::vector<Diagnostic> diags_;
    std::vector<Diagnostic>* sink_ = &diags_;
};

std::optional<std::int64_t> Reader::integer(const YamlNode& n, std::int64_t lo, std::int64_t hi) {
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

std::optional<Seconds> Reader::duration(const YamlNode& n, Seconds min) {
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

std::optional<double> Reader::rate(const YamlNode& n) {
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
std::vector<Name> Reader::list(const YamlNode& n, bool (*valid)(std::string_view),
                               std::string_view what) {
    std::vector<Name> out;
    if (!n.is_seq()) {
        err(n, "expected a list, found a " + std::string(n.kind_name()));
        return out;
    }
    for (const YamlNode* item : n.items) {
        if (!item->is_scalar()) {
            err(*item,
                "expected a " + std::string(what) + ", found a " + std::string(item->kind_name()));
            continue;
        }
        if (!valid(item->value)) {
            err(*item, "invalid " + std::string(what) + " " + quote(item->value));
            continue;
        }
        if (std::any_of(out.begin(), out.end(),
                        [&](const Name& e) { return e.value == item->value; })) {
            err(*item, "duplicate " + std::string(what) + " " + quote(item->value));
            continue;
        }
        out.push_back(name_of(*item));
    }
    return out;
}

std::optional<ValueType> value_type_from_name(std::string_view s) {
    if (s == "string") return ValueType::string;
    if (s == "integer") return ValueType::integer;
    if (s == "boolean") return ValueType::boolean;
    if (s == "string_list") return ValueType::string_list;
    return std::nullopt;
}

// Reads the sections in the order validate() checks them: version, forbidden claims,
// pseudonyms, keys, roles, exclusive roles, principals.
class DocumentParser {
  public:
    explicit DocumentParser(std::string file) : r_(std::move(file)) {}

    PolicyDocument parse(const YamlNode& root);
    [[nodiscard]] std::vector<Diagnostic> take() { return r_.take(); }

  private:
    std::optional<PseudonymRules> parse_pseudonyms(const YamlNode& n);
    void parse_keys(const YamlNode& n, std::vector<KeyDoc>& keys);
    void parse_key(const YamlNode& n, KeyDoc& k);
    void parse_claims(const YamlNode& n, ClaimsDoc& c);
    void parse_rules(const YamlNode& n, std::vector<ValueRuleDoc>& rules);
    void parse_rule(const YamlNode& n, ValueRule& r);
    void parse_rule_fields(const Fields& f, const std::string& type, ValueRule& r);
    void parse_one_of(const YamlNode& n, ValueRule& r);
    void parse_rotation(const YamlNode& n, RotationDoc& rot);
    void parse_approvals(const YamlNode& n, std::array<ApprovalDoc, 3>& approvals);
    void parse_roles(const YamlNode& n, std::vector<RoleDoc>& roles);
    GrantDoc parse_grant(const YamlNode& n);
    void parse_actions(const YamlNode& n, GrantDoc& g, bool& keyed, bool& global);
    void parse_exclusive(const YamlNode& n, std::vector<ExclusivePair>& pairs);
    void parse_principals(const YamlNode& n, std::vector<PrincipalDoc>& out);
    PrincipalDoc parse_principal(const YamlNode& n, const Fields& f);
    std::optional<Name> parse_principal_name(const YamlNode& n);
    std::optional<IdentityDoc> parse_identity(const YamlNode& n);
    std::optional<std::string> parse_identity_form(const Fields& f, IdentitySpec& id);
    std::optional<RateLimit> parse_rate_limit(const YamlNode& n);

    Reader r_;
};

PolicyDocument DocumentParser::parse(const YamlNode& root) {
    PolicyDocument doc;
    doc.file = r_.file();
    Fields top;
    if (!r_.fields(root,
                   {"version", "forbidden_claims", "exclusive_roles", "roles", "principals", "keys",
                    "pseudonyms"},
                   top)) {
        doc.complete = false;
        return doc;
    }
    if (const YamlNode* v = r_.need(root, top, "version")) {
        if (auto n = r_.integer(*v, 0, 1000)) {
            if (*n != 1)
                r_.err(*v, "unsupported policy version " + std::to_string(*n) + "; expected 1");
            doc.version = static_cast<int>(*n);
        }
    }
    if (const YamlNode* x = opt(top, "forbidden_claims")) doc.forbidden_claims = r_.claim_list(*x);
    if (const YamlNode* x = opt(top, "pseudonyms")) doc.pseudonyms = parse_pseudonyms(*x);
    if (const YamlNode* x = r_.need(root, top, "keys")) parse_keys(*x, doc.keys);
    if (const YamlNode* x = r_.need(root, top, "roles")) parse_roles(*x, doc.roles);
    if (const YamlNode* x = opt(top, "exclusive_roles")) parse_exclusive(*x, doc.exclusive_roles);
    if (const YamlNode* x = r_.need(root, top, "principals")) parse_principals(*x, doc.principals);
    doc.complete = r_.clean();
    return doc;
}

// pseudonyms: {epoch: 90d, retention: 730d}
std::optional<PseudonymRules> DocumentParser::parse_pseudonyms(const YamlNode& n) {
    Fields f;
    if (!r_.fields(n, {"epoch", "retention"}, f)) return std::nullopt;
    const YamlNode* e = r_.need(n, f, "epoch");
    const auto epoch = e != nullptr ? r_.duration(*e, Seconds(1)) : std::nullopt;
    const YamlNode* r = r_.need(n, f, "retention");
    const auto retention = r != nullptr ? r_.duration(*r, Seconds(0)) : std::nullopt;
    if (!epoch || !retention) return std::nullopt;
    return PseudonymRules{*epoch, *retention};
}

// ---- keys --------------------------------------------------------------------------------
void DocumentParser::parse_keys(const YamlNode& n, std::vector<KeyDoc>& keys) {
    if (!n.is_map()) {
        r_.err(n, "expected a mapping of key names, found a " + std::string(n.kind_name()));
        return;
    }
    if (n.pairs.empty()) r_.err(n, "declare at least one key");
    for (const auto& [kn, kv] : n.pairs) {
        if (!valid_name(kn->value)) {
            r_.err(*kn, "invalid key name " + quote(kn->value) +
                            " (1-64 of a-z 0-9 . _ -, starting with a letter or digit)");
            continue;
        }
        KeyDoc k;
        k.name = name_of(*kn);
        k.at = location(*kv);
        parse_key(*kv, k);
        keys.push_back(std::move(k));
    }
}

void DocumentParser::parse_key(const YamlNode& n, KeyDoc& k) {
    Fields f;
    if (!r_.fields(n,
                   {"algorithm", "issuer", "max_validity", "claims", "rotation", "approvals",
                    "allow_forced_destroy"},
                   f)) {
        return;
    }
    if (const YamlNode* a = opt(f, "algorithm")) {
        if (auto s = r_.str(*a)) {
            auto alg = crypto::algorithm_from_jws_name(*s);
            if (!alg) {
                r_.err(*a, "unknown algorithm " + quote(*s) +
                               " (expected EdDSA, ES256, ES384 or PS256)");
            } else {
                k.algorithm = *alg;
            }
        }
    }
    if (const YamlNode* i = r_.need(n, f, "issuer")) {
        if (auto s = r_.str(*i)) {
            if (s->size() > 256) r_.err(*i, "issuer is longer than 256 characters");
            k.issuer = *s;
        }
    }
    if (const YamlNode* m = r_.need(n, f, "max_validity")) {
        k.max_validity = r_.duration(*m, Seconds(60));
    }
    if (const YamlNode* c = opt(f, "claims")) parse_claims(*c, k.claims);
    if (const YamlNode* r = opt(f, "rotation")) parse_rotation(*r, k.rotation);
    if (const YamlNode* a = opt(f, "approvals")) parse_approvals(*a, k.approvals);
    if (const YamlNode* x = opt(f, "allow_forced_destroy")) {
        if (auto b = r_.boolean(*x)) k.allow_forced_destroy = *b;
    }
}

void DocumentParser::parse_claims(const YamlNode& n, ClaimsDoc& c) {
    Fields f;
    if (!r_.fields(n, {"required", "allowed", "forbidden", "pseudonymize", "rules"}, f)) return;
    if (const YamlNode* x = opt(f, "forbidden")) c.forbidden = r_.claim_list(*x);
    if (const YamlNode* x = opt(f, "required")) c.required = r_.claim_list(*x);
    if (const YamlNode* x = opt(f, "allowed")) c.allowed = r_.claim_list(*x);
    if (const YamlNode* x = opt(f, "pseudonymize")) c.pseudonymize = r_.claim_list(*x);
    if (const YamlNode* x = opt(f, "rules")) parse_rules(*x, c.rules);
}

void DocumentParser::parse_rules(const YamlNode& n, std::vector<ValueRuleDoc>& rules) {
    if (!n.is_map()) {
        r_.err(n, "expected a mapping of claim names to rules");
        return;
    }
    for (const auto& [rn, rv] : n.pairs) {
        if (!valid_claim_name(rn->value)) {
            r_.err(*rn, "invalid claim name " + quote(rn->value));
            continue;
        }
        ValueRuleDoc d;
        d.claim = name_of(*rn);
        {
            const Reader::Redirect to_rule(r_, d.problems);
            parse_rule(*rv, d.rule);
        }
        rules.push_back(std::move(d));
    }
}

void DocumentParser::parse_rule(const YamlNode& n, ValueRule& r) {
    Fields f;
    if (!r_.fields(n,
                   {"type", "min_length", "max_length", "min", "max", "max_items", "one_of",
                    "allow_control_characters"},
                   f)) {
        return;
    }
    const YamlNode* t = r_.need(n, f, "type");
    if (t == nullptr) return;
    auto ts = r_.str(*t);
    if (!ts) return;
    const auto type = value_type_from_name(*ts);
    if (!type) {
        r_.err(*t, "unknown type " + quote(*ts) +
                       " (expected string, integer, boolean or string_list)");
        return;
    }
    r.type = *type;
    parse_rule_fields(f, *ts, r);
}

void DocumentParser::parse_rule_fields(const Fields& f, const std::string& type, ValueRule& r) {
    const bool stringy = r.type == ValueType::string || r.type == ValueType::string_list;
    auto only = [&](const char* field, bool applies) -> const YamlNode* {
        const YamlNode* x = opt(f, field);
        if (x != nullptr && !applies) {
            r_.err(*x, std::string(field) + " does not apply to type " + type);
            return nullptr;
        }
        return x;
    };
    constexpr std::int64_t kLen = 1 << 20;
    if (const YamlNode* x = only("min_length", stringy)) {
        if (auto v = r_.integer(*x, 0, kLen)) r.min_length = static_cast<std::uint64_t>(*v);
    }
    if (const YamlNode* x = only("max_length", stringy)) {
        if (auto v = r_.integer(*x, 1, kLen)) r.max_length = static_cast<std::uint64_t>(*v);
    }
    if (r.min_length && r.max_length && *r.min_length > *r.max_length) {
        r_.err(*opt(f, "min_length"), "min_length is greater than max_length");
    }
    if (const YamlNode* x = only("min", r.type == ValueType::integer)) {
        if (auto v = r_.integer(*x, -(1LL << 53), 1LL << 53)) r.min = *v;
    }
    if (const YamlNode* x = only("max", r.type == ValueType::integer)) {
        if (auto v = r_.integer(*x, -(1LL << 53), 1LL << 53)) r.max = *v;
    }
    if (r.min && r.max && *r.min > *r.max) r_.err(*opt(f, "min"), "min is greater than max");
    if (const YamlNode* x = only("max_items", r.type == ValueType::string_list)) {
        if (auto v = r_.integer(*x, 1, 10000)) r.max_items = static_cast<std::uint64_t>(*v);
    }
    if (const YamlNode* x = only("allow_control_characters", stringy)) {
        if (auto b = r_.boolean(*x)) r.allow_control_characters = *b;
    }
    if (const YamlNode* x = only("one_of", stringy)) parse_one_of(*x, r);
}

void DocumentParser::parse_one_of(const YamlNode& n, ValueRule& r) {
    if (!n.is_seq() || n.items.empty()) {
        r_.err(n, "expected a non-empty list of strings");
        return;
    }
    for (const YamlNode* item : n.items) {
        if (!item->is_scalar()) {
            r_.err(*item, "expected a string");
        } else if (std::find(r.one_of.begin(), r.one_of.end(), item->value) != r.one_of.end()) {
            r_.err(*item, "duplicate value " + quote(item->value));
        } else {
            r.one_of.push_back(item->value);
        }
    }
}

void DocumentParser::parse_rotation(const YamlNode& n, RotationDoc& rot) {
    Fields f;
    if (!r_.fields(n, {"period", "publish_ahead", "verify_grace", "requires_approval"}, f)) return;
    if (const YamlNode* x = opt(f, "period")) rot.period = r_.duration(*x, Seconds(10));
    if (const YamlNode* x = opt(f, "publish_ahead")) {
        if (auto d = r_.duration(*x, Seconds(0))) rot.publish_ahead = {*d, location(*x)};
    }
    if (const YamlNode* x = opt(f, "verify_grace")) {
        if (auto d = r_.duration(*x, Seconds(0))) rot.verify_grace = {*d, location(*x)};
    }
    if (const YamlNode* x = opt(f, "requires_approval")) {
        if (auto b = r_.boolean(*x)) rot.requires_approval = {*b, location(*x)};
    }
}

void DocumentParser::parse_approvals(const YamlNode& n, std::array<ApprovalDoc, 3>& approvals) {
    Fields f;
    if (!r_.fields(n, {"rotate", "retire", "destroy"}, f)) return;
    for (Operation op : kAllOperations) {
        const YamlNode* x = opt(f, operation_name(op));
        if (x == nullptr) continue;
        Fields g;
        if (!r_.fields(*x, {"quorum", "lifetime"}, g)) continue;
        ApprovalDoc& a = approvals[static_cast<std::size_t>(op)];
        if (const YamlNode* q = opt(g, "quorum")) {
            if (auto v = r_.integer(*q, 0, 64)) a.rule.quorum = static_cast<std::uint32_t>(*v);
            a.quorum_at = location(*q);
        }
        if (const YamlNode* l = opt(g, "lifetime")) {
            if (auto d = r_.duration(*l, Seconds(5))) {
                if (*d > Seconds(30LL * 86400)) {
                    r_.err(*l, "approval lifetime is longer than 30d");
                } else {
                    a.rule.lifetime = *d;
                }
            }
        }
    }
}

// ---- roles -------------------------------------------------------------------------------
void DocumentParser::parse_roles(const YamlNode& n, std::vector<RoleDoc>& roles) {
    if (!n.is_map()) {
        r_.err(n, "expected a mapping of role names, found a " + std::string(n.kind_name()));
        return;
    }
    for (const auto& [rn, rv] : n.pairs) {
        if (!valid_name(rn->value)) {
            r_.err(*rn, "invalid role name " + quote(rn->value));
            continue;
        }
        RoleDoc role;
        role.name = name_of(*rn);
        if (!rv->is_seq() || rv->items.empty()) {
            r_.err(*rv, "expected a non-empty list of grants ({actions: [...], keys: [...]})");
        } else {
            for (const YamlNode* g : rv->items) role.grants.push_back(parse_grant(*g));
        }
        roles.push_back(std::move(role));
    }
}

GrantDoc DocumentParser::parse_grant(const YamlNode& n) {
    GrantDoc g;
    const std::size_t before = r_.count();
    Fields f;
    if (!r_.fields(n, {"actions", "keys"}, f)) {
        g.well_formed = false;
        return g;
    }
    bool keyed = false;
    bool global = false;
    if (const YamlNode* a = r_.need(n, f, "actions")) parse_actions(*a, g, keyed, global);
    const YamlNode* k = opt(f, "keys");
    if (keyed && k == nullptr) {
        r_.err_at(n, child_path(n, "keys"),
                  "missing required key \"keys\": key-scoped actions need key names or patterns");
    }
    if (global && k != nullptr) {
        r_.err(*k, "jwks.read and audit.read are not scoped to keys; grant them without \"keys\"");
    }
    if (k != nullptr) g.keys = r_.list(*k, valid_pattern, "key name or pattern");
    g.well_formed = r_.count() == before;
    return g;
}

void DocumentParser::parse_actions(const YamlNode& n, GrantDoc& g, bool& keyed, bool& global) {
    if (!n.is_seq() || n.items.empty()) {
        r_.err(n, "expected a non-empty list of actions");
        return;
    }
    for (const YamlNode* item : n.items) {
        auto act = item->is_scalar() ? action_from_name(item->value) : std::nullopt;
        if (!act) {
            if (item->is_scalar() && item->value == core::action::KeyLifecycleExecute::name) {
                r_.err(*item, "key.lifecycle.execute is reserved to the signer itself");
            } else {
                r_.err(*item, "unknown action " + quote(item->is_scalar() ? item->value : "") +
                                  " (expected token.sign, keys.read, jwks.read, "
                                  "key.rotate.request, key.retire.request, "
                                  "key.destroy.request, request.approve, request.reject "
                                  "or audit.read)");
            }
            continue;
        }
        if (std::find(g.actions.begin(), g.actions.end(), *act) != g.actions.end()) {
            r_.err(*item, "duplicate action " + quote(item->value));
            continue;
        }
        (action_is_key_scoped(*act) ? keyed : global) = true;
        g.actions.push_back(*act);
    }
}

void DocumentParser::parse_exclusive(const YamlNode& n, std::vector<ExclusivePair>& pairs) {
    if (!n.is_seq()) {
        r_.err(n, "expected a list of role pairs");
        return;
    }
    for (const YamlNode* pair : n.items) {
        if (!pair->is_seq() || pair->items.size() != 2 || !pair->items[0]->is_scalar() ||
            !pair->items[1]->is_scalar()) {
            r_.err(*pair, "expected a pair of role names, e.g. [signer, officer]");
            continue;
        }
        pairs.push_back(
            ExclusivePair{location(*pair), {name_of(*pair->items[0]), name_of(*pair->items[1])}});
    }
}

// ---- principals --------------------------------------------------------------------------
void DocumentParser::parse_principals(const YamlNode& n, std::vector<PrincipalDoc>& out) {
    if (!n.is_seq()) {
        r_.err(n, "expected a list of principals, found a " + std::string(n.kind_name()));
        return;
    }
    if (n.items.empty()) r_.err(n, "declare at least one principal");
    for (const YamlNode* pn : n.items) {
        Fields f;
        if (!r_.fields(*pn, {"name", "identity", "roles", "signing_rate_limit"}, f)) continue;
        out.push_back(parse_principal(*pn, f));
    }
}

PrincipalDoc DocumentParser::parse_principal(const YamlNode& n, const Fields& f) {
    PrincipalDoc p;
    if (const YamlNode* x = r_.need(n, f, "name")) p.name = parse_principal_name(*x);
    if (const YamlNode* x = r_.need(n, f, "identity")) p.identity = parse_identity(*x);
    if (const YamlNode* x = r_.need(n, f, "roles")) {
        p.roles_at = location(*x);
        if (x->is_seq() && x->items.empty()) r_.err(*x, "give the principal at least one role");
        p.roles = r_.list(*x, valid_name, "role name");
    }
    if (const YamlNode* x = opt(f, "signing_rate_limit")) {
        p.rate_limit_at = location(*x);
        p.signing_rate_limit = parse_rate_limit(*x);
    }
    return p;
}

std::optional<Name> DocumentParser::parse_principal_name(const YamlNode& n) {
    auto s = r_.str(n);
    if (!s) return std::nullopt;
    if (!valid_name(*s)) {
        r_.err(n, "invalid principal name " + quote(*s) +
                      " (1-64 of a-z 0-9 . _ -, starting with a letter or digit)");
        return std::nullopt;
    }
    if (*s == kSystemPrincipal) {
        r_.err(n, "\"system\" is reserved for the signer itself");
        return std::nullopt;
    }
    return name_of(n);
}

std::optional<IdentityDoc> DocumentParser::parse_identity(const YamlNode& n) {
    Fields f;
    if (!r_.fields(n, {"spki_sha256", "san_uri", "san_dns", "subject_cn", "issuer"}, f)) {
        return std::nullopt;
    }
    const int forms = (opt(f, "spki_sha256") != nullptr) + (opt(f, "san_uri") != nullptr) +
                      (opt(f, "san_dns") != nullptr) +
                      (opt(f, "subject_cn") != nullptr || opt(f, "issuer") != nullptr);
    if (forms != 1) {
        r_.err(n, forms == 0
                      ? "identity needs spki_sha256, san_uri, san_dns, or subject_cn with issuer"
                      : "identity must use exactly one form: spki_sha256, san_uri, "
                        "san_dns, or subject_cn with issuer");
        return std::nullopt;
    }
    IdentityDoc id;
    id.at = location(n);
    if (f.count("subject_cn") != f.count("issuer")) {
        r_.err(n, "subject_cn and issuer must be given together");
        return std::nullopt;
    }
    auto canonical = parse_identity_form(f, id.spec);
    if (!canonical) return std::nullopt;
    id.canonical = std::move(*canonical);
    return id;
}

// Returns a canonical identity string (for duplicate detection) when valid.
std::optional<std::string> DocumentParser::parse_identity_form(const Fields& f, IdentitySpec& id) {
    if (const YamlNode* spki = opt(f, "spki_sha256")) {
        auto s = r_.str(*spki);
        if (!s) return std::nullopt;
        auto bytes = core::hex_decode(lower(*s));
        if (!bytes.ok() || bytes->size() != 32) {
            r_.err(*spki,
                   "expected 64 hex digits (SHA-256 of the certificate's SubjectPublicKeyInfo)");
            return std::nullopt;
        }
        id.kind = IdentitySpec::Kind::spki_sha256;
        std::copy(bytes->begin(), bytes->end(), id.spki_sha256.begin());
        return "spki:" + core::hex_encode(id.spki_sha256);
    }
    if (const YamlNode* uri = opt(f, "san_uri")) {
        auto s = r_.str(*uri);
        if (!s) return std::nullopt;
        if (s->find(':') == std::string::npos) {
            r_.err(*uri, "expected an absolute URI (scheme:...)");
            return std::nullopt;
        }
        id.kind = IdentitySpec::Kind::san_uri;
        id.value = *s;
        return "uri:" + *s;
    }
    if (const YamlNode* dns = opt(f, "san_dns")) {
        auto s = r_.str(*dns);
        if (!s) return std::nullopt;
        id.kind = IdentitySpec::Kind::san_dns;
        id.value = lower(*s);
        return "dns:" + id.value;
    }
    const YamlNode* issuer = opt(f, "issuer");
    auto c = r_.str(*opt(f, "subject_cn"));
    auto i = r_.str(*issuer);
    if (!c || !i) return std::nullopt;
    if (i->find('=') == std::string::npos) {
        r_.err(*issuer, "expected an RFC 2253 distinguished name such as \"CN=Licentra Dev CA\"");
        return std::nullopt;
    }
    id.kind = IdentitySpec::Kind::subject_cn_issuer;
    id.value = *c;
    id.issuer = *i;
    return "cn:" + *c + "\n" + *i;
}

std::optional<RateLimit> DocumentParser::parse_rate_limit(const YamlNode& n) {
    Fields f;
    if (!r_.fields(n, {"per_second", "burst"}, f)) return std::nullopt;
    const YamlNode* ps = r_.need(n, f, "per_second");
    const YamlNode* b = r_.need(n, f, "burst");
    auto v = ps ? r_.rate(*ps) : std::nullopt;
    auto bv = b ? r_.integer(*b, 1, 1000000) : std::nullopt;
    if (!v || !bv) return std::nullopt;
    return RateLimit{*v, static_cast<std::uint32_t>(*bv)};
}

}  // namespace

ParsedPolicy parse_policy(std::string_view text, std::string_view file_label) {
    ParsedPolicy out;
    const std::string file(file_label);
    yaml::Document doc = yaml::parse(text, yaml::Options{"policy", yaml::kMaxFileBytes});
    for (const yaml::Issue& i : doc.issues) {
        out.diagnostics.push_back(Diagnostic{file, i.line, i.column, i.path, i.message});
    }
    if (doc.fatal || doc.root == nullptr) return out;
    DocumentParser parser(file);
    out.document = parser.parse(*doc.root);
    std::vector<Diagnostic> found = parser.take();
    out.diagnostics.insert(out.diagnostics.end(), std::make_move_iterator(found.begin()),
                           std::make_move_iterator(found.end()));
    return out;
}

}  // namespace licentra::policy
