// Checkpoints in the C2SP tlog-checkpoint format (https://c2sp.org/tlog-checkpoint), signed as
// C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 (signature type 0x01) or ECDSA
// P-256 (type 0x02), so any signed-note verifier can check them with our verifier key.
//
//   <origin>\n<tree size, decimal>\n<base64 root hash>\n
//   \n
//   — <key name> <base64(4-byte key hash || signature)>\n
//
// Ed25519: signature = 64 bytes (RFC 8032), key hash = first 4 bytes of
//   SHA-256(<key name> || "\n" || 0x01 || <32-byte public key>),
//   verifier key = "<key name>+<8 hex key hash>+<base64(0x01 || public key)>".
// ECDSA P-256 (as github.com/transparency-dev/witness): signature = ASN.1 DER over SHA-256 of the
//   note text, key hash = first 4 bytes of SHA-256(<DER SubjectPublicKeyInfo>),
//   verifier key = "<key name>+<8 hex key hash>+<base64(0x02 || DER SubjectPublicKeyInfo)>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.hpp"
#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/public_key.hpp"
#include "crypto/signer.hpp"

namespace licentra::audit {

struct Checkpoint {
    std::string origin;
    std::uint64_t size = 0;
    Hash root{};
    bool operator==(const Checkpoint&) const = default;
};

// Origins and key names: 1-255 printable ASCII characters without spaces (and without '+' for
// key names, which the verifier key syntax reserves).
[[nodiscard]] bool is_valid_origin(std::string_view origin) noexcept;
[[nodiscard]] bool is_valid_key_name(std::string_view name) noexcept;

// "<origin>\n<size>\n<base64 root>\n". Precondition: is_valid_origin(c.origin).
[[nodiscard]] std::string checkpoint_body(const Checkpoint& c);
// Strict: exactly three lines, decimal size without leading zeros, base64 of 32 bytes. Extension
// lines are rejected (this log never writes them). Error integrity "audit.checkpoint_malformed".
[[nodiscard]] core::Result<Checkpoint> parse_checkpoint_body(std::string_view body);

struct NoteSignature {
    std::string key_name;
    std::uint32_t key_hash = 0;
    core::Bytes signature;  // without the 4-byte key hash
};

struct SignedNote {
    std::string text;  // the signed body, ending in '\n'
    std::vector<NoteSignature> signatures;
};

// Splits and syntax-checks a signed note as the signed-note spec (and Go's note.Open) does:
// valid UTF-8 without control characters other than '\n', body up to the last blank line,
// one or more "— name base64" lines, at most 100. Error integrity "audit.note_malformed".
[[nodiscard]] core::Result<SignedNote> parse_signed_note(std::string_view note);

// SHA-256(name || "\n" || 0x01 || public_key)[0:4], big-endian.
[[nodiscard]] std::uint32_t ed25519_key_hash(std::string_view key_name, core::ByteView public_key);

// SHA-256(DER SubjectPublicKeyInfo)[0:4], big-endian: the key hash of an ECDSA (0x02) key.
[[nodiscard]] std::uint32_t ecdsa_key_hash(core::ByteView spki_der);

// A note verifier for one Ed25519 or ECDSA P-256 key. Copyable; thread-safe for verify().
class NoteVerifier {
  public:
    // Parses "<name>+<hex hash>+<base64(0x01||Ed25519 key)>" or
    // "<name>+<hex hash>+<base64(0x02||DER SPKI of a P-256 key)>", checking the hash. Error usage
    // "audit.verifier_key_invalid".
    static core::Result<NoteVerifier> parse(std::string_view vkey);
    // From an Ed25519 or P-256 (crypto::Algorithm::ES256) public key. Error usage
    // "audit.signer_invalid" for another key type or an invalid name.
    static core::Result<NoteVerifier> from_public_key(std::string key_name,
                                                      const crypto::PublicKey& key);

    [[nodiscard]] const std::string& key_name() const noexcept { return name_; }
    [[nodiscard]] std::uint32_t key_hash() const noexcept { return hash_; }
    // The signed-note signature type: 0x01 Ed25519, 0x02 ECDSA.
    [[nodiscard]] std::uint8_t signature_type() const noexcept { return type_; }
    // The verifier key string (no trailing newline).
    [[nodiscard]] std::string to_string() const;

    // Checks that note is a well-formed signed note carrying a valid signature by this key
    // (signatures by other keys are ignored, as the signed-note spec requires) and returns the
    // parsed checkpoint body. Errors (integrity): "audit.note_malformed",
    // "audit.checkpoint_malformed", "audit.checkpoint_unsigned" (no signature by this key),
    // "audit.checkpoint_signature_invalid".
    [[nodiscard]] core::Result<Checkpoint> open_checkpoint(std::string_view note) const;

  private:
    NoteVerifier() = default;
    std::string name_;
    std::uint32_t hash_ = 0;
    std::uint8_t type_ = 0x01;
    core::Bytes raw_key_;  // Ed25519: 32 bytes; ECDSA: DER SubjectPublicKeyInfo
    std::shared_ptr<const crypto::PublicKey> key_;
};

// Signs checkpoints through a crypto::Signer (the HSM audit key in production). The signer
// must outlive this object. sign() is as thread-safe as the Signer.
class CheckpointSigner {
  public:
    // Error usage "audit.signer_invalid" unless signer is Ed25519 or ES256 (ECDSA P-256, raw
    // r||s signatures, converted to DER here) and key_name is valid.
    static core::Result<CheckpointSigner> create(std::string key_name, crypto::Signer& signer);

    // The complete signed note for c. Errors: the Signer's, or usage for an invalid origin.
    [[nodiscard]] core::Result<std::string> sign(const Checkpoint& c) const;
    [[nodiscard]] const NoteVerifier& verifier() const noexcept { return verifier_; }

  private:
    CheckpointSigner(crypto::Signer& signer, NoteVerifier verifier)
        : signer_(&signer), verifier_(std::move(verifier)) {}
    crypto::Signer* signer_;
    NoteVerifier verifier_;
};

}  // namespace licentra::audit
