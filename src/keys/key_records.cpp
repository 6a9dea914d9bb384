#include "keys/key_records.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/json_record.hpp"
#include "core/time.hpp"

namespace licentra::keys {

using core::ErrorKind;
using core::make_error;

namespace {

constexpr std::string_view kRoot = "licentra/";

constexpr std::size_t kMaxRecordString = 256;

core::RecordKind record_kind(std::string kind) {
    return {"key record: " + std::move(kind), ErrorKind::integrity, "keys.bad_record"};
}

struct Parsed {
    std::string name;
    unsigned version = 0;
    std::string key_label;
    std::string rest;  // after "<key label>/", e.g. "created/<id>"
};

// "licentra/<name>/v<N>[/<rest>]"
std::optional<Parsed> parse_record_label(const std::string& label) {
    if (label.compare(0, kRoot.size(), kRoot) != 0) return std::nullopt;
    const std::size_t name_end = label.find('/', kRoot.size());
    if (name_end == std::string::npos) return std::nullopt;
    const std::size_t version_end = label.find('/', name_end + 1);
    std::string key_label = label.substr(0, version_end);
    auto parsed = hsm::parse_key_label(key_label);
    if (!parsed) return std::nullopt;
    Parsed p{parsed->first, parsed->second, std::move(key_label), {}};
    if (version_end != std::string::npos) p.rest = label.substr(version_end + 1);
    return p;
}

struct Accumulated {
    std::string name;
    std::string label;
    std::map<std::string, CreatedRecord> created;  // by CKA_ID hex
    std::optional<VersionRecord> legacy;
    std::optional<EventRecord> retired;
    std::optional<EventRecord> destroyed;
};

void keep_earliest(std::optional<EventRecord>& slot, EventRecord e) {
    if (!slot || e.at_ms < slot->at_ms) slot = std::move(e);
}

std::string remove_hint(const std::string& label, const std::string& id_hex) {
    return "remove it with: pkcs11-tool --login --delete-object --type privkey --label '" + label +
           "' --id " + id_hex + " (and --type pubkey)";
}

}  // namespace

std::string version_prefix(std::string_view key_label) { return std::string(key_label) + "/"; }
std::string claim_prefix(std::string_view key_label) { return std::string(key_label) + "/claim/"; }
std::string created_label(std::string_view key_label, std::string_view id_hex) {
    return std::string(key_label) + "/created/" + std::string(id_hex);
}
std::string retired_prefix(std::string_view key_label) {
    return std::string(key_label) + "/retired/";
}
std::string destroyed_prefix(std::string_view key_label) {
    return std::string(key_label) + "/destroyed/";
}

std::string CreatedRecord::to_json() const {
    nlohmann::json j = {{"algorithm", std::string(crypto::jws_name(algorithm))},
                        {"created_ms", created_ms},
                        {"activate_at_ms", activate_at_ms},
                        {"supersede_verify_ms", supersede_verify_ms},
                        {"by", by},
                        {"request", request}};
    return j.dump();
}

core::Result<CreatedRecord> CreatedRecord::from_json(core::ByteView json) {
    auto r = core::JsonRecord::parse(core::as_chars(json), record_kind("created record"));
    if (!r) return std::move(r).error();
    auto alg = r->one_of("algorithm", crypto::algorithm_from_jws_name);
    if (!alg) return std::move(alg).error();
    auto created = r->time("created_ms");
    if (!created) return std::move(created).error();
    auto activate = r->time("activate_at_ms");
    if (!activate) return std::move(activate).error();
    // A duration the fold adds to a successor's activation time: bounded like every duration.
    auto supersede = r->integer("supersede_verify_ms");
    if (!supersede) return std::move(supersede).error();
    if (*supersede < 0 || *supersede > core::kMaxDurationMillis) {
        return r->error("supersede_verify_ms", "must be from 0 to 36500 days");
    }
    auto by = r->string("by", kMaxRecordString);
    if (!by) return std::move(by).error();
    auto request = r->string("request", kMaxRecordString);
    if (!request) return std::move(request).error();
    if (auto done = r->finish(); !done) return std::move(done).error();
    return CreatedRecord{*alg,       *created,       *activate,
                         *supersede, std::move(*by), std::move(*request)};
}

std::string EventRecord::to_json() const {
    nlohmann::json j = {{"at_ms", at_ms}, {"by", by}};
    if (verify_until_ms) j["verify_until_ms"] = *verify_until_ms;
    return j.dump();
}

core::Result<EventRecord> EventRecord::from_json(core::ByteView json, bool retired) {
    auto r = core::JsonRecord::parse(core::as_chars(json), record_kind("event record"));
    if (!r) return std::move(r).error();
    auto at = r->time("at_ms");
    if (!at) return std::move(at).error();
    auto by = r->string("by", kMaxRecordString);
    if (!by) return std::move(by).error();
    auto until = r->optional_time("verify_until_ms");
    if (!until) return std::move(until).error();
    // A retirement says until when the key stays published; a destruction ends publication.
    if (retired != until->has_value()) {
        return r->error("verify_until_ms", retired ? "is missing" : "belongs to a retirement only");
    }
    if (auto done = r->finish(); !done) return std::move(done).error();
    return EventRecord{*at, *until, std::move(*by)};
}

Fold fold_key_records(const std::vector<std::pair<std::string, core::Bytes>>& data,
                      const std::vector<hsm::KeyInfo>& pairs, std::int64_t now_ms) {
    Fold out;
    std::map<std::pair<std::string, unsigned>, Accumulated> acc;
    auto note_version = [&](const std::string& name, unsigned version) {
        auto& h = out.highest[name];
        h = std::max(h, version);
    };
    for (const auto& [label, value] : data) {
        auto p = parse_record_label(label);
        if (!p) continue;  // requests, audit anchors, other objects
        if (p->rest.empty()) continue;
        note_version(p->name, p->version);
        Accumulated& a = acc[{p->name, p->version}];
        a.name = p->name;
        a.label = p->key_label;
        const core::ByteView bytes(value);
        if (p->rest == "state") {
            auto rec = VersionRecord::from_json(bytes);
            if (!rec || rec->version != p->version) {
                out.warnings.push_back(label + ": unreadable, ignored");
                continue;
            }
            a.legacy = *rec;
        } else if (p->rest.rfind("created/", 0) == 0) {
            auto rec = CreatedRecord::from_json(bytes);
            if (!rec) {
                out.warnings.push_back(label + ": " + rec.error().message + ", ignored");
                continue;
            }
            a.created.emplace(p->rest.substr(8), std::move(*rec));
        } else if (p->rest.rfind("retired/", 0) == 0 || p->rest.rfind("destroyed/", 0) == 0) {
            const bool retired = p->rest[0] == 'r';
            auto rec = EventRecord::from_json(bytes, retired);
            if (!rec) {
                out.warnings.push_back(label + ": " + rec.error().message + ", ignored");
                continue;
            }
            keep_earliest(retired ? a.retired : a.destroyed, std::move(*rec));
        }
    }
    std::map<std::string, std::vector<const hsm::KeyInfo*>> pairs_by_label;
    for (const auto& k : pairs) {
        note_version(k.name, k.version);
        if (k.has_public) pairs_by_label[k.label].push_back(&k);
    }

    // Each version's base: which key pair, algorithm, times.
    struct Base {
        FoldedVersion v;
        std::optional<std::int64_t> activate_at;
        std::int64_t supersede_verify_ms = 0;
        std::optional<EventRecord> retired;
        std::optional<EventRecord> destroyed;
    };
    std::map<std::string, std::vector<Base>> bases;
    for (auto& [slot, a] : acc) {
        const auto& candidates = pairs_by_label[a.label];
        auto has_pair = [&](const std::string& id) {
            return std::any_of(candidates.begin(), candidates.end(),
                               [&](const hsm::KeyInfo* k) { return k->id_hex == id; });
        };
        Base b;
        b.v.name = a.name;
        b.v.label = a.label;
        b.v.record.version = slot.second;
        b.retired = a.retired;
        b.destroyed = a.destroyed;
        if (!a.created.empty()) {
            // Lowest CKA_ID among created records whose key pair exists (map order: by id).
            const CreatedRecord* won = nullptr;
            for (const auto& [id, c] : a.created) {
                if (won == nullptr && has_pair(id)) {
                    won = &c;
                    b.v.id_hex = id;
                }
            }
            if (won == nullptr) {
                out.warnings.push_back("version " + std::to_string(slot.second) + " of " + a.name +
                                       " has created records but no key pair; it is ignored");
                continue;
            }
            b.v.record.algorithm = won->algorithm;
            b.v.record.created_ms = won->created_ms;
            b.activate_at = won->activate_at_ms;
            b.supersede_verify_ms = won->supersede_verify_ms;
        } else if (a.legacy) {
            const VersionRecord& l = *a.legacy;
            b.v.record.algorithm = l.algorithm;
            b.v.record.created_ms = l.created_ms;
            if (l.activated_ms) {
                b.activate_at = *l.activated_ms;
            } else if (l.state == KeyState::pre_active) {
                b.activate_at = l.activate_at_ms.value_or(l.created_ms);
            }
            if (l.state == KeyState::active && !b.activate_at) b.activate_at = l.created_ms;
            if (l.retired_ms) {
                keep_earliest(b.retired, EventRecord{*l.retired_ms, l.verify_until_ms, "legacy"});
            }
            if (l.state == KeyState::destroyed) {
                keep_earliest(b.destroyed,
                              EventRecord{l.destroyed_ms.value_or(0), std::nullopt, "legacy"});
            }
            if (candidates.empty()) {
                out.warnings.push_back("version " + std::to_string(slot.second) + " of " + a.name +
                                       " has a state record but no key pair; it is ignored");
                continue;
            }
            // An older release could leave two pairs for one label: the lowest CKA_ID among
            // those that still have a private key (any, once destroyed) is the version.
            const hsm::KeyInfo* won = nullptr;
            for (const hsm::KeyInfo* k : candidates) {
                const bool usable = k->has_private || b.destroyed;
                if (usable && (won == nullptr || k->id_hex < won->id_hex)) won = k;
            }
            if (won == nullptr) won = candidates.front();
            b.v.id_hex = won->id_hex;
        } else {
            continue;  // only claims: a creation that did not finish (or is under way)
        }
        for (const hsm::KeyInfo* k : candidates) {
            if (k->id_hex != b.v.id_hex) {
                out.warnings.push_back(a.label + " has a second key pair (CKA_ID " + k->id_hex +
                                       ") that is not the version; " +
                                       remove_hint(a.label, k->id_hex));
            }
        }
        bases[a.name].push_back(std::move(b));
    }

    for (auto& [name, list] : bases) {
        std::sort(list.begin(), list.end(), [](const Base& x, const Base& y) {
            return x.v.record.version < y.v.record.version;
        });
        // Which versions became active, and when.
        std::vector<std::optional<std::int64_t>> became(list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            const Base& b = list[i];
            if (!b.activate_at || *b.activate_at > now_ms) continue;
            const std::int64_t t = *b.activate_at;
            if ((b.retired && b.retired->at_ms <= t) || (b.destroyed && b.destroyed->at_ms <= t)) {
                continue;
            }
            became[i] = t;
        }
        auto& versions = out.keys[name];
        for (std::size_t i = 0; i < list.size(); ++i) {
            Base& b = list[i];
            VersionRecord& r = b.v.record;
            // Superseded by the first later version that became active after this one did.
            std::optional<std::int64_t> superseded;
            std::int64_t successor_verify = 0;
            for (std::size_t k = i + 1; k < list.size(); ++k) {
                if (became[k] && (!superseded || *became[k] < *superseded)) {
                    superseded = became[k];
                    successor_verify = list[k].supersede_verify_ms;
                }
            }
            if (became[i]) r.activated_ms = became[i];
            if (superseded && (!became[i] || *superseded < *became[i])) {
                // A later version started signing first: this one never does.
                r.activated_ms.reset();
            }
            std::optional<EventRecord> retired = b.retired;
            if (superseded && (!retired || *superseded < retired->at_ms)) {
                retired = EventRecord{*superseded, *superseded + successor_verify, "superseded"};
            }
            if (b.destroyed) {
                r.state = KeyState::destroyed;
                r.destroyed_ms = b.destroyed->at_ms;
            } else if (retired && retired->at_ms <= now_ms) {
                r.state = KeyState::retired;
            } else if (r.activated_ms) {
                r.state = KeyState::active;
            } else {
                r.state = KeyState::pre_active;
                r.activate_at_ms = b.activate_at;
            }
            if (retired && retired->at_ms <= now_ms) {
                r.retired_ms = retired->at_ms;
                r.verify_until_ms = retired->verify_until_ms;
            }
            versions.push_back(std::move(b.v));
        }
    }
    return out;
}

// A version that became active but whose key pair does not read back as a proper signing key
// (attributes, type, matching CKA_ID, not found). Another replica generated it moments ago:
// SoftHSM's per-process view can show an object another process was still writing with default
// attributes. The refresh keeps the version active without a signing handle (503, not ready,
// logged, the module's view re-read); a key that stays wrong stays refused and named.
core::Error unreadable_version(const std::string& label, const core::Error& why) {
    if (why.kind == ErrorKind::hsm_unavailable || why.kind == ErrorKind::internal) return why;
    return make_error(
        ErrorKind::hsm_unavailable, "keys.key_unreadable",
        "active version " + label + " cannot be loaded yet: " + why.code + ": " + why.message);
}

}  // namespace licentra::keys
