// CKO_DATA objects for key state records, and HMAC-SHA-256 keys for audit pseudonyms.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "hsm/objects.hpp"

namespace licentra::hsm {

using core::Bytes;
using core::ByteView;
using core::ErrorKind;
using core::make_error;
using detail::Attempt;

namespace {

constexpr std::string_view kApplication = "licentra";
// Stored value = "LDO1" || sequence (8 bytes, big-endian) || payload. The sequence orders
// the two objects a crash between create and destroy can leave behind.
constexpr std::string_view kMagic = "LDO1";
constexpr std::size_t kHeader = 12;
constexpr std::size_t kMaxData = 64 * 1024;

struct Stored {
    CK_OBJECT_HANDLE handle;
    std::string label;
    std::uint64_t seq;
    Bytes payload;
};

core::Result<Stored> decode(CK_OBJECT_HANDLE h, std::string label, const Bytes& v) {
    if (v.size() < kHeader || core::as_chars(ByteView(v).first(4)) != kMagic) {
        return make_error(ErrorKind::integrity, "hsm.data_corrupt",
                          "data object " + label + " does not hold a Licentra record");
    }
    std::uint64_t seq = 0;
    for (std::size_t i = 4; i < kHeader; ++i) seq = (seq << 8) | v[i];
    return Stored{h, std::move(label), seq, Bytes(v.begin() + kHeader, v.end())};
}

// All Licentra data objects, or those with one label, or (prefix) those whose label starts
// with it: one search, then label and value of each object it found.
core::Result<std::vector<Stored>> find_data(Attempt& a, const std::string* label,
                                            const std::string* prefix = nullptr) {
    CK_OBJECT_CLASS cls = CKO_DATA;
    std::vector<CK_ATTRIBUTE> tmpl = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_APPLICATION, ptr(kApplication.data()), static_cast<CK_ULONG>(kApplication.size())},
    };
    if (label != nullptr) {
        tmpl.push_back({CKA_LABEL, ptr(label->data()), static_cast<CK_ULONG>(label->size())});
    }
    auto objs = detail::find_objects(a, tmpl.data(), static_cast<CK_ULONG>(tmpl.size()),
                                     "finding data objects");
    if (!objs) return std::move(objs).error();
    std::vector<Stored> out;
    for (CK_OBJECT_HANDLE h : *objs) {
        // Another session (this daemon's or another replica's) may destroy an object between
        // C_FindObjects and reading it: it is simply no longer there.
        // Label and value in one read: two calls per object, not four.
        auto got = detail::get_attributes(a, h, {CKA_LABEL, CKA_VALUE});
        if (!got && got.error().code == "hsm.object_gone") continue;
        if (!got) return std::move(got).error();
        const auto& lab = (*got)[0];
        std::string l = lab ? std::string(core::as_chars(*lab)) : std::string();
        if (prefix != nullptr && l.rfind(*prefix, 0) != 0) continue;
        auto s = decode(h, l, (*got)[1].value_or(Bytes{}));
        if (!s) return std::move(s).error();
        out.push_back(std::move(s).value());
    }
    return out;
}

core::Status check_data_label(const std::string& label) {
    if (label.empty() || label.size() > 256) {
        return make_error(ErrorKind::usage, "hsm.data_label", "data label must be 1-256 bytes");
    }
    return {};
}

// Creates one CKO_DATA object holding the header with `seq` and the value.
core::Status create_object(Attempt& a, const std::string& label, std::uint64_t seq,
                           ByteView value) {
    Bytes stored(kMagic.begin(), kMagic.end());
    for (int i = 7; i >= 0; --i) stored.push_back(static_cast<std::uint8_t>(seq >> (8 * i)));
    stored.insert(stored.end(), value.begin(), value.end());
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_TOKEN, ptr(&kTrue), sizeof kTrue},
        {CKA_PRIVATE, ptr(&kTrue), sizeof kTrue},
        {CKA_MODIFIABLE, ptr(&kFalse), sizeof kFalse},
        {CKA_LABEL, ptr(label.data()), static_cast<CK_ULONG>(label.size())},
        {CKA_APPLICATION, ptr(kApplication.data()), static_cast<CK_ULONG>(kApplication.size())},
        {CKA_VALUE, stored.data(), static_cast<CK_ULONG>(stored.size())},
    };
    CK_OBJECT_HANDLE created = CK_INVALID_HANDLE;
    const CK_RV rv = LICENTRA_P11(a.fl, C_CreateObject, a.session, tmpl,
                                  CK_ULONG{sizeof tmpl / sizeof tmpl[0]}, &created);
    if (rv != CKR_OK) return a.fail("C_CreateObject", rv, "writing data " + label);
    return {};
}

core::Status check_data(const std::string& label, ByteView value) {
    if (auto st = check_data_label(label); !st) return st;
    if (value.size() > kMaxData) {
        return make_error(ErrorKind::limit, "hsm.data_size", "data object larger than 64 KiB");
    }
    return {};
}

}  // namespace

core::Status Token::create_data(const std::string& label, ByteView value) {
    if (auto st = check_data(label, value); !st) return st;
    std::lock_guard write(state_->write_mu);
    core::Status st;
    // SoftHSM's file store sometimes answers CKR_GENERAL_ERROR, or CKR_TEMPLATE_INCONSISTENT
    // (the new object's file lost its class while another process rewrote the store), to a
    // C_CreateObject that races another process's write. The template is fixed and the record
    // append-only (a duplicate of it is harmless), so try again, for up to about 1.2 s: a
    // record a close depends on (its outcome) must not be lost to a burst of such answers
    // from a token several replicas write at once.
    for (int attempt = 0; attempt < 8; ++attempt) {
        if (attempt > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(10 << attempt, 250)));
        }
        CK_RV create_rv = CKR_OK;
        st = detail::to_status(
            state_->run<std::monostate>([&](Attempt& a) -> core::Result<std::monostate> {
                // Read the token's current contents right before writing (see write_mu).
                if (auto seen = find_data(a, &label); !seen) return std::move(seen).error();
                if (auto created = create_object(a, label, 1, value); !created) {
                    create_rv = a.fault_rv;
                    return created.error();
                }
                return std::monostate{};
            }));
        if (st || (st.error().code != "hsm.device_unavailable" &&
                   st.error().code != "hsm.internal" && create_rv != CKR_TEMPLATE_INCONSISTENT)) {
            break;
        }
    }
    return st;
}

core::Status Token::write_data(const std::string& label, ByteView value) {
    if (auto st = check_data(label, value); !st) return st;
    std::lock_guard write(state_->write_mu);
    return detail::to_status(
        state_->run<std::monostate>([&](Attempt& a) -> core::Result<std::monostate> {
            auto old = find_data(a, &label);
            if (!old) return std::move(old).error();
            std::uint64_t seq = 0;
            for (const auto& o : *old) seq = std::max(seq, o.seq);
            if (auto st = create_object(a, label, seq + 1, value); !st) return st.error();
            CK_RV rv = CKR_OK;
            // Create first, destroy after: a crash in between leaves both, and readers take
            // the higher sequence.
            for (const auto& o : *old) {
                rv = LICENTRA_P11(a.fl, C_DestroyObject, a.session, o.handle);
                if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
                    return a.fail("C_DestroyObject", rv, "replacing data " + label);
                }
            }
            return std::monostate{};
        }));
}

core::Result<std::optional<Bytes>> Token::read_data(const std::string& label) {
    if (auto st = check_data_label(label); !st) return std::move(st).error();
    return state_->run<std::optional<Bytes>>([&](Attempt& a) -> core::Result<std::optional<Bytes>> {
        auto objs = find_data(a, &label);
        if (!objs) return std::move(objs).error();
        const Stored* best = nullptr;
        for (const auto& o : *objs) {
            if (best == nullptr || o.seq > best->seq) best = &o;
        }
        if (best == nullptr) return std::optional<Bytes>{};
        return std::optional<Bytes>(best->payload);
    });
}

core::Status Token::delete_data(const std::string& label) {
    if (auto st = check_data_label(label); !st) return st;
    std::lock_guard write(state_->write_mu);
    return detail::to_status(
        state_->run<std::monostate>([&](Attempt& a) -> core::Result<std::monostate> {
            auto objs = find_data(a, &label);
            if (!objs) return std::move(objs).error();
            for (const auto& o : *objs) {
                const CK_RV rv = LICENTRA_P11(a.fl, C_DestroyObject, a.session, o.handle);
                if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
                    return a.fail("C_DestroyObject", rv, "deleting data " + label);
                }
            }
            return std::monostate{};
        }));
}

core::Result<std::vector<std::pair<std::string, Bytes>>> Token::list_data(
    const std::string& prefix) {
    using Out = std::vector<std::pair<std::string, Bytes>>;
    return state_->run<Out>([&](Attempt& a) -> core::Result<Out> {
        auto objs = find_data(a, nullptr, &prefix);
        if (!objs) return std::move(objs).error();
        std::map<std::string, const Stored*> best;
        for (const auto& o : *objs) {
            if (o.label.rfind(prefix, 0) != 0) continue;
            auto& b = best[o.label];
            if (b == nullptr || o.seq > b->seq) b = &o;
        }
        Out out;
        for (const auto& [label, s] : best) out.emplace_back(label, s->payload);
        return out;
    });
}

// ---- HMAC ----

namespace {

// Finds the HMAC key, checks it, optionally creates it. Returns its handle.
core::Result<CK_OBJECT_HANDLE> find_hmac_key(Attempt& a, const std::string& label, bool create) {
    auto objs = detail::find_by_label(a, CKO_SECRET_KEY, label);
    if (!objs) return std::move(objs).error();
    if (objs->size() > 1) {
        // Two daemons that created the same key at the same instant (a pseudonym epoch's key
        // on first use): every daemon takes the one with the lowest CKA_ID, so all of them
        // agree once each sees both (docs/adr/0006-pseudonym-epochs.md).
        std::optional<std::pair<Bytes, CK_OBJECT_HANDLE>> lowest;
        for (CK_OBJECT_HANDLE h : *objs) {
            auto id = detail::get_bytes(a, h, CKA_ID);
            if (!id) return std::move(id).error();
            Bytes v = id->value_or(Bytes{});
            if (!lowest || v < lowest->first) lowest.emplace(std::move(v), h);
        }
        objs->assign(1, lowest->second);
    }
    if (objs->size() == 1) {
        const CK_OBJECT_HANDLE h = objs->front();
        auto kt = detail::get_ulong(a, h, CKA_KEY_TYPE);
        if (!kt) return std::move(kt).error();
        auto b =
            detail::get_bools(a, h,
                              {CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_SIGN,
                               CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE});
        if (!b) return std::move(b).error();
        const auto& v = *b;
        const bool ok = *kt && **kt == CKK_GENERIC_SECRET && v[0] == true && v[1] == true &&
                        v[2] == true && v[3] == false && v[4] == true && v[5] != true &&
                        v[6] != true && v[7] != true && v[8] != true && v[9] != true;
        if (!ok) {
            return make_error(ErrorKind::integrity, "hsm.key_attributes",
                              "secret key " + label +
                                  " is not a sensitive, non-extractable, sign-only generic "
                                  "secret token key");
        }
        return h;
    }
    if (!create) {
        return make_error(ErrorKind::not_found, "hsm.key_not_found",
                          "no HMAC key labelled " + label + " on the token");
    }
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ULONG len = 32;
    // A random CKA_ID orders keys that two daemons created under one label at once.
    Bytes id(16);
    CK_RV rv = LICENTRA_P11(a.fl, C_GenerateRandom, a.session, id.data(),
                            static_cast<CK_ULONG>(id.size()));
    if (rv != CKR_OK) return a.fail("C_GenerateRandom", rv, "an id for HMAC key " + label);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, ptr(&kTrue), sizeof kTrue},
        {CKA_PRIVATE, ptr(&kTrue), sizeof kTrue},
        {CKA_SENSITIVE, ptr(&kTrue), sizeof kTrue},
        {CKA_EXTRACTABLE, ptr(&kFalse), sizeof kFalse},
        {CKA_SIGN, ptr(&kTrue), sizeof kTrue},
        {CKA_VERIFY, ptr(&kFalse), sizeof kFalse},
        {CKA_ENCRYPT, ptr(&kFalse), sizeof kFalse},
        {CKA_DECRYPT, ptr(&kFalse), sizeof kFalse},
        {CKA_WRAP, ptr(&kFalse), sizeof kFalse},
        {CKA_UNWRAP, ptr(&kFalse), sizeof kFalse},
        {CKA_DERIVE, ptr(&kFalse), sizeof kFalse},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_LABEL, ptr(label.data()), static_cast<CK_ULONG>(label.size())},
        {CKA_ID, id.data(), static_cast<CK_ULONG>(id.size())},
    };
    CK_MECHANISM mech{CKM_GENERIC_SECRET_KEY_GEN, nullptr, 0};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    rv = LICENTRA_P11(a.fl, C_GenerateKey, a.session, &mech, tmpl,
                      CK_ULONG{sizeof tmpl / sizeof tmpl[0]}, &h);
    if (rv != CKR_OK) return a.fail("C_GenerateKey", rv, "generating HMAC key " + label);
    return h;
}

}  // namespace

core::Status Token::ensure_hmac_key(const std::string& label) {
    auto& t = *state_;
    return detail::to_status(t.run<std::monostate>([&](Attempt& a) -> core::Result<std::monostate> {
        const auto epoch = t.epoch.load();
        auto h = find_hmac_key(a, label, true);
        if (!h) return std::move(h).error();
        auto handles = std::make_shared<detail::KeyHandles>();
        handles->priv = *h;
        handles->epoch = epoch;
        std::lock_guard lock(t.cache_mu);
        t.hmac_keys[label] = std::move(handles);
        return std::monostate{};
    }));
}

core::Result<std::vector<std::string>> Token::list_hmac_keys(const std::string& prefix) {
    using Out = std::vector<std::string>;
    return state_->run<Out>([&](Attempt& a) -> core::Result<Out> {
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}};
        auto objs = detail::find_objects(a, tmpl, 1, "finding secret keys");
        if (!objs) return std::move(objs).error();
        std::set<std::string> labels;
        for (CK_OBJECT_HANDLE h : *objs) {
            auto got = detail::get_bytes(a, h, CKA_LABEL);
            if (!got && got.error().code == "hsm.object_gone") continue;
            if (!got) return std::move(got).error();
            std::string l = got->has_value() ? std::string(core::as_chars(**got)) : std::string();
            if (l.rfind(prefix, 0) == 0) labels.insert(std::move(l));
        }
        return Out(labels.begin(), labels.end());
    });
}

core::Result<std::size_t> Token::destroy_hmac_key(const std::string& label) {
    auto& t = *state_;
    auto destroyed = t.run<std::size_t>([&](Attempt& a) -> core::Result<std::size_t> {
        auto objs = detail::find_by_label(a, CKO_SECRET_KEY, label);
        if (!objs) return std::move(objs).error();
        std::size_t n = 0;
        for (CK_OBJECT_HANDLE h : *objs) {
            const CK_RV rv = LICENTRA_P11(a.fl, C_DestroyObject, a.session, h);
            if (rv == CKR_OK) {
                ++n;
            } else if (rv != CKR_OBJECT_HANDLE_INVALID) {
                return a.fail("C_DestroyObject", rv, "destroying HMAC key " + label);
            }
        }
        return n;
    });
    std::lock_guard lock(t.cache_mu);
    t.hmac_keys.erase(label);
    return destroyed;
}

core::Result<Bytes> Token::hmac_sha256(const std::string& label, ByteView data) {
    auto& t = *state_;
    std::shared_ptr<detail::KeyHandles> handles;
    {
        std::lock_guard lock(t.cache_mu);
        auto it = t.hmac_keys.find(label);
        if (it != t.hmac_keys.end()) handles = it->second;
    }
    if (!handles) {
        handles = std::make_shared<detail::KeyHandles>();
        std::lock_guard lock(t.cache_mu);
        t.hmac_keys.emplace(label, handles);
        handles = t.hmac_keys[label];
    }
    return t.run<Bytes>([&](Attempt& a) -> core::Result<Bytes> {
        bool refound = false;
        for (;;) {
            if (handles->priv.load() == CK_INVALID_HANDLE ||
                handles->epoch.load() != t.epoch.load()) {
                const auto epoch = t.epoch.load();
                auto h = find_hmac_key(a, label, false);
                if (!h) return std::move(h).error();
                handles->priv = *h;
                handles->epoch = epoch;
                refound = true;
            }
            CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
            CK_RV rv = LICENTRA_P11(a.fl, C_SignInit, a.session, &mech, handles->priv.load());
            const char* fn = "C_SignInit";
            Bytes mac(32);
            if (rv == CKR_OK) {
                CK_ULONG len = static_cast<CK_ULONG>(mac.size());
                fn = "C_Sign";
                rv = LICENTRA_P11(a.fl, C_Sign, a.session, const_cast<std::uint8_t*>(data.data()),
                                  static_cast<CK_ULONG>(data.size()), mac.data(), &len);
                if (rv == CKR_OK) {
                    mac.resize(len);
                    return mac;
                }
            }
            if (classify(rv) == Fault::stale_handle && !refound) {
                handles->priv = CK_INVALID_HANDLE;
                continue;
            }
            return a.fail(fn, rv, "HMAC with " + label);
        }
    });
}

}  // namespace licentra::hsm
