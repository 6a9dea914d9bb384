#include "keys/key_manager.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "core/json_record.hpp"
#include "crypto/random.hpp"
#include "keys/capabilities.hpp"
#include "keys/key_records.hpp"

namespace licentra::keys {

using core::ErrorKind;
using core::make_error;

namespace {

constexpr std::string_view kStateSuffix = "/state";

std::string cache_key(const std::string& label, const std::string& id_hex) {
    return label + "#" + id_hex;
}

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
    auto r = core::JsonRecord::parse(
        core::as_chars(data), {"key state record", ErrorKind::integrity, "keys.bad_state_record"});
    if (!r) return std::move(r).error();
    VersionRecord v;
    auto version = r->integer("version");
    if (!version) return std::move(version).error();
    if (*version < 1 || *version > 1000000) return r->error("version", "must be 1 to 1000000");
    v.version = static_cast<unsigned>(*version);
    auto created = r->time("created_ms");
    if (!created) return std::move(created).error();
    v.created_ms = *created;
    auto alg = r->one_of("algorithm", crypto::algorithm_from_jws_name);
    if (!alg) return std::move(alg).error();
    v.algorithm = *alg;
    auto state = r->one_of("state", state_from_name);
    if (!state) return std::move(state).error();
    v.state = *state;
    // Times are range-checked before the fold or a caller does arithmetic on them.
    for (auto [name, slot] :
         {std::pair{"activate_at_ms", &v.activate_at_ms},
          std::pair{"activated_ms", &v.activated_ms}, std::pair{"retired_ms", &v.retired_ms},
          std::pair{"verify_until_ms", &v.verify_until_ms},
          std::pair{"destroyed_ms", &v.destroyed_ms}}) {
        auto t = r->optional_time(name);
        if (!t) return std::move(t).error();
        *slot = *t;
    }
    if (auto done = r->finish(); !done) return std::move(done).error();
    return v;
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

core::Result<std::unique_ptr<KeyManager>> KeyManager::create(std::shared_ptr<KeyStore> store,
                                                             KidFunction kid,
                                                             ClusterOptions options) {
    auto refuse = [](std::string what) {
        return make_error(ErrorKind::usage, "keys.bad_options", std::move(what));
    };
    if (store == nullptr) return refuse("a key manager needs a key store");
    if (!kid) return refuse("a key manager needs a kid function");
    if (options.replica.empty()) return refuse("the replica name is empty");
    if (!options.claims.workable()) {
        return refuse("claim timings need 0 < write_bound < settle");
    }
    if (options.min_pre_active < std::chrono::milliseconds::zero()) {
        return refuse("min_pre_active is negative");
    }
    return std::unique_ptr<KeyManager>(
        new KeyManager(std::move(store), std::move(kid), std::move(options)));
}

KeyManager::KeyManager(std::shared_ptr<KeyStore> store, KidFunction kid, ClusterOptions options)
    : store_(std::move(store)),
      kid_(std::move(kid)),
      options_(std::move(options)),
      snapshot_(std::make_shared<Snapshot>()) {}

void KeyManager::set_observer(TransitionHook observer) {
    std::lock_guard lock(mutex_);
    observer_ = std::move(observer);
}

void KeyManager::log(const std::string& line) const {
    if (options_.log) options_.log(line);
}

ClaimStorage KeyManager::claim_storage() const {
    ClaimStorage s;
    auto store = store_;
    s.list = [store](const std::string& prefix) -> core::Result<std::vector<std::string>> {
        auto listed = store->list_data(prefix);
        if (!listed) return listed.error();
        std::vector<std::string> labels;
        for (auto& [label, value] : *listed) labels.push_back(label);
        return labels;
    };
    s.create = [store](const std::string& label, core::ByteView value) {
        return store->create_data(label, value);
    };
    s.remove = [store](const std::string& label) { return store->delete_data(label); };
    s.wait = options_.wait;
    return s;
}

core::Status KeyManager::refresh() {
    return refresh(options_.clock ? options_.clock() : core::Clock::now());
}

core::Status KeyManager::refresh(core::TimePoint now) {
    std::lock_guard lock(mutex_);
    core::Status st = refresh_locked(now);
    // A known version that stays out of sight for three refreshes in a row: the module's view
    // of the token may have stopped matching it (docs/hsm.md). Have it read from scratch; the
    // last good state keeps serving meanwhile.
    const bool vanished =
        !st && (st.error().code == "keys.state_vanished" || st.error().code == "keys.key_vanished");
    vanished_refreshes_ = vanished ? vanished_refreshes_ + 1 : 0;
    if (vanished_refreshes_ % 10 == 3) store_->reload_view();
    return st;
}

core::Status KeyManager::refresh_locked(core::TimePoint now, bool gate_held) {
    core::Status st = read_state_locked(now, gate_held);
    // An object another replica is writing or destroying at this instant can vanish between
    // being listed and being read: read the token again rather than report a fault.
    for (int again = 0; again < 3 && !st && st.error().code == "hsm.object_gone"; ++again) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        st = read_state_locked(now, gate_held);
    }
    return st;
}

core::Status KeyManager::read_state_locked(core::TimePoint now, bool gate_held) {
    auto records = store_->list_data("licentra/");
    if (!records) return records.error();
    auto pairs = store_->list_keys("licentra/");
    if (!pairs) return pairs.error();
    Fold fold = fold_key_records(*records, *pairs, core::unix_millis(now));
    for (const auto& w : fold.warnings) {
        if (std::find(warned_.begin(), warned_.end(), w) != warned_.end()) continue;
        warned_.push_back(w);
        log("keys: " + w);
    }
    // A version this daemon saw that is now missing, or a signing version whose private key is
    // gone, is a token fault (objects unreadable, a token that lost its object list), never the
    // token's new state: only a destroyed record removes a version. Keep the last good snapshot
    // (signing state, JWKS) and report it; the next refresh after the fault clears recovers.
    const auto known_snapshot = snapshot();  // held for the loop (all_versions)
    for (const auto& [name, known] : known_snapshot->keys) {
        auto now_key = fold.keys.find(name);
        for (const auto& o : known) {
            if (o.record.state == KeyState::destroyed) continue;
            const FoldedVersion* f = nullptr;
            if (now_key != fold.keys.end()) {
                for (const auto& c : now_key->second) {
                    if (c.label == o.label && c.id_hex == o.id_hex) f = &c;
                }
            }
            if (f == nullptr) {
                return make_error(ErrorKind::hsm_unavailable, "keys.state_vanished",
                                  "version " + std::to_string(o.record.version) + " of " + name +
                                      " (" + o.label + ") is no longer visible on the token " +
                                      "without a destroyed record; keeping the last known state");
            }
            // Only a version this replica was signing with: one whose private key it never held
            // (a module that lost the object or wrote it incompletely) is active without a
            // signing handle here (below), like one that cannot be loaded yet. Freezing the
            // state for it would also stop the rotation that replaces it.
            if (f->record.state != KeyState::active || o.record.state != KeyState::active ||
                known_snapshot->active_refs.count(name) == 0) {
                continue;
            }
            const bool has_private =
                std::any_of(pairs->begin(), pairs->end(), [&](const hsm::KeyInfo& k) {
                    return k.label == f->label && k.id_hex == f->id_hex && k.has_private;
                });
            if (!has_private) {
                return make_error(ErrorKind::hsm_unavailable, "keys.key_vanished",
                                  "the private key of active version " + f->label +
                                      " is no longer visible on the token; keeping the last "
                                      "known state");
            }
        }
    }
    // Public keys of the published versions not seen before, read in one pass over the token;
    // each answer is taken up (and its error reported) where the version is met below.
    std::map<std::string, core::Result<crypto::PublicKey>> exported;
    {
        std::vector<std::string> missing;
        std::vector<std::pair<std::string, core::Bytes>> asked;
        for (const auto& [name, folded] : fold.keys) {
            for (const auto& f : folded) {
                if (f.record.state == KeyState::destroyed) continue;
                const std::string ck = cache_key(f.label, f.id_hex);
                if (public_keys_.count(ck) != 0) continue;
                auto id = core::hex_decode(f.id_hex);
                if (!id) continue;  // reported below
                missing.push_back(ck);
                asked.emplace_back(f.label, std::move(*id));
            }
        }
        if (!asked.empty()) {
            auto answers = store_->public_keys(asked);
            if (!answers) return answers.error();
            for (std::size_t i = 0; i < missing.size(); ++i) {
                exported.emplace(missing[i], std::move((*answers)[i]));
            }
        }
    }
    auto next = std::make_shared<Snapshot>();
    next->highest.insert(fold.highest.begin(), fold.highest.end());
    std::vector<core::Error> unreadable;  // active versions whose key pair does not load yet
    for (auto& [name, folded] : fold.keys) {
        auto& versions = next->keys[name];
        for (auto& f : folded) {
            KeyVersion v;
            v.name = f.name;
            v.label = f.label;
            v.id_hex = f.id_hex;
            v.record = f.record;
            if (v.record.state != KeyState::destroyed) {
                const std::string ck = cache_key(v.label, v.id_hex);
                auto pk = public_keys_.find(ck);
                if (pk == public_keys_.end()) {
                    auto id = core::hex_decode(v.id_hex);
                    if (!id) return id.error();
                    auto& answer = exported.at(ck);
                    if (!answer) return answer.error();
                    if (answer->algorithm() != v.record.algorithm) {
                        return make_error(ErrorKind::integrity, "keys.algorithm_mismatch",
                                          "key " + v.label + " does not match its records");
                    }
                    pk = public_keys_
                             .emplace(ck, std::make_shared<const crypto::PublicKey>(
                                              std::move(answer).value()))
                             .first;
                }
                v.public_key = pk->second;
                v.kid = kid_(*v.public_key);
            }
            if (v.record.state == KeyState::active) {
                const std::string ck = cache_key(v.label, v.id_hex);
                auto ref = loaded_refs_.find(ck);
                if (ref == loaded_refs_.end()) {
                    auto id = core::hex_decode(v.id_hex);
                    if (!id) return id.error();
                    auto loaded = store_->load_key(v.label, &*id);  // attribute check, self-test
                    if (loaded) {
                        ref = loaded_refs_.emplace(ck, std::move(*loaded)).first;
                    } else {
                        auto why = unreadable_version(v.label, loaded.error());
                        if (why.code != "keys.key_unreadable") return why;  // a device fault
                        unreadable.push_back(std::move(why));
                    }
                }
                // A version that cannot be loaded yet is active all the same (records decide),
                // but it has no signing handle: leases answer 503 until a refresh loads it.
                if (ref != loaded_refs_.end()) next->active_refs.emplace(name, ref->second);
                next->active.emplace(name, v);
            }
            versions.push_back(std::move(v));
        }
    }
    // SoftHSM's per-process view can keep an object another process was writing when this one
    // first read it, with default attributes, until the module re-reads the token (docs/hsm.md).
    for (const auto& why : unreadable) {
        if (std::find(warned_.begin(), warned_.end(), why.message) == warned_.end()) {
            warned_.push_back(why.message);
            log("keys: " + why.code + ": " + why.message + "; re-reading the token from scratch");
        }
        store_->reload_view();
    }
    // Which keys start signing with another version: those transitions are ordered against
    // signatures (exclusive gate) and reported to the observer.
    auto prev = snapshot();
    std::vector<std::pair<std::optional<KeyVersion>, KeyVersion>> changed;
    for (const auto& [name, v] : next->active) {
        auto old = prev->active.find(name);
        if (old != prev->active.end() && old->second.label == v.label &&
            old->second.id_hex == v.id_hex) {
            continue;
        }
        std::optional<KeyVersion> before;
        if (old != prev->active.end()) {
            for (const auto& o : next->keys[name]) {
                if (o.label == old->second.label) before = o;
            }
        }
        changed.emplace_back(std::move(before), v);
    }
    if (changed.empty() || !observed_) {
        snapshot_.store(std::move(next), std::memory_order_release);
        observed_ = true;
        return {};
    }
    std::unique_lock gate(sign_gate_, std::defer_lock);
    if (!gate_held) gate.lock();
    snapshot_.store(std::move(next), std::memory_order_release);
    if (observer_) {
        for (const auto& [before, after] : changed) {
            observer_("key.activate", after);
            if (before && before->record.state == KeyState::retired) {
                observer_("key.retire", *before);
            }
        }
    }
    return {};
}

core::Result<KeyVersion> KeyManager::create_version(const hsm::GenerateCapability& capability,
                                                    unsigned version, crypto::Algorithm alg,
                                                    std::int64_t activate_at_ms,
                                                    std::int64_t supersede_verify_ms,
                                                    const std::string& request,
                                                    core::TimePoint now) {
    const std::string& name = capability.key();
    auto label = hsm::key_label(name, version);
    if (!label) return label.error();
    const nlohmann::json claim_value = {{"at_ms", core::unix_millis(now)},
                                        {"by", options_.replica}};
    const std::string claim_text = claim_value.dump();
    auto storage = claim_storage();
    core::Result<ClaimOutcome> outcome = ClaimOutcome::withdrawn;
    ClaimReport report;
    // A withdrawn (slow) or contended claim leaves the number free: try again a few times
    // after a random delay; once another replica has created the version, pre_check says so.
    for (int attempt = 0; attempt < 3 && outcome && *outcome != ClaimOutcome::won; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(retry_delay(options_.claims));
        outcome = claim(
            storage, claim_prefix(*label), {}, core::as_bytes(claim_text), options_.claims,
            [&]() -> core::Result<bool> {
                // Open while no key pair and no record of this version exist.
                auto taken = store_->label_exists(*label);
                if (!taken) return taken.error();
                if (*taken) return false;
                auto recs = store_->list_data(version_prefix(*label));
                if (!recs) return recs.error();
                return recs->empty();
            },
            &report);
        if (outcome && *outcome == ClaimOutcome::withdrawn) {
            log("keys: claim on version " + std::to_string(version) + " of " + name + " " +
                withdrawn_note(report, options_.claims));
        }
    }
    if (!outcome) return outcome.error();
    if (*outcome != ClaimOutcome::won) {
        auto there = store_->list_data(version_prefix(*label));
        auto taken = store_->label_exists(*label);
        if (there && taken && there->empty() && !*taken) {
            // Nobody holds the number: every try was too slow or contended. Nothing changed;
            // the caller may try again.
            log("keys: could not claim version " + std::to_string(version) + " of " + name +
                " (slow or contended token); nothing was created");
            return make_error(ErrorKind::unavailable, "keys.claim_contended",
                              "the token was too slow or too busy to claim version " +
                                  std::to_string(version) + " of " + name + "; try again");
        }
        log("keys: version " + std::to_string(version) + " of " + name +
            " is being created by another replica; this one stands back");
        return make_error(
            ErrorKind::conflict, "keys.rotation_in_progress",
            "another replica is creating version " + std::to_string(version) + " of " + name);
    }
    auto generated = store_->generate_key(capability, version, alg);
    if (!generated) return generated.error();
    CreatedRecord rec;
    rec.algorithm = alg;
    rec.created_ms = core::unix_millis(now);
    rec.activate_at_ms = activate_at_ms;
    rec.supersede_verify_ms = supersede_verify_ms;
    rec.by = options_.replica;
    rec.request = request;
    const std::string id_hex = core::hex_encode(generated->id);
    if (auto st = store_->create_data(created_label(*label, id_hex), core::as_bytes(rec.to_json()));
        !st) {
        return st.error();
    }
    loaded_refs_.emplace(cache_key(*label, id_hex), *generated);
    public_keys_.emplace(cache_key(*label, id_hex), generated->public_key);
    if (auto st = refresh_locked(now); !st) {
        // The version exists now (its record is on the token): answer it as created, or the
        // caller would take the operation for failed and create another one. The next good
        // refresh shows it like every other version.
        log("keys: version " + std::to_string(version) + " of " + name +
            " was created, but the key state could not be read again: " + st.error().to_string() +
            "; the next refresh shows it");
        KeyVersion v;
        v.name = name;
        v.label = *label;
        v.id_hex = id_hex;
        v.record.version = version;
        v.record.algorithm = alg;
        v.record.created_ms = rec.created_ms;
        if (activate_at_ms <= rec.created_ms) {
            v.record.state = KeyState::active;
            v.record.activated_ms = activate_at_ms;
        } else {
            v.record.activate_at_ms = activate_at_ms;
        }
        v.public_key = generated->public_key;
        v.kid = kid_(*v.public_key);
        return v;
    }
    return find_version(name, version);
}

core::Result<std::optional<KeyVersion>> KeyManager::bootstrap(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg) {
    const std::string& name = grant.key();
    const auto deadline =
        std::chrono::steady_clock::now() + options_.claims.settle + std::chrono::seconds(30);
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            const auto now = options_.clock ? options_.clock() : core::Clock::now();
            if (auto st = refresh_locked(now); !st) return st.error();
            auto snap = snapshot();
            if (auto it = snap->keys.find(name); it != snap->keys.end() && !it->second.empty()) {
                return std::optional<KeyVersion>{};
            }
            unsigned version = 1;
            if (auto h = snap->highest.find(name); h != snap->highest.end()) {
                version = h->second + 1;
            }
            // The first version signs at once: there is no older version to verify against.
            auto created = create_version(Capabilities::generate(grant), version, alg,
                                          core::unix_millis(now), 0, {}, now);
            if (created) return std::optional<KeyVersion>{*created};
            if (created.error().code != "keys.rotation_in_progress") return created.error();
        }
        // Another replica is creating it: wait for its record.
        if (std::chrono::steady_clock::now() > deadline) {
            return make_error(
                ErrorKind::conflict, "keys.bootstrap_in_progress",
                "another replica started creating key " + name + " and has not finished");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

core::Result<SigningLease> KeyManager::lease(const core::Grant<core::action::TokenSign>& grant) {
    SigningLease lease;
    lease.gate_ = std::shared_lock(sign_gate_);
    auto snap = snapshot();
    auto it = snap->active.find(grant.key());
    if (it == snap->active.end()) {
        return make_error(ErrorKind::conflict, "keys.no_active_version",
                          "key " + grant.key() + " has no active version");
    }
    auto ref = snap->active_refs.find(grant.key());
    if (ref == snap->active_refs.end()) {
        return make_error(ErrorKind::hsm_unavailable, "keys.key_unreadable",
                          "active version " + it->second.label +
                              " cannot be loaded from the token yet; retrying at every refresh");
    }
    lease.version_ = &it->second;
    lease.key_ = &ref->second;
    lease.store_ = store_.get();
    lease.capability_.emplace(Capabilities::sign(grant));
    lease.snapshot_ = std::move(snap);
    return lease;
}

core::Result<core::Bytes> SigningLease::sign(core::ByteView input) const {
    return store_->sign(*capability_, *key_, input);
}

core::Status KeyManager::write_event(const std::string& prefix, const EventRecordData& e) {
    auto nonce = crypto::random_bytes(16);
    if (!nonce) return nonce.error();
    EventRecord rec;
    rec.at_ms = e.at_ms;
    rec.verify_until_ms = e.verify_until_ms;
    rec.by = options_.replica;
    return store_->create_data(prefix + core::hex_encode(*nonce), core::as_bytes(rec.to_json()));
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

core::Result<KeyVersion> KeyManager::rotate(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg,
    const Timing& timing, core::TimePoint now, const TransitionHook& hook,
    const std::string& request) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(now); !st) return st.error();
    const std::string& name = grant.key();
    auto snap = snapshot();
    auto it = snap->keys.find(name);
    if (it == snap->keys.end() || it->second.empty()) {
        return make_error(ErrorKind::not_found, "keys.no_versions",
                          "key " + name + " has no version to rotate");
    }
    for (const auto& v : it->second) {
        if (v.record.state == KeyState::pre_active) {
            return make_error(ErrorKind::conflict, "keys.rotation_pending",
                              "key " + name + " already has pre-active version " +
                                  std::to_string(v.record.version));
        }
    }
    // Numbers of destroyed versions, abandoned claims and stray pairs stay taken.
    const unsigned version = snap->highest.at(name) + 1;
    const std::int64_t t = core::unix_millis(now);
    const std::int64_t ahead = std::max<std::int64_t>(1000 * timing.publish_ahead.count(),
                                                      options_.min_pre_active.count());
    auto created = create_version(
        Capabilities::generate(grant), version, alg, t + ahead,
        1000 * (timing.max_validity.count() + timing.verify_grace.count()), request, now);
    if (!created) return created.error();
    if (hook) hook("key.rotate", *created);
    return created;
}

core::Result<KeyVersion> KeyManager::retire(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version,
    const Timing& timing, core::TimePoint now, const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(now); !st) return st.error();
    auto v = find_version(grant.key(), version);
    if (!v) return v.error();
    if (v->record.state != KeyState::pre_active && v->record.state != KeyState::active) {
        return make_error(ErrorKind::conflict, "keys.bad_state",
                          "version " + std::to_string(version) + " of " + grant.key() + " is " +
                              std::string(state_name(v->record.state)));
    }
    const std::int64_t t = core::unix_millis(now);
    EventRecordData e{t, t + 1000 * (timing.max_validity.count() + timing.verify_grace.count())};
    std::unique_lock gate(sign_gate_);
    if (auto st = write_event(retired_prefix(v->label), e); !st) return st.error();
    if (auto st = refresh_locked(now, true); !st) return st.error();
    auto done = find_version(grant.key(), version);
    if (done && hook) hook("key.retire", *done);
    return done;
}

core::Result<KeyVersion> KeyManager::destroy(
    const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version, bool force,
    core::TimePoint now, const TransitionHook& hook) {
    std::lock_guard lock(mutex_);
    if (auto st = refresh_locked(now); !st) return st.error();
    auto v = find_version(grant.key(), version);
    if (!v) return v.error();
    const std::int64_t t = core::unix_millis(now);
    if (v->record.state == KeyState::destroyed) {
        // A destroy whose record was written but whose private object survived (the HSM
        // failed in between, or the daemon died): this destroy completes it.
        auto id = core::hex_decode(v->id_hex);
        if (!id) return id.error();
        auto pairs = store_->list_keys(v->label);
        if (!pairs) return pairs.error();
        const bool survived = std::any_of(pairs->begin(), pairs->end(), [&](const hsm::KeyInfo& k) {
            return k.label == v->label && k.id_hex == v->id_hex && k.has_private;
        });
        if (!survived) {
            return make_error(ErrorKind::conflict, "keys.bad_state",
                              "version " + std::to_string(version) + " is already destroyed");
        }
        if (auto st = store_->destroy_private_key(Capabilities::destroy(grant), v->label, &*id);
            !st) {
            return st.error();
        }
        log("keys: the private key of destroyed version " + v->label +
            " had survived an earlier destroy; destroyed now");
        if (hook) hook("key.destroy", *v);
        return *v;
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
    auto id = core::hex_decode(v->id_hex);
    if (!id) return id.error();
    std::unique_lock gate(sign_gate_);
    // Record first: a crash after it leaves a destroyed record whose private object the next
    // destroy attempt (or an operator) removes; never a usable key marked usable.
    if (auto st = write_event(destroyed_prefix(v->label), EventRecordData{t, std::nullopt}); !st) {
        return st.error();
    }
    if (auto st = store_->destroy_private_key(Capabilities::destroy(grant), v->label, &*id);
        !st && st.error().code != "hsm.key_not_found") {
        return st.error();
    }
    loaded_refs_.erase(cache_key(v->label, v->id_hex));
    public_keys_.erase(cache_key(v->label, v->id_hex));
    if (auto st = refresh_locked(now, true); !st) return st.error();
    auto done = find_version(grant.key(), version);
    if (done && hook) hook("key.destroy", *done);
    return done;
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

// The snapshot is held in a local for the whole loop: a range-for over `snapshot()->keys`
// would destroy the temporary shared_ptr before the loop runs, and a refresh that replaces the
// snapshot meanwhile would free the map being iterated.
std::vector<KeyVersion> KeyManager::all_versions() const {
    std::vector<KeyVersion> out;
    const auto snap = snapshot();
    for (const auto& [name, versions] : snap->keys) {
        out.insert(out.end(), versions.begin(), versions.end());
    }
    return out;
}

std::vector<KeyVersion> KeyManager::published(core::TimePoint now) const {
    std::vector<KeyVersion> out;
    const auto snap = snapshot();  // held for the loop (all_versions)
    for (const auto& [name, versions] : snap->keys) {
        for (const auto& v : versions) {
            if (v.published(now)) out.push_back(v);
        }
    }
    return out;
}

}  // namespace licentra::keys
