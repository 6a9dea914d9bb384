#include "keys/key_manager.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace licentra::keys {

using core::ErrorKind;
using core::make_error;

namespace {

constexpr std::string_view kStateSuffix = "/state";

std::int64_t now_ms() { return core::unix_millis(core::Clock::now()); }

}  // namespace

std::string_view state_name(KeyState s) noexcept {
    switch (s) {
        case KeyState::pre_active:
            return "pre-active";
        case KeyState::active:
            return "active";
        case KeyState::retired:
            return "retired";
        case KeyState::destroyed:
            return "destroyed";
        default:
            return "";
    }
}

std::optional<KeyState> state_from_name(std::string_view s) noexcept {
    if (s == "pre-active") return KeyState::pre_active;
    if (s == "active") return KeyState::active;
    if (s == "retired") return KeyState::retired;
    if (s == "destroyed") return KeyState::destroyed;
    return std::nullopt;
}

std::string state_label(std::string_view key_label) {
    return std::string(key_label) + std::string(kStateSuffix);
}

std::string VersionRecord::to_json() const {
    nlohmann::json j = nlohmann::json::object();
    j["version"] = version;
    j["algorithm"] = std::string(crypto::jws_name(algorithm));
    j["state"] = std::string(state_name(state));
    j["created_ms"] = created_ms;
    if (activate_at_ms) j["activate_at_ms"] = *activate_at_ms;
    if (activated_ms) j["activated_ms"] = *activated_ms;
    if (retired_ms) j["retired_ms"] = *retired_ms;
    if (verify_until_ms) j["verify_until_ms"] = *verify_until_ms;
    if (destroyed_ms) j["destroyed_ms"] = *destroyed_ms;
    return j.dump();  // nlohmann::json objects are std::map: keys sorted
}

core::Result<VersionRecord> VersionRecord::from_json(core::ByteView data) {
    auto bad = [](std::string why) {
        return make_error(ErrorKind::integrity, "keys.bad_state_record",
                          "key state record: " + why);
    };
    nlohmann::json j = nlohmann::json::parse(data.begin(), data.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
    VersionRecord r;
    auto get_int = [&](const char* name, bool required, std::optional<std::int64_t>& out) -> bool {
        auto it = j.find(name);
        if (it == j.end()) return !required;
        if (!it->is_number_integer()) return false;
        out = it->get<std::int64_t>();
        return true;
    };
    std::optional<std::int64_t> version, created;
    if (!get_int("version", true, version) || *version < 1 || *version > 1000000) {
        return bad("bad version");
    }
    r.version = static_cast<unsigned>(*version);
    if (!get_int("created_ms", true, created)) return bad("bad created_ms");
    r.created_ms = *created;
    auto alg = j.find("algorithm");
    if (alg == j.end() || !alg->is_string()) return bad("bad algorithm");
    auto a = crypto::algorithm_from_jws_name(alg->get<std::string>());
    if (!a) return bad("unknown algorithm");
    r.algorithm = *a;
    auto st = j.find("state");
    if (st == j.end() || !st->is_string()) return bad("bad state");
    auto s = state_from_name(st->get<std::string>());
    if (!s) return bad("unknown state");
    r.state = *s;
    if (!get_int("activate_at_ms", false, r.activate_at_ms) ||
        !get_int("activated_ms", false, r.activated_ms) ||
        !get_int("retired_ms", false, r.retired_ms) ||
        !get_int("verify_until_ms", false, r.verify_until_ms) ||
        !get_int("destroyed_ms", false, r.destroyed_ms)) {
        return bad("bad timestamp");
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
        static const std::vector<std::string> known = {
            "version",      "algorithm",  "state",           "created_ms",  "activate_at_ms",
            "activated_ms", "retired_ms", "verify_until_ms", "destroyed_ms"};
        if (std::find(known.begin(), known.end(), it.key()) == known.end()) {
            return bad("unknown field " + it.key());
        }
    }
    return r;
}

bool KeyVersion::published(core::TimePoint now) const noexcept {
    switch (record.state) {
        case KeyState::pre_active:
        case KeyState::active:
            return public_key != nullptr;
        case KeyState::retired:
            return public_key != nullptr &&
                   (!record.verify_until_ms || *record.verify_until_ms > core::unix_millis(now));
        case KeyState::destroyed:
        default:
            return false;
    }
}

KeyManager::KeyManager(std::shared_ptr<hsm::Token> token, KidFunction kid)
    : token_(std::move(token)), kid_(std::move(kid)), snapshot_(std::make_shared<Snapshot>()) {}

core::Status KeyManager::refresh() {
    std::lock_guard lock(mutex_);
    return refresh_locked();
}

core::Status KeyManager::refresh_locked() {
    auto records = token_->list_data("licentra/");
    if (!records) return records.error();
    auto next = std::make_shared<Snapshot>();
    for (auto& [label, value] : *records) {
        if (label.size() <= kStateSuffix.size() ||
            label.compare(label.size() - kStateSuffix.size(), kStateSuffix.size(), kStateSuffix) !=
                0) {
            continue;
        }
        std::string key_label = label.substr(0, label.size() - kStateSuffix.size());
        auto parsed = hsm::parse_key_label(key_label);
        if (!parsed) continue;  // not a key version record
        auto rec = VersionRecord::from_json(value);
        if (!rec) {
            return make_error(ErrorKind::integrity, rec.error().code,
                              rec.error().message + " (" + label + ")");
        }
        if (rec->version != parsed->second) {
            return make_error(ErrorKind::integrity, "keys.bad_state_record",
                              "state record version does not match its label " + label);
        }
        KeyVersion v;
        v.name = parsed->first;
        v.label = key_label;
        v.record = *rec;
        if (v.record.state != KeyState::destroyed) {
            auto pk = public_keys_.find(key_label);
            if (pk == public_keys_.end()) {
                auto exported = token_->public_key(key_label);
                if (!exported) return exported.error();
                if (exported->algorithm() != v.record.algorithm) {
                    return make_error(ErrorKind::integrity, "keys.algorithm_mismatch",
                                      "key " + key_label + " does not match its state record");
                }
                pk = public_keys_
                         .emplace(key_label,
                                  std::make_shared<const crypto::PublicKey>(std::move(*exported)))
                         .first;
            }
            v.public_key = pk->second;
            v.kid = kid_(*v.public_key);
        }
        next->keys[v.name].push_back(std::move(v));
    }
    for (auto& [name, versions] : next->keys) {
        std::sort(versions.begin(), versions.end(), [](const KeyVersion& a, const KeyVersion& b) {
            return a.record.version < b.record.version;
        });
        const KeyVersion* active = nullptr;
        for (const auto& v : versions) {
            if (v.record.state != KeyState::active) continue;
            // Exactly one active version per key. Should two ever be marked (a change
            // interrupted between its two writes), the newer one signs.
            if (active == nullptr || v.record.version > active->record.version) active = &v;
        }
        if (active == nullptr) continue;
        auto ref = loaded_refs_.find(active->label);
        if (ref == loaded_refs_.end()) {
            auto loaded = token_->load_key(active->label);  // attribute check + self-test
            if (!loaded) return loaded.error();
            ref = loaded_refs_.emplace(active->label, std::move(*loaded)).first;
        }
        next->active_refs.emplace(name, ref->second);
        next->active.emplace(name, *active);
    }
    snapshot_.store(std::move(next), std::memory_order_release);
    return {};
}

core::Result<std::optional<KeyVersion>> KeyManager::bootstrap(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(); !st) return st.error();
    auto snap = snapshot();
    const std::string& name = grant.key();
    if (auto it = snap->keys.find(name); it != snap->keys.end() && !it->second.empty()) {
        if (snap->active.count(name) == 0) {
            return make_error(ErrorKind::conflict, "keys.no_active_version",
                              "key " + name + " has versions but none is active");
        }
        return std::optional<KeyVersion>{};
    }
    auto generated = token_->generate_key(name, 1, alg);
    if (!generated) return generated.error();
    VersionRecord rec;
    rec.version = 1;
    rec.algorithm = alg;
    rec.state = KeyState::active;
    rec.created_ms = now_ms();
    rec.activated_ms = rec.created_ms;
    if (auto st = token_->write_data(state_label(generated->label), core::as_bytes(rec.to_json()));
        !st) {
        return st.error();
    }
    loaded_refs_.emplace(generated->label, *generated);
    public_keys_.emplace(generated->label, generated->public_key);
    if (auto st = refresh_locked(); !st) return st.error();
    return std::optional<KeyVersion>{snapshot()->active.at(name)};
}

core::Result<Signed> KeyManager::sign(
    const core::Grant<core::action::TokenSign>& grant,
    const std::function<core::Bytes(const KeyVersion&)>& make_input,
    const std::function<void(const Signed&)>& on_signed) {
    std::shared_lock gate(sign_gate_);
    auto snap = snapshot();
    auto it = snap->active.find(grant.key());
    if (it == snap->active.end()) {
        return make_error(ErrorKind::conflict, "keys.no_active_version",
                          "key " + grant.key() + " has no active version");
    }
    const KeyVersion& v = it->second;
    Signed out;
    out.signing_input = make_input(v);
    auto sig = token_->sign(snap->active_refs.at(grant.key()), out.signing_input);
    if (!sig) return sig.error();
    out.signature = std::move(*sig);
    out.version = v.record.version;
    out.kid = v.kid;
    out.algorithm = v.record.algorithm;
    if (on_signed) on_signed(out);
    return out;
}

core::Status KeyManager::write_record(const std::string& key_label, const VersionRecord& r) {
    return token_->write_data(state_label(key_label), core::as_bytes(r.to_json()));
}

core::Result<KeyVersion> KeyManager::find_version(std::string_view name, unsigned version) const {
    auto snap = snapshot();
    auto it = snap->keys.find(name);
    if (it != snap->keys.end()) {
        for (const auto& v : it->second) {
            if (v.record.version == version) return v;
        }
    }
    return make_error(ErrorKind::not_found, "keys.no_such_version",
                      "key " + std::string(name) + " has no version " + std::to_string(version));
}

core::Status KeyManager::activate_locked(const KeyVersion& v, const Timing& timing,
                                         core::TimePoint now, const TransitionHook& hook) {
    // Load (attribute check, self-test) before the version may sign.
    if (loaded_refs_.count(v.label) == 0) {
        auto loaded = token_->load_key(v.label);
        if (!loaded) return loaded.error();
        loaded_refs_.emplace(v.label, std::move(*loaded));
    }
    const std::int64_t t = core::unix_millis(now);
    std::unique_lock gate(sign_gate_);
    auto snap = snapshot();
    std::optional<KeyVersion> previous;
    if (auto a = snap->active.find(v.name); a != snap->active.end()) previous = a->second;
    // New version first: should the second write fail, two versions are marked active and the
    // newer one signs (refresh picks the highest); the older one is retired on the next try.
    VersionRecord next = v.record;
    next.state = KeyState::active;
    next.activated_ms = t;
    next.activate_at_ms.reset();
    if (auto st = write_record(v.label, next); !st) return st;
    if (previous && previous->record.version != v.record.version) {
        VersionRecord old = previous->record;
        old.state = KeyState::retired;
        old.retired_ms = t;
        old.verify_until_ms =
            t + 1000 * (timing.max_validity.count() + timing.verify_grace.count());
        if (auto st = write_record(previous->label, old); !st) return st;
    }
    if (auto st = refresh_locked(); !st) return st;
    if (hook) {
        auto fresh = snapshot();
        if (auto a = fresh->active.find(v.name); a != fresh->active.end()) {
            hook("key.activate", a->second);
        }
        if (previous && previous->record.version != v.record.version) {
            auto r = find_version(previous->name, previous->record.version);
            if (r) hook("key.retire", *r);
        }
    }
    return {};
}

core::Result<KeyVersion> KeyManager::rotate(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg,
    const Timing& timing, core::TimePoint now, const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(); !st) return st.error();
    const std::string& name = grant.key();
    auto snap = snapshot();
    auto it = snap->keys.find(name);
    if (it == snap->keys.end() || it->second.empty()) {
        return make_error(ErrorKind::not_found, "keys.no_versions",
                          "key " + name + " has no version to rotate");
    }
    unsigned newest = 0;
    for (const auto& v : it->second) {
        if (v.record.state == KeyState::pre_active) {
            return make_error(ErrorKind::conflict, "keys.rotation_pending",
                              "key " + name + " already has pre-active version " +
                                  std::to_string(v.record.version));
        }
        newest = std::max(newest, v.record.version);
    }
    // Labels of destroyed versions stay taken (their public key object remains on record).
    auto listed = token_->list_keys("licentra/" + name + "/");
    if (!listed) return listed.error();
    for (const auto& k : *listed) {
        if (k.name == name) newest = std::max(newest, k.version);
    }
    const unsigned version = newest + 1;
    auto generated = token_->generate_key(name, version, alg);
    if (!generated) return generated.error();
    loaded_refs_.emplace(generated->label, *generated);
    public_keys_.emplace(generated->label, generated->public_key);
    VersionRecord rec;
    rec.version = version;
    rec.algorithm = alg;
    rec.state = KeyState::pre_active;
    rec.created_ms = core::unix_millis(now);
    rec.activate_at_ms = rec.created_ms + 1000 * timing.publish_ahead.count();
    if (auto st = write_record(generated->label, rec); !st) return st.error();
    if (auto st = refresh_locked(); !st) return st.error();
    auto created = find_version(name, version);
    if (!created) return created.error();
    if (hook) hook("key.rotate", *created);
    if (timing.publish_ahead.count() <= 0) {
        if (auto st = activate_locked(*created, timing, now, hook); !st) return st.error();
        return find_version(name, version);
    }
    return created;
}

core::Result<KeyVersion> KeyManager::retire(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version,
    const Timing& timing, core::TimePoint now, const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(); !st) return st.error();
    auto v = find_version(grant.key(), version);
    if (!v) return v.error();
    if (v->record.state != KeyState::pre_active && v->record.state != KeyState::active) {
        return make_error(ErrorKind::conflict, "keys.bad_state",
                          "version " + std::to_string(version) + " of " + grant.key() + " is " +
                              std::string(state_name(v->record.state)));
    }
    const std::int64_t t = core::unix_millis(now);
    VersionRecord rec = v->record;
    rec.state = KeyState::retired;
    rec.retired_ms = t;
    rec.activate_at_ms.reset();
    rec.verify_until_ms = t + 1000 * (timing.max_validity.count() + timing.verify_grace.count());
    {
        std::unique_lock gate(sign_gate_);
        if (auto st = write_record(v->label, rec); !st) return st.error();
        if (auto st = refresh_locked(); !st) return st.error();
        auto done = find_version(grant.key(), version);
        if (done && hook) hook("key.retire", *done);
        return done;
    }
}

core::Result<KeyVersion> KeyManager::destroy(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version, bool force,
    core::TimePoint now, const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(); !st) return st.error();
    auto v = find_version(grant.key(), version);
    if (!v) return v.error();
    const std::int64_t t = core::unix_millis(now);
    if (v->record.state == KeyState::destroyed) {
        return make_error(ErrorKind::conflict, "keys.bad_state",
                          "version " + std::to_string(version) + " is already destroyed");
    }
    if (!force) {
        if (v->record.state == KeyState::active) {
            return make_error(ErrorKind::conflict, "keys.destroy_active",
                              "version " + std::to_string(version) +
                                  " is active; rotate first or request with force");
        }
        if (v->record.state == KeyState::retired && v->record.verify_until_ms &&
            *v->record.verify_until_ms > t) {
            return make_error(
                ErrorKind::conflict, "keys.destroy_still_verifying",
                "tokens of version " + std::to_string(version) + " can still be valid until " +
                    core::format_rfc3339_ms(core::from_unix_millis(*v->record.verify_until_ms)) +
                    "; request with force to destroy anyway");
        }
    }
    VersionRecord rec = v->record;
    rec.state = KeyState::destroyed;
    rec.destroyed_ms = t;
    std::unique_lock gate(sign_gate_);
    // Record first: a crash after it leaves a destroyed record whose private object the next
    // destroy attempt (or an operator) removes; never a usable key marked usable.
    if (auto st = write_record(v->label, rec); !st) return st.error();
    if (auto st = token_->destroy_private_key(v->label); !st) return st.error();
    loaded_refs_.erase(v->label);
    public_keys_.erase(v->label);
    if (auto st = refresh_locked(); !st) return st.error();
    auto done = find_version(grant.key(), version);
    if (done && hook) hook("key.destroy", *done);
    return done;
}

core::Status KeyManager::activate_due(
    core::TimePoint now, const std::function<std::optional<Timing>(std::string_view)>& timing_for,
    const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    auto snap = snapshot();
    const std::int64_t t = core::unix_millis(now);
    for (const auto& [name, versions] : snap->keys) {
        for (const auto& v : versions) {
            if (v.record.state != KeyState::pre_active || !v.record.activate_at_ms ||
                *v.record.activate_at_ms > t) {
                continue;
            }
            auto timing = timing_for(name);
            if (!timing) continue;
            if (auto st = activate_locked(v, *timing, now, hook); !st) return st;
        }
    }
    return {};
}

core::Result<KeyVersion> KeyManager::active(std::string_view name) const {
    auto snap = snapshot();
    auto it = snap->active.find(name);
    if (it == snap->active.end()) {
        return make_error(ErrorKind::not_found, "keys.no_active_version",
                          "key " + std::string(name) + " has no active version");
    }
    return it->second;
}

std::vector<KeyVersion> KeyManager::versions(std::string_view name) const {
    auto snap = snapshot();
    auto it = snap->keys.find(name);
    return it == snap->keys.end() ? std::vector<KeyVersion>{} : it->second;
}

std::vector<KeyVersion> KeyManager::all_versions() const {
    std::vector<KeyVersion> out;
    for (const auto& [name, versions] : snapshot()->keys) {
        out.insert(out.end(), versions.begin(), versions.end());
    }
    return out;
}

std::vector<KeyVersion> KeyManager::published(core::TimePoint now) const {
    std::vector<KeyVersion> out;
    for (const auto& [name, versions] : snapshot()->keys) {
        for (const auto& v : versions) {
            if (v.published(now)) out.push_back(v);
        }
    }
    return out;
}

}  // namespace licentra::keys
