#include "audit/checkpoint.hpp"

#include <algorithm>
#include <charconv>

#include "core/names.hpp"
#include "crypto/digest.hpp"
#include "crypto/ecdsa.hpp"

namespace licentra::audit {

namespace {

using core::ErrorKind;
using core::make_error;

// U+2014 EM DASH followed by a space: the signature line prefix of the signed-note format.
constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";
constexpr std::size_t kMaxSignatures = 100;
// signed-note "Signature types": 0x01 Ed25519; 0x02 ECDSA as implemented by
// github.com/transparency-dev/witness ("the key ID for these signatures is the truncated SHA-256
// hash of the DER encoded public key in SPKI format"; the signature is ASN.1 DER over SHA-256
// of the note text). Only NIST P-256 is accepted ("SHOULD be NIST P-256").
constexpr std::uint8_t kAlgEd25519 = 0x01;
constexpr std::uint8_t kAlgEcdsa = 0x02;
constexpr std::size_t kP256FieldBytes = 32;

std::uint32_t first_four(const crypto::Sha256Digest& d) {
    return (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) |
           std::uint32_t{d[3]};
}

core::Error note_malformed(std::string message) {
    return make_error(ErrorKind::integrity, "audit.note_malformed", std::move(message));
}
core::Error body_malformed(std::string message) {
    return make_error(ErrorKind::integrity, "audit.checkpoint_malformed", std::move(message));
}

bool printable_no_space(std::string_view s) {
    if (s.empty() || s.size() > 255) return false;
    for (char c : s) {
        if (c < 0x21 || c > 0x7e) return false;
    }
    return true;
}

// Valid UTF-8 (shortest form, no surrogates, <= U+10FFFF) with no ASCII control character
// other than '\n' — signed-note: "The note text ... MUST NOT contain ASCII control characters
// other than newline".
bool valid_note_text(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if (c < 0x20 && c != '\n') return false;
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (i + len > s.size()) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

bool valid_note_key_name(std::string_view name) {
    // Go's isValidName: non-empty, no Unicode space, no '+'. We sign only with ASCII names but
    // parse what the spec allows except ASCII spaces (which the line syntax splits on).
    if (name.empty()) return false;
    for (char c : name) {
        if (c == ' ' || c == '+' || c == '\t' || c == '\n') return false;
    }
    return true;
}

}  // namespace

bool is_valid_origin(std::string_view origin) noexcept { return core::is_valid_log_origin(origin); }

bool is_valid_key_name(std::string_view name) noexcept {
    return printable_no_space(name) && name.find('+') == std::string_view::npos;
}

std::string checkpoint_body(const Checkpoint& c) {
    return c.origin + "\n" + std::to_string(c.size) + "\n" + core::base64_encode(c.root) + "\n";
}

core::Result<Checkpoint> parse_checkpoint_body(std::string_view body) {
    std::vector<std::string_view> lines;
    while (!body.empty()) {
        auto nl = body.find('\n');
        if (nl == std::string_view::npos) return body_malformed("body does not end in a newline");
        lines.push_back(body.substr(0, nl));
        body.remove_prefix(nl + 1);
    }
    if (lines.size() < 3) return body_malformed("body needs origin, size and root hash lines");
    if (lines.size() > 3) return body_malformed("unexpected extension line in checkpoint body");
    Checkpoint c;
    if (!is_valid_origin(lines[0])) return body_malformed("invalid origin line");
    c.origin = std::string(lines[0]);
    // tlog-checkpoint: tree size "in ASCII decimal ... without leading zeroes".
    const std::string_view size = lines[1];
    if (size.empty() || size.size() > 20 || (size.size() > 1 && size[0] == '0')) {
        return body_malformed("invalid tree size");
    }
    auto [ptr, ec] = std::from_chars(size.data(), size.data() + size.size(), c.size);
    if (ec != std::errc() || ptr != size.data() + size.size()) {
        return body_malformed("invalid tree size");
    }
    auto root = core::base64_decode(lines[2]);
    if (!root || root->size() != 32) return body_malformed("root hash is not base64 of 32 bytes");
    c.root = *hash_from_bytes(*root);
    return c;
}

core::Result<SignedNote> parse_signed_note(std::string_view note) {
    if (note.size() > 1 << 20) return note_malformed("note exceeds 1 MiB");
    if (!valid_note_text(note)) return note_malformed("invalid UTF-8 or control character");
    // "The signatures block is separated from the text by an empty line": Go splits at the
    // last "\n\n".
    const auto split = note.rfind("\n\n");
    if (split == std::string_view::npos) return note_malformed("no signature block");
    SignedNote out;
    out.text = std::string(note.substr(0, split + 1));
    std::string_view sigs = note.substr(split + 2);
    if (sigs.empty() || sigs.back() != '\n') return note_malformed("no signature line");
    while (!sigs.empty()) {
        const auto nl = sigs.find('\n');
        std::string_view line = sigs.substr(0, nl);
        sigs.remove_prefix(nl + 1);
        if (line.substr(0, kSigPrefix.size()) != kSigPrefix) {
            return note_malformed("signature line does not start with an em dash");
        }
        line.remove_prefix(kSigPrefix.size());
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos) return note_malformed("signature line lacks a space");
        const std::string_view name = line.substr(0, sp);
        const std::string_view b64 = line.substr(sp + 1);
        auto raw = core::base64_decode(b64);
        if (!valid_note_key_name(name) || b64.empty() || !raw || raw->size() < 5) {
            return note_malformed("invalid signature line");
        }
        if (out.signatures.size() == kMaxSignatures) return note_malformed("too many signatures");
        NoteSignature sig;
        sig.key_name = std::string(name);
        sig.key_hash = (std::uint32_t{(*raw)[0]} << 24) | (std::uint32_t{(*raw)[1]} << 16) |
                       (std::uint32_t{(*raw)[2]} << 8) | std::uint32_t{(*raw)[3]};
        sig.signature.assign(raw->begin() + 4, raw->end());
        out.signatures.push_back(std::move(sig));
    }
    return out;
}

std::uint32_t ed25519_key_hash(std::string_view key_name, core::ByteView public_key) {
    crypto::Sha256 h;
    h.update(core::as_bytes(key_name))
        .update(std::uint8_t{'\n'})
        .update(kAlgEd25519)
        .update(public_key);
    return first_four(h.finish());
}

std::uint32_t ecdsa_key_hash(core::ByteView spki_der) {
    return first_four(crypto::sha256(spki_der));
}

// ---- NoteVerifier ----------------------------------------------------------------------------

core::Result<NoteVerifier> NoteVerifier::parse(std::string_view vkey) {
    auto bad = [](std::string m) {
        return make_error(ErrorKind::usage, "audit.verifier_key_invalid", std::move(m));
    };
    const auto p1 = vkey.find('+');
    if (p1 == std::string_view::npos) return bad("expected <name>+<hash>+<key>");
    const auto p2 = vkey.find('+', p1 + 1);
    if (p2 == std::string_view::npos) return bad("expected <name>+<hash>+<key>");
    const std::string_view name = vkey.substr(0, p1);
    const std::string_view hash_hex = vkey.substr(p1 + 1, p2 - p1 - 1);
    const std::string_view key_b64 = vkey.substr(p2 + 1);
    if (!is_valid_key_name(name)) return bad("invalid key name");
    // C2SP signed-note §Signatures: the key ID is a uint32. Its text form in a verifier key,
    // <name>+<hash>+<keydata>, is golang.org/x/mod/sumdb/note's (NewVerifierKey writes
    // "%s+%08x+%s"): eight lower-case hex digits. One encoding per key, as for the SPKI below:
    // upper case is refused, so that to_string() gives back exactly the text that was parsed.
    if (hash_hex.size() != 8 || !std::all_of(hash_hex.begin(), hash_hex.end(), [](char c) {
            return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        })) {
        return bad("key hash must be 8 lower-case hex digits");
    }
    auto hash_bytes = core::hex_decode(hash_hex);
    if (!hash_bytes) return bad("key hash must be 8 lower-case hex digits");
    auto key = core::base64_decode(key_b64);
    if (!key || key->empty()) return bad("key must be base64 of a signature type byte and a key");
    NoteVerifier v;
    v.name_ = std::string(name);
    v.hash_ = (std::uint32_t{(*hash_bytes)[0]} << 24) | (std::uint32_t{(*hash_bytes)[1]} << 16) |
              (std::uint32_t{(*hash_bytes)[2]} << 8) | std::uint32_t{(*hash_bytes)[3]};
    const core::ByteView raw(key->data() + 1, key->size() - 1);
    std::uint32_t expected = 0;
    if ((*key)[0] == kAlgEd25519) {
        if (raw.size() != 32) return bad("key must be base64 of 0x01 || 32-byte Ed25519 key");
        auto pk = crypto::PublicKey::from_ed25519(raw);
        if (!pk) return bad("invalid Ed25519 public key");
        v.key_ = std::make_shared<const crypto::PublicKey>(std::move(pk).value());
        expected = ed25519_key_hash(name, raw);
    } else if ((*key)[0] == kAlgEcdsa) {
        auto pk = crypto::PublicKey::from_spki_der(crypto::Algorithm::ES256, raw);
        if (!pk) return bad("key must be base64 of 0x02 || DER SPKI of a P-256 ECDSA key");
        // One encoding per key: the key hash is over these exact bytes.
        const core::Bytes canonical = pk->spki_der();
        if (!std::equal(canonical.begin(), canonical.end(), raw.begin(), raw.end())) {
            return bad("ECDSA key is not the canonical DER SPKI encoding");
        }
        v.key_ = std::make_shared<const crypto::PublicKey>(std::move(pk).value());
        expected = ecdsa_key_hash(raw);
    } else {
        return bad("unknown signature type (0x01 Ed25519 and 0x02 ECDSA P-256 are supported)");
    }
    if (v.hash_ != expected) return bad("key hash does not match the key");
    v.type_ = (*key)[0];
    v.raw_key_.assign(raw.begin(), raw.end());
    return v;
}

core::Result<NoteVerifier> NoteVerifier::from_public_key(std::string key_name,
                                                         const crypto::PublicKey& key) {
    if (key.algorithm() != crypto::Algorithm::EdDSA &&
        key.algorithm() != crypto::Algorithm::ES256) {
        return make_error(ErrorKind::usage, "audit.signer_invalid",
                          "checkpoint keys must be Ed25519 or ECDSA P-256");
    }
    if (!is_valid_key_name(key_name)) {
        return make_error(ErrorKind::usage, "audit.signer_invalid", "invalid checkpoint key name");
    }
    NoteVerifier v;
    if (key.algorithm() == crypto::Algorithm::EdDSA) {
        const core::Bytes raw = key.ed25519_raw();
        auto pk = crypto::PublicKey::from_ed25519(raw);
        if (!pk) return std::move(pk).error();
        v.type_ = kAlgEd25519;
        v.hash_ = ed25519_key_hash(key_name, raw);
        v.raw_key_ = raw;
        v.key_ = std::make_shared<const crypto::PublicKey>(std::move(pk).value());
    } else {
        const core::Bytes der = key.spki_der();
        auto pk = crypto::PublicKey::from_spki_der(crypto::Algorithm::ES256, der);
        if (!pk) return std::move(pk).error();
        v.type_ = kAlgEcdsa;
        v.hash_ = ecdsa_key_hash(der);
        v.raw_key_ = der;
        v.key_ = std::make_shared<const crypto::PublicKey>(std::move(pk).value());
    }
    v.name_ = std::move(key_name);
    return v;
}

std::string NoteVerifier::to_string() const {
    const std::uint8_t h[4] = {
        static_cast<std::uint8_t>(hash_ >> 24), static_cast<std::uint8_t>(hash_ >> 16),
        static_cast<std::uint8_t>(hash_ >> 8), static_cast<std::uint8_t>(hash_)};
    core::Bytes k{type_};
    k.insert(k.end(), raw_key_.begin(), raw_key_.end());
    return name_ + "+" + core::hex_encode(h) + "+" + core::base64_encode(k);
}

core::Result<Checkpoint> NoteVerifier::open_checkpoint(std::string_view note) const {
    auto parsed = parse_signed_note(note);
    if (!parsed) return std::move(parsed).error();
    bool verified = false;
    for (const NoteSignature& sig : parsed->signatures) {
        if (sig.key_name != name_ || sig.key_hash != hash_) continue;  // someone else's key
        bool valid = false;
        if (type_ == kAlgEcdsa) {
            // ASN.1 DER Ecdsa-Sig-Value, strictly parsed; PublicKey::verify takes raw r||s.
            auto raw = crypto::ecdsa_der_to_raw(sig.signature, kP256FieldBytes);
            valid = raw && key_->verify(core::as_bytes(parsed->text), *raw);
        } else {
            valid = static_cast<bool>(key_->verify(core::as_bytes(parsed->text), sig.signature));
        }
        if (!valid) {
            return make_error(ErrorKind::integrity, "audit.checkpoint_signature_invalid",
                              "checkpoint signature by " + name_ + " does not verify");
        }
        verified = true;
    }
    if (!verified) {
        return make_error(ErrorKind::integrity, "audit.checkpoint_unsigned",
                          "checkpoint carries no signature by " + name_);
    }
    return parse_checkpoint_body(parsed->text);
}

// ---- CheckpointSigner ------------------------------------------------------------------------

core::Result<CheckpointSigner> CheckpointSigner::create(std::string key_name,
                                                        crypto::Signer& signer) {
    if (signer.algorithm() != crypto::Algorithm::EdDSA &&
        signer.algorithm() != crypto::Algorithm::ES256) {
        return make_error(ErrorKind::usage, "audit.signer_invalid",
                          "checkpoint keys must be Ed25519 or ECDSA P-256");
    }
    auto v = NoteVerifier::from_public_key(std::move(key_name), signer.public_key());
    if (!v) return std::move(v).error();
    return CheckpointSigner(signer, std::move(v).value());
}

core::Result<std::string> CheckpointSigner::sign(const Checkpoint& c) const {
    if (!is_valid_origin(c.origin)) {
        return make_error(ErrorKind::usage, "audit.origin_invalid", "invalid checkpoint origin");
    }
    const std::string body = checkpoint_body(c);
    auto sig = signer_->sign(core::as_bytes(body));
    if (!sig) return std::move(sig).error();
    if (sig->size() != 64) {
        return make_error(ErrorKind::internal, "audit.signature_size",
                          "checkpoint signature is not 64 bytes (Ed25519, or ECDSA P-256 r||s)");
    }
    core::Bytes signature = std::move(sig).value();
    if (verifier_.signature_type() == kAlgEcdsa) {
        // The Signer returns raw r||s (JWS form); signed-note ECDSA carries DER.
        auto der = crypto::ecdsa_raw_to_der(signature, kP256FieldBytes);
        if (!der) return std::move(der).error();
        signature = std::move(der).value();
    }
    const std::uint32_t h = verifier_.key_hash();
    core::Bytes raw{static_cast<std::uint8_t>(h >> 24), static_cast<std::uint8_t>(h >> 16),
                    static_cast<std::uint8_t>(h >> 8), static_cast<std::uint8_t>(h)};
    raw.insert(raw.end(), signature.begin(), signature.end());
    return body + "\n" + std::string(kSigPrefix) + verifier_.key_name() + " " +
           core::base64_encode(raw) + "\n";
}

}  // namespace licentra::audit
