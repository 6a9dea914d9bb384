// Key pairs: generation, attribute checks, self-test, loading, listing, signing, destruction.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <variant>

#include "core/names.hpp"
#include "crypto/digest.hpp"
#include "crypto/random.hpp"
#include "hsm/objects.hpp"

namespace licentra::hsm {

using core::Bytes;
using core::ByteView;
using core::ErrorKind;
using core::make_error;
using crypto::Algorithm;
using detail::Attempt;

namespace {

constexpr std::size_t kIdLength = 16;
constexpr CK_ULONG kRsaBits = 3072;

// DER OIDs for CKA_EC_PARAMS (namedCurve).
constexpr std::array<std::uint8_t, 5> kOidEd25519 = {0x06, 0x03, 0x2b, 0x65, 0x70};
constexpr std::array<std::uint8_t, 10> kOidP256 = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                                   0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::array<std::uint8_t, 7> kOidP384 = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
constexpr std::array<std::uint8_t, 3> kRsaExponent = {0x01, 0x00, 0x01};

template <typename T>
CK_ATTRIBUTE attr(CK_ATTRIBUTE_TYPE type, const T& value) {
    return CK_ATTRIBUTE{type, ptr(&value), sizeof value};
}
CK_ATTRIBUTE attr_bytes(CK_ATTRIBUTE_TYPE type, ByteView v) {
    return CK_ATTRIBUTE{type, ptr(v.data()), static_cast<CK_ULONG>(v.size())};
}
CK_ATTRIBUTE attr_str(CK_ATTRIBUTE_TYPE type, const std::string& s) {
    return CK_ATTRIBUTE{type, ptr(s.data()), static_cast<CK_ULONG>(s.size())};
}

std::optional<Algorithm> algorithm_from(CK_ULONG key_type, const std::optional<Bytes>& params) {
    auto is = [&](auto oid) {
        return params && params->size() == oid.size() &&
               std::equal(oid.begin(), oid.end(), params->begin());
    };
    switch (key_type) {
        case CKK_EC_EDWARDS:
            if (is(kOidEd25519)) return Algorithm::EdDSA;
            return std::nullopt;
        case CKK_EC:
            if (is(kOidP256)) return Algorithm::ES256;
            if (is(kOidP384)) return Algorithm::ES384;
            return std::nullopt;
        case CKK_RSA:
            return Algorithm::PS256;
        default:
            return std::nullopt;
    }
}

// CKA_EC_POINT is a DER OCTET STRING per PKCS#11 v2.40 §2.3.3, but some modules (and older
// SoftHSM Ed25519 code) return the raw point: accept both, decided by the expected length.
core::Result<Bytes> unwrap_ec_point(const Bytes& v, std::size_t raw_len) {
    if (v.size() == raw_len) return v;
    if (v.size() >= 2 && v[0] == 0x04) {
        std::size_t len = 0;
        std::size_t hdr = 0;
        if (v[1] < 0x80) {
            len = v[1];
            hdr = 2;
        } else if (v[1] == 0x81 && v.size() >= 3) {
            len = v[2];
            hdr = 3;
        }
        if (hdr != 0 && len == raw_len && v.size() == hdr + len) {
            return Bytes(v.begin() + static_cast<std::ptrdiff_t>(hdr), v.end());
        }
    }
    return make_error(
        ErrorKind::integrity, "hsm.bad_public_key",
        "CKA_EC_POINT has an unexpected encoding (" + std::to_string(v.size()) + " bytes)");
}

// The public key from its attribute values: CKA_MODULUS and CKA_PUBLIC_EXPONENT (RSA) or
// CKA_EC_POINT.
core::Result<crypto::PublicKey> public_from(Algorithm alg, const std::optional<Bytes>& modulus,
                                            const std::optional<Bytes>& exponent,
                                            const std::optional<Bytes>& point) {
    if (alg == Algorithm::PS256) {
        if (!modulus || !exponent) {
            return make_error(ErrorKind::integrity, "hsm.bad_public_key",
                              "RSA public key object lacks CKA_MODULUS or CKA_PUBLIC_EXPONENT");
        }
        return crypto::PublicKey::from_rsa(*modulus, *exponent);
    }
    if (!point) {
        return make_error(ErrorKind::integrity, "hsm.bad_public_key",
                          "public key object lacks CKA_EC_POINT");
    }
    const std::size_t raw_len = alg == Algorithm::EdDSA ? 32 : (alg == Algorithm::ES256 ? 65 : 97);
    auto raw = unwrap_ec_point(*point, raw_len);
    if (!raw) return std::move(raw).error();
    if (alg == Algorithm::EdDSA) return crypto::PublicKey::from_ed25519(*raw);
    return crypto::PublicKey::from_ec_point(
        alg == Algorithm::ES256 ? crypto::Curve::P256 : crypto::Curve::P384, *raw);
}

core::Result<crypto::PublicKey> export_public(Attempt& a, CK_OBJECT_HANDLE pub, Algorithm alg) {
    auto got = alg == Algorithm::PS256
                   ? detail::get_attributes(a, pub, {CKA_MODULUS, CKA_PUBLIC_EXPONENT})
                   : detail::get_attributes(a, pub, {CKA_EC_POINT});
    if (!got) return std::move(got).error();
    if (alg == Algorithm::PS256) return public_from(alg, (*got)[0], (*got)[1], std::nullopt);
    return public_from(alg, std::nullopt, std::nullopt, (*got)[0]);
}

// The algorithm of a public key object from its CKA_KEY_TYPE and CKA_EC_PARAMS.
core::Result<Algorithm> algorithm_of(const std::optional<CK_ULONG>& key_type,
                                     const std::optional<Bytes>& params, const std::string& label) {
    const bool ec = key_type && (*key_type == CKK_EC || *key_type == CKK_EC_EDWARDS);
    auto alg = key_type ? algorithm_from(*key_type, ec ? params : std::nullopt) : std::nullopt;
    if (!alg) {
        return make_error(ErrorKind::integrity, "hsm.key_type",
                          label + " is not an Ed25519, P-256, P-384 or RSA key");
    }
    return *alg;
}

// Reads the private and public key attributes the policy checks.
core::Result<detail::KeyAttributes> read_key_attributes(Attempt& a, CK_OBJECT_HANDLE priv,
                                                        CK_OBJECT_HANDLE pub) {
    auto p = detail::get_bools(a, priv,
                               {CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_ALWAYS_SENSITIVE,
                                CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE, CKA_LOCAL, CKA_SIGN,
                                CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE, CKA_SIGN_RECOVER});
    if (!p) return std::move(p).error();
    auto q = detail::get_bools(a, pub, {CKA_VERIFY, CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE, CKA_TOKEN});
    if (!q) return std::move(q).error();
    detail::KeyAttributes k;
    const auto& v = *p;
    k.token = v[0];
    k.priv = v[1];
    k.sensitive = v[2];
    k.always_sensitive = v[3];
    k.extractable = v[4];
    k.never_extractable = v[5];
    k.local = v[6];
    k.sign = v[7];
    k.decrypt = v[8];
    k.unwrap = v[9];
    k.derive = v[10];
    k.sign_recover = v[11];
    const auto& w = *q;
    k.pub_verify = w[0];
    k.pub_encrypt = w[1];
    k.pub_wrap = w[2];
    k.pub_derive = w[3];
    k.pub_token = w[4];
    return k;
}

struct Mechanism {
    CK_MECHANISM mech{};
    CK_RSA_PKCS_PSS_PARAMS pss{};
    Bytes input;  // what C_Sign gets: the message, or its digest
    CK_ULONG expected = 0;
};

// RFC 7518 §3.4: ES256/ES384 sign the SHA-256/384 digest, output raw r||s (CKM_ECDSA's form).
// RFC 7518 §3.5: PS256 = RSASSA-PSS, SHA-256, MGF1 with SHA-256, salt length 32.
// RFC 8037 §3.1: EdDSA signs the message itself (pure Ed25519, CKM_EDDSA without params).
Mechanism mechanism_for(Algorithm alg, ByteView message, int pss_mode, CK_ULONG rsa_bytes) {
    Mechanism m;
    switch (alg) {
        case Algorithm::EdDSA:
            m.mech.mechanism = CKM_EDDSA;
            m.input.assign(message.begin(), message.end());
            m.expected = 64;
            break;
        case Algorithm::ES256: {
            const auto d = crypto::sha256(message);
            m.mech.mechanism = CKM_ECDSA;
            m.input.assign(d.begin(), d.end());
            m.expected = 64;
            break;
        }
        case Algorithm::ES384: {
            const auto d = crypto::sha384(message);
            m.mech.mechanism = CKM_ECDSA;
            m.input.assign(d.begin(), d.end());
            m.expected = 96;
            break;
        }
        case Algorithm::PS256:
        default:
            m.pss = CK_RSA_PKCS_PSS_PARAMS{CKM_SHA256, CKG_MGF1_SHA256, 32};
            m.mech.pParameter = &m.pss;
            m.mech.ulParameterLen = sizeof m.pss;
            if (pss_mode == 2) {
                const auto d = crypto::sha256(message);
                m.mech.mechanism = CKM_RSA_PKCS_PSS;
                m.input.assign(d.begin(), d.end());
            } else {
                m.mech.mechanism = CKM_SHA256_RSA_PKCS_PSS;
                m.input.assign(message.begin(), message.end());
            }
            m.expected = rsa_bytes;
            break;
    }
    return m;
}

// C_SignInit + C_Sign with a buffer sized for the algorithm; resized if the module asks.
CK_RV sign_raw(Attempt& a, CK_OBJECT_HANDLE key, Mechanism& m, Bytes& out, const char** fn) {
    *fn = "C_SignInit";
    // Re-point the parameter: Mechanism may have moved since mechanism_for.
    if (m.mech.ulParameterLen != 0) m.mech.pParameter = &m.pss;
    CK_RV rv = LICENTRA_P11(a.fl, C_SignInit, a.session, &m.mech, key);
    if (rv != CKR_OK) return rv;
    *fn = "C_Sign";
    out.resize(m.expected > 0 ? m.expected : 512);
    CK_ULONG len = static_cast<CK_ULONG>(out.size());
    rv = LICENTRA_P11(a.fl, C_Sign, a.session, m.input.data(),
                      static_cast<CK_ULONG>(m.input.size()), out.data(), &len);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        // v2.40 §5.2: the operation stays active and len holds the size needed.
        out.resize(len);
        rv = LICENTRA_P11(a.fl, C_Sign, a.session, m.input.data(),
                          static_cast<CK_ULONG>(m.input.size()), out.data(), &len);
    }
    if (rv == CKR_OK) out.resize(len);
    return rv;
}

std::string algorithm_name(Algorithm alg) { return std::string(crypto::jws_name(alg)); }

// The policy's key-name rule (core/names.hpp): a label names only keys a policy can name.
bool valid_name(std::string_view name) { return core::is_valid_name(name); }

}  // namespace

// ---- labels ----

core::Result<std::string> key_label(std::string_view name, unsigned version) {
    if (!valid_name(name)) {
        return make_error(
            ErrorKind::usage, "hsm.key_name",
            "key name must be 1-64 characters of a-z 0-9 . _ -, starting with a letter or digit");
    }
    if (version == 0) {
        return make_error(ErrorKind::usage, "hsm.key_version", "key version must be >= 1");
    }
    return "licentra/" + std::string(name) + "/v" + std::to_string(version);
}

core::Result<std::pair<std::string, unsigned>> parse_key_label(std::string_view label) {
    auto bad = [&] {
        return make_error(
            ErrorKind::usage, "hsm.key_label",
            "not a key label of the form licentra/<name>/v<N>: " + std::string(label));
    };
    constexpr std::string_view kPrefix = "licentra/";
    if (label.substr(0, kPrefix.size()) != kPrefix) return bad();
    const auto rest = label.substr(kPrefix.size());
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos) return bad();
    const auto name = rest.substr(0, slash);
    const auto ver = rest.substr(slash + 1);
    if (!valid_name(name) || ver.size() < 2 || ver[0] != 'v' || ver.size() > 10) return bad();
    if (ver[1] == '0') return bad();  // no leading zeros: one label per version
    unsigned long v = 0;
    for (char c : ver.substr(1)) {
        if (c < '0' || c > '9') return bad();
        v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (v == 0 || v > 0x7fffffffUL) return bad();
    return std::make_pair(std::string(name), static_cast<unsigned>(v));
}

// ---- attribute policy ----

namespace detail {

std::vector<std::string> key_attribute_violations(const KeyAttributes& k) {
    std::vector<std::string> out;
    auto must = [&](const std::optional<bool>& v, bool want, const char* name, bool absent_ok) {
        if (!v) {
            if (!absent_ok) out.push_back(std::string(name) + " is missing");
        } else if (*v != want) {
            out.push_back(std::string(name) + " is " + (*v ? "true" : "false"));
        }
    };
    must(k.token, true, "private CKA_TOKEN", false);
    must(k.priv, true, "private CKA_PRIVATE", false);
    must(k.sensitive, true, "private CKA_SENSITIVE", false);
    must(k.always_sensitive, true, "private CKA_ALWAYS_SENSITIVE", false);
    must(k.extractable, false, "private CKA_EXTRACTABLE", false);
    must(k.never_extractable, true, "private CKA_NEVER_EXTRACTABLE", false);
    must(k.local, true, "private CKA_LOCAL", false);
    must(k.sign, true, "private CKA_SIGN", false);
    must(k.decrypt, false, "private CKA_DECRYPT", true);
    must(k.unwrap, false, "private CKA_UNWRAP", true);
    must(k.derive, false, "private CKA_DERIVE", true);
    must(k.sign_recover, false, "private CKA_SIGN_RECOVER", true);
    must(k.pub_verify, true, "public CKA_VERIFY", false);
    must(k.pub_encrypt, false, "public CKA_ENCRYPT", true);
    must(k.pub_wrap, false, "public CKA_WRAP", true);
    must(k.pub_derive, false, "public CKA_DERIVE", true);
    must(k.pub_token, true, "public CKA_TOKEN", false);
    return out;
}

namespace {

// Finds the private and public objects of a label; they must be exactly one each, same CKA_ID.
struct Pair {
    CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    Bytes id;
};

// Keeps only the objects whose CKA_ID is `id`.
core::Status filter_by_id(Attempt& a, std::vector<CK_OBJECT_HANDLE>& objs, const Bytes& id) {
    std::vector<CK_OBJECT_HANDLE> kept;
    for (CK_OBJECT_HANDLE o : objs) {
        auto got = get_bytes(a, o, CKA_ID);
        if (!got) return std::move(got).error();
        if (*got && **got == id) kept.push_back(o);
    }
    objs = std::move(kept);
    return {};
}

// id: when given, only the pair with that CKA_ID (several pairs may share a label).
core::Result<Pair> find_pair(Attempt& a, const std::string& label, bool need_private,
                             const Bytes* id = nullptr) {
    auto privs = find_by_label(a, CKO_PRIVATE_KEY, label);
    if (!privs) return std::move(privs).error();
    auto pubs = find_by_label(a, CKO_PUBLIC_KEY, label);
    if (!pubs) return std::move(pubs).error();
    if (id != nullptr) {
        if (auto st = filter_by_id(a, *privs, *id); !st) return st.error();
        if (auto st = filter_by_id(a, *pubs, *id); !st) return st.error();
    }
    if ((need_private && privs->empty()) || pubs->empty()) {
        return make_error(ErrorKind::not_found, "hsm.key_not_found",
                          "no key pair labelled " + label + " on the token");
    }
    if (privs->size() > 1 || pubs->size() > 1) {
        return make_error(ErrorKind::integrity, "hsm.key_ambiguous",
                          "more than one key object is labelled " + label);
    }
    Pair p;
    p.pub = pubs->front();
    auto pub_id = get_bytes(a, p.pub, CKA_ID);
    if (!pub_id) return std::move(pub_id).error();
    p.id = pub_id->value_or(Bytes{});
    if (!privs->empty()) {
        p.priv = privs->front();
        auto priv_id = get_bytes(a, p.priv, CKA_ID);
        if (!priv_id) return std::move(priv_id).error();
        if (priv_id->value_or(Bytes{}) != p.id) {
            return make_error(ErrorKind::integrity, "hsm.key_mismatch",
                              "private and public objects of " + label + " have different CKA_ID");
        }
    }
    return p;
}

core::Result<Algorithm> pair_algorithm(Attempt& a, const Pair& p, const std::string& label) {
    auto got = get_attributes(a, p.pub, {CKA_KEY_TYPE, CKA_EC_PARAMS});
    if (!got) return std::move(got).error();
    return algorithm_of(ulong_value((*got)[0]), (*got)[1], label);
}

// Checks attributes, exports the public key and self-tests: the common tail of generate and load.
core::Result<KeyRef> make_key_ref(TokenState& t, Attempt& a, const std::string& label,
                                  const Pair& found, Algorithm alg) {
    Pair p = found;
    auto attrs = read_key_attributes(a, p.priv, p.pub);
    if (!attrs) return std::move(attrs).error();
    auto violations = key_attribute_violations(*attrs);
    // SoftHSM's file store can answer an object's attributes with the class defaults (public
    // CKA_TOKEN false, CKA_ENCRYPT true, ...): a process that indexes the token directory
    // while an object file is still being written keeps an empty copy of that object. The
    // attributes a key was generated with cannot change, so find the pair again by label and
    // CKA_ID (a search matches only a copy that has them) and read again a few times before
    // judging the key (docs/hsm.md).
    for (int retry = 0; !violations.empty() && retry < 4; ++retry) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10 << retry));
        if (auto again = find_pair(a, label, true, &p.id); again) p = *again;
        attrs = read_key_attributes(a, p.priv, p.pub);
        if (!attrs) return std::move(attrs).error();
        violations = key_attribute_violations(*attrs);
        if (violations.empty() && t.options.log) {
            t.options.log("hsm: key " + label + " read back with default attributes; read " +
                          std::to_string(retry + 2) + " gave its own");
        }
    }
    if (!violations.empty()) {
        std::string why;
        for (const auto& v : violations) why += (why.empty() ? "" : "; ") + v;
        return make_error(ErrorKind::integrity, "hsm.key_attributes",
                          "key " + label + " is not a sensitive, non-extractable, sign-only " +
                              "token key: " + why);
    }
    auto pub = export_public(a, p.pub, alg);
    if (!pub) return std::move(pub).error();
    auto parsed = parse_key_label(label);
    if (!parsed) return std::move(parsed).error();

    KeyRef ref;
    ref.label = label;
    ref.name = parsed->first;
    ref.version = parsed->second;
    ref.algorithm = alg;
    ref.id = p.id;
    ref.handles = std::make_shared<KeyHandles>();
    ref.handles->priv = p.priv;
    ref.handles->pub = p.pub;
    ref.handles->epoch = t.epoch.load();

    // Self-test: sign a fresh random message in the HSM and verify it with OpenSSL.
    auto msg = crypto::random_bytes(32);
    if (!msg) return std::move(msg).error();
    CK_ULONG rsa_bytes = 0;
    if (alg == Algorithm::PS256) {
        rsa_bytes = static_cast<CK_ULONG>(pub->rsa_ne().first.size());
    }
    for (int tries = 0; tries < 2; ++tries) {
        int mode = t.pss_mode.load();
        auto m = mechanism_for(alg, *msg, mode, rsa_bytes);
        Bytes sig;
        const char* fn = nullptr;
        const CK_RV rv = sign_raw(a, p.priv, m, sig, &fn);
        if (rv == CKR_MECHANISM_INVALID && alg == Algorithm::PS256 && mode != 2) {
            t.pss_mode.store(2);
            continue;
        }
        if (rv != CKR_OK) return a.fail(fn, rv, "self-test signature with " + label);
        if (alg == Algorithm::PS256 && mode == 0) t.pss_mode.store(1);
        auto ok = pub->verify(*msg, sig);
        if (!ok) {
            return make_error(ErrorKind::integrity, "hsm.self_test",
                              "self-test of " + label +
                                  " failed: the token's signature does not verify (" +
                                  ok.error().message + ")");
        }
        break;
    }
    ref.public_key = std::make_shared<const crypto::PublicKey>(std::move(pub).value());
    return ref;
}

}  // namespace

CK_RV read_private_attribute(Token& token, const KeyRef& key, CK_ATTRIBUTE_TYPE type) {
    auto r = token.state().run<CK_RV>([&](Attempt& a) -> core::Result<CK_RV> {
        Bytes buf(4096);
        CK_ATTRIBUTE at{type, buf.data(), static_cast<CK_ULONG>(buf.size())};
        return LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, key.handles->priv.load(), &at,
                            CK_ULONG{1});
    });
    return r ? *r : CKR_GENERAL_ERROR;
}

}  // namespace detail

// ---- Token key operations ----

namespace {

// A key capability is for one key name (hsm.hpp); using it for another is a programming error
// of the caller, refused before the token is touched.
core::Status check_capability(const std::string& granted, const std::string& name,
                              std::string_view what) {
    if (granted == name) return core::ok_status();
    return make_error(ErrorKind::usage, "hsm.capability_mismatch",
                      "a capability for key \"" + granted + "\" cannot " + std::string(what) +
                          " key \"" + name + "\"");
}

}  // namespace

core::Result<KeyRef> Token::generate_key(const GenerateCapability& capability, unsigned version,
                                         Algorithm alg) {
    const std::string& name = capability.key();
    auto label = key_label(name, version);
    if (!label) return std::move(label).error();
    auto& t = *state_;
    std::lock_guard write(t.write_mu);  // the label search below precedes the write
    return t.run<KeyRef>([&](Attempt& a) -> core::Result<KeyRef> {
        // Refuse an existing label of any class: one label names one key version forever.
        CK_ATTRIBUTE by_label[] = {attr_str(CKA_LABEL, *label)};
        auto existing = detail::find_objects(a, by_label, 1, "checking label " + *label);
        if (!existing) return std::move(existing).error();
        if (!existing->empty()) {
            return make_error(ErrorKind::conflict, "hsm.label_exists",
                              "the token already holds an object labelled " + *label);
        }
        // CKA_ID from the token's RNG (as Boulder's ceremony tool does).
        Bytes id(kIdLength);
        CK_RV rv = LICENTRA_P11(a.fl, C_GenerateRandom, a.session, id.data(),
                                static_cast<CK_ULONG>(id.size()));
        if (rv != CKR_OK) return a.fail("C_GenerateRandom", rv, "generating a CKA_ID");

        std::vector<CK_ATTRIBUTE> pub = {
            attr(CKA_TOKEN, kTrue),           attr(CKA_PRIVATE, kFalse),   attr(CKA_VERIFY, kTrue),
            attr(CKA_ENCRYPT, kFalse),        attr(CKA_WRAP, kFalse),      attr(CKA_DERIVE, kFalse),
            attr(CKA_VERIFY_RECOVER, kFalse), attr_str(CKA_LABEL, *label), attr_bytes(CKA_ID, id),
        };
        std::vector<CK_ATTRIBUTE> priv = {
            attr(CKA_TOKEN, kTrue),        attr(CKA_PRIVATE, kTrue), attr(CKA_SENSITIVE, kTrue),
            attr(CKA_EXTRACTABLE, kFalse), attr(CKA_SIGN, kTrue),    attr(CKA_DECRYPT, kFalse),
            attr(CKA_UNWRAP, kFalse),      attr(CKA_DERIVE, kFalse), attr(CKA_SIGN_RECOVER, kFalse),
            attr_str(CKA_LABEL, *label),   attr_bytes(CKA_ID, id),
        };
        CK_MECHANISM mech{};
        switch (alg) {
            case Algorithm::EdDSA:
                mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
                pub.push_back(attr_bytes(CKA_EC_PARAMS, kOidEd25519));
                break;
            case Algorithm::ES256:
                mech.mechanism = CKM_EC_KEY_PAIR_GEN;
                pub.push_back(attr_bytes(CKA_EC_PARAMS, kOidP256));
                break;
            case Algorithm::ES384:
                mech.mechanism = CKM_EC_KEY_PAIR_GEN;
                pub.push_back(attr_bytes(CKA_EC_PARAMS, kOidP384));
                break;
            case Algorithm::PS256:
            default:
                mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
                pub.push_back(attr(CKA_MODULUS_BITS, kRsaBits));
                pub.push_back(attr_bytes(CKA_PUBLIC_EXPONENT, kRsaExponent));
                break;
        }
        detail::Pair p;
        p.id = id;
        rv = LICENTRA_P11(a.fl, C_GenerateKeyPair, a.session, &mech, pub.data(),
                          static_cast<CK_ULONG>(pub.size()), priv.data(),
                          static_cast<CK_ULONG>(priv.size()), &p.pub, &p.priv);
        if (rv != CKR_OK) {
            return a.fail("C_GenerateKeyPair", rv,
                          "generating " + algorithm_name(alg) + " key " + *label);
        }
        auto ref = detail::make_key_ref(t, a, *label, p, alg);
        if (!ref) {
            // A key that fails its read-back or self-test must not stay on the token.
            (void)LICENTRA_P11(a.fl, C_DestroyObject, a.session, p.priv);
            (void)LICENTRA_P11(a.fl, C_DestroyObject, a.session, p.pub);
            if (ref.error().code == "hsm.key_attributes") {
                // Still the class defaults after the re-reads: the module's view of objects it
                // just wrote (docs/hsm.md), a passing fault. The pair is gone; the caller may
                // generate again (a rotation stays pending; its version number stays taken).
                return make_error(ErrorKind::hsm_unavailable, "hsm.key_readback",
                                  ref.error().message + "; the new pair was destroyed");
            }
        }
        return ref;
    });
}

core::Result<KeyRef> Token::load_key(const std::string& name, unsigned version) {
    auto label = key_label(name, version);
    if (!label) return std::move(label).error();
    return load_key(*label);
}

core::Result<KeyRef> Token::load_key(const std::string& label) { return load_key(label, nullptr); }

core::Result<KeyRef> Token::load_key(const std::string& label, const Bytes* id) {
    auto parsed = parse_key_label(label);
    if (!parsed) return std::move(parsed).error();
    auto& t = *state_;
    return t.run<KeyRef>([&](Attempt& a) -> core::Result<KeyRef> {
        auto p = detail::find_pair(a, label, true, id);
        if (!p) return std::move(p).error();
        auto alg = detail::pair_algorithm(a, *p, label);
        if (!alg) return std::move(alg).error();
        return detail::make_key_ref(t, a, label, *p, *alg);
    });
}

core::Result<bool> Token::label_exists(const std::string& label) {
    return state_->run<bool>([&](Attempt& a) -> core::Result<bool> {
        CK_ATTRIBUTE by_label[] = {attr_str(CKA_LABEL, label)};
        auto found = detail::find_objects(a, by_label, 1, "checking label " + label);
        if (!found) return std::move(found).error();
        return !found->empty();
    });
}

core::Result<crypto::PublicKey> Token::public_key(const std::string& label, const Bytes* id) {
    auto parsed = parse_key_label(label);
    if (!parsed) return std::move(parsed).error();
    return state_->run<crypto::PublicKey>([&](Attempt& a) -> core::Result<crypto::PublicKey> {
        auto p = detail::find_pair(a, label, false, id);
        if (!p) return std::move(p).error();
        auto alg = detail::pair_algorithm(a, *p, label);
        if (!alg) return std::move(alg).error();
        return export_public(a, p->pub, *alg);
    });
}

namespace {

// Every key object of class `cls` on the token, in one search.
core::Result<std::vector<CK_OBJECT_HANDLE>> objects_of_class(Attempt& a, CK_OBJECT_CLASS cls) {
    CK_ATTRIBUTE tmpl[] = {attr(CKA_CLASS, cls)};
    return detail::find_objects(a, tmpl, 1, "listing keys");
}

}  // namespace

core::Result<std::vector<KeyInfo>> Token::list_keys(const std::string& prefix) {
    return state_->run<std::vector<KeyInfo>>([&](Attempt& a) -> core::Result<std::vector<KeyInfo>> {
        // Keyed by label and CKA_ID: several pairs may share a label (docs/adr/0004).
        std::map<std::pair<std::string, std::string>, KeyInfo> by_label;
        for (CK_OBJECT_CLASS cls : {CKO_PUBLIC_KEY, CKO_PRIVATE_KEY}) {
            const bool pub = cls == CKO_PUBLIC_KEY;
            auto objs = objects_of_class(a, cls);
            if (!objs) return std::move(objs).error();
            for (CK_OBJECT_HANDLE o : *objs) {
                auto got = pub ? detail::get_attributes(
                                     a, o, {CKA_LABEL, CKA_ID, CKA_KEY_TYPE, CKA_EC_PARAMS})
                               : detail::get_attributes(a, o, {CKA_LABEL, CKA_ID});
                if (!got && got.error().code == "hsm.object_gone") continue;  // destroyed meanwhile
                if (!got) return std::move(got).error();
                const auto& lab = (*got)[0];
                if (!lab) continue;
                std::string label(core::as_chars(*lab));
                if (label.rfind(prefix, 0) != 0) continue;
                auto parsed = parse_key_label(label);
                if (!parsed) continue;  // not one of ours
                const auto& id = (*got)[1];
                const std::string id_hex = id ? core::hex_encode(*id) : std::string();
                KeyInfo& info = by_label[{label, id_hex}];
                info.label = label;
                info.name = parsed->first;
                info.version = parsed->second;
                info.id_hex = id_hex;
                if (!pub) {
                    info.has_private = true;
                    continue;
                }
                info.has_public = true;
                auto alg = algorithm_of(detail::ulong_value((*got)[2]), (*got)[3], label);
                if (alg) info.algorithm = *alg;
            }
        }
        std::vector<KeyInfo> out;
        for (auto& [label, info] : by_label) out.push_back(std::move(info));
        return out;
    });
}

core::Result<std::vector<core::Result<crypto::PublicKey>>> Token::public_keys(
    const std::vector<std::pair<std::string, Bytes>>& pairs) {
    using Out = std::vector<core::Result<crypto::PublicKey>>;
    for (const auto& [label, id] : pairs) {
        if (auto parsed = parse_key_label(label); !parsed) return std::move(parsed).error();
    }
    return state_->run<Out>([&](Attempt& a) -> core::Result<Out> {
        std::map<std::pair<std::string, Bytes>, std::size_t> wanted;
        for (std::size_t i = 0; i < pairs.size(); ++i) wanted.emplace(pairs[i], i);
        // Per pair asked for: the attributes of its public objects, and its private objects.
        struct Found {
            std::vector<std::vector<std::optional<Bytes>>> pubs;
            std::size_t privs = 0;
        };
        std::vector<Found> found(pairs.size());
        bool vanished = false;  // an object disappeared between the search and its read
        for (CK_OBJECT_CLASS cls : {CKO_PUBLIC_KEY, CKO_PRIVATE_KEY}) {
            const bool pub = cls == CKO_PUBLIC_KEY;
            auto objs = objects_of_class(a, cls);
            if (!objs) return std::move(objs).error();
            for (CK_OBJECT_HANDLE o : *objs) {
                auto got =
                    pub ? detail::get_attributes(a, o,
                                                 {CKA_LABEL, CKA_ID, CKA_KEY_TYPE, CKA_EC_PARAMS,
                                                  CKA_EC_POINT, CKA_MODULUS, CKA_PUBLIC_EXPONENT})
                        : detail::get_attributes(a, o, {CKA_LABEL, CKA_ID});
                if (!got && got.error().code == "hsm.object_gone") {
                    vanished = true;
                    continue;
                }
                if (!got) return std::move(got).error();
                // An object without CKA_ID matches no id (as in find_pair).
                if (!(*got)[0] || !(*got)[1]) continue;
                auto it = wanted.find({std::string(core::as_chars(*(*got)[0])), *(*got)[1]});
                if (it == wanted.end()) continue;
                if (pub) {
                    found[it->second].pubs.push_back(std::move(*got));
                } else {
                    ++found[it->second].privs;
                }
            }
        }
        Out out;
        out.reserve(pairs.size());
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            const std::string& label = pairs[i].first;
            const auto& f = found[i];
            if (f.pubs.empty() && vanished) {
                out.emplace_back(make_error(ErrorKind::not_found, "hsm.object_gone",
                                            "an object changed while it was read"));
            } else if (f.pubs.empty()) {
                out.emplace_back(make_error(ErrorKind::not_found, "hsm.key_not_found",
                                            "no key pair labelled " + label + " on the token"));
            } else if (f.pubs.size() > 1 || f.privs > 1) {
                out.emplace_back(make_error(ErrorKind::integrity, "hsm.key_ambiguous",
                                            "more than one key object is labelled " + label));
            } else {
                const auto& v = f.pubs.front();
                auto alg = algorithm_of(detail::ulong_value(v[2]), v[3], label);
                if (!alg) {
                    out.emplace_back(std::move(alg).error());
                } else {
                    out.push_back(public_from(*alg, v[5], v[6], v[4]));
                }
            }
        }
        return out;
    });
}

core::Status Token::destroy_private_key(const DestroyCapability& capability,
                                        const std::string& label, const Bytes* id) {
    auto parsed = parse_key_label(label);
    if (!parsed) return std::move(parsed).error();
    if (auto st = check_capability(capability.key(), parsed->first, "destroy"); !st) return st;
    std::lock_guard write(state_->write_mu);
    return detail::to_status(
        state_->run<std::monostate>([&](Attempt& a) -> core::Result<std::monostate> {
            auto privs = detail::find_by_label(a, CKO_PRIVATE_KEY, label);
            if (!privs) return std::move(privs).error();
            if (id != nullptr) {
                if (auto st = detail::filter_by_id(a, *privs, *id); !st) return st.error();
            }
            if (privs->empty()) {
                return make_error(ErrorKind::not_found, "hsm.key_not_found",
                                  "no private key labelled " + label + " on the token");
            }
            for (CK_OBJECT_HANDLE h : *privs) {
                const CK_RV rv = LICENTRA_P11(a.fl, C_DestroyObject, a.session, h);
                if (rv != CKR_OK) return a.fail("C_DestroyObject", rv, "destroying " + label);
            }
            return std::monostate{};
        }));
}

namespace {

// The signing path of sign() and self_test().
core::Result<Bytes> sign_with(detail::TokenState& t, const KeyRef& key, ByteView message) {
    if (!key.handles || !key.public_key) {
        return make_error(ErrorKind::usage, "hsm.key_ref", "empty key reference");
    }
    const CK_ULONG rsa_bytes = key.algorithm == Algorithm::PS256
                                   ? static_cast<CK_ULONG>(key.public_key->rsa_ne().first.size())
                                   : 0;
    auto op = [&](Attempt& a) -> core::Result<Bytes> {
        auto& h = *key.handles;
        bool refound = false;
        for (;;) {
            // Handles found before the last re-login may be stale: find the key once more.
            if (h.epoch.load() != t.epoch.load() || h.priv.load() == CK_INVALID_HANDLE) {
                const auto epoch = t.epoch.load();
                auto privs = detail::find_by_label(a, CKO_PRIVATE_KEY, key.label);
                if (!privs) return std::move(privs).error();
                CK_OBJECT_HANDLE found = CK_INVALID_HANDLE;
                for (CK_OBJECT_HANDLE o : *privs) {
                    auto id = detail::get_bytes(a, o, CKA_ID);
                    if (!id && id.error().code == "hsm.object_gone") continue;  // in flux
                    if (!id) return std::move(id).error();
                    if (*id && **id == key.id) found = o;
                }
                if (found == CK_INVALID_HANDLE) {
                    return make_error(
                        ErrorKind::not_found, "hsm.key_not_found",
                        "the private key " + key.label + " is no longer on the token");
                }
                h.priv = found;
                h.epoch = epoch;
                refound = true;
            }
            const int mode = t.pss_mode.load();
            auto m = mechanism_for(key.algorithm, message, mode, rsa_bytes);
            Bytes sig;
            const char* fn = nullptr;
            const CK_RV rv = sign_raw(a, h.priv.load(), m, sig, &fn);
            if (rv == CKR_OK) return sig;
            if (rv == CKR_MECHANISM_INVALID && key.algorithm == Algorithm::PS256 && mode != 2) {
                t.pss_mode.store(2);
                continue;
            }
            if (classify(rv) == Fault::stale_handle && !refound) {
                // Re-resolve by label and CKA_ID (the token may have reloaded its objects).
                t.faults.fault("signing: hsm.object_gone", std::string(fn) + " returned " +
                                                               rv_name(rv) + " for " + key.label +
                                                               "; looking the key up again");
                h.priv = CK_INVALID_HANDLE;
                continue;
            }
            return a.fail(fn, rv, "signing with " + key.label);
        }
    };
    return t.run<Bytes>(op, /*signing=*/true);
}

}  // namespace

core::Result<Bytes> Token::sign(const SignCapability& capability, const KeyRef& key,
                                ByteView message) {
    if (auto st = check_capability(capability.key(), key.name, "sign with"); !st) {
        return st.error();
    }
    return sign_with(*state_, key, message);
}

core::Status Token::self_test(const KeyRef& key) {
    auto msg = crypto::random_bytes(32);
    if (!msg) return std::move(msg).error();
    auto sig = sign_with(*state_, key, *msg);
    if (!sig) return std::move(sig).error();
    if (auto ok = key.public_key->verify(*msg, *sig); !ok) {
        return make_error(ErrorKind::integrity, "hsm.self_test",
                          "self-test of " + key.label +
                              " failed: the token's signature does not verify (" +
                              ok.error().message + ")");
    }
    return core::ok_status();
}

}  // namespace licentra::hsm
