// ES256 (ECDSA P-256) checkpoints: C2SP signed-note signature type 0x02 — key hash over the DER
// SubjectPublicKeyInfo, ASN.1 DER signatures over SHA-256 of the note text.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit/checkpoint.hpp"
#include "audit/log.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "crypto/digest.hpp"
#include "crypto/ecdsa.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

// Signs as the HSM does for CKM_ECDSA: raw r||s (crypto::Signer's JWS form).
class OsslP256Signer final : public crypto::Signer {
  public:
    OsslP256Signer()
        : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")), public_key_(make_public()) {}
    crypto::Algorithm algorithm() const override { return crypto::Algorithm::ES256; }
    const crypto::PublicKey& public_key() const override { return public_key_; }
    core::Result<core::Bytes> sign(core::ByteView message) override {
        crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
        std::size_t len = 0;
        if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
            EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
            return core::make_error(core::ErrorKind::internal, "test.sign");
        }
        core::Bytes der(len);
        if (EVP_DigestSign(ctx.get(), der.data(), &len, message.data(), message.size()) != 1) {
            return core::make_error(core::ErrorKind::internal, "test.sign");
        }
        der.resize(len);
        return crypto::ecdsa_der_to_raw(der, 32);
    }
    core::Bytes spki() const {
        unsigned char* out = nullptr;
        const int n = i2d_PUBKEY(key_.get(), &out);
        core::Bytes der(out, out + n);
        OPENSSL_free(out);
        return der;
    }

  private:
    crypto::PublicKey make_public() const {
        return std::move(crypto::PublicKey::from_spki_der(crypto::Algorithm::ES256, spki()))
            .value();
    }
    crypto::EvpPkeyPtr key_;
    crypto::PublicKey public_key_;
};

// Offset of the key in "<name>+<hash>+<key>" (base64 may itself contain '+').
std::size_t key_offset(const std::string& vkey) { return vkey.find('+', vkey.find('+') + 1) + 1; }

Checkpoint sample() {
    Checkpoint c;
    c.origin = "licentra.example/audit/node-1";
    c.size = 42;
    c.root.fill(0x17);
    return c;
}

std::string flip_in_signature(const std::string& note) {
    const auto sp = note.rfind(' ');
    auto raw = *core::base64_decode(std::string_view(note).substr(sp + 1, note.size() - sp - 2));
    raw.back() ^= 0x01;
    return note.substr(0, sp + 1) + core::base64_encode(raw) + "\n";
}

TEST(CheckpointEs256, SignsAsSignatureType2WithADerSignatureAndVerifies) {
    OsslP256Signer signer;
    auto cs = CheckpointSigner::create("licentra.example/audit", signer);
    ASSERT_TRUE(cs.ok()) << cs.error().to_string();
    const NoteVerifier& v = cs->verifier();
    EXPECT_EQ(v.signature_type(), 0x02);
    // Key hash = SHA-256(DER SPKI)[:4]; verifier key = name+hash+base64(0x02 || SPKI).
    const core::Bytes spki = signer.spki();
    const auto d = crypto::sha256(spki);
    EXPECT_EQ(v.key_hash(), (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) |
                                (std::uint32_t{d[2]} << 8) | std::uint32_t{d[3]});
    EXPECT_EQ(v.key_hash(), ecdsa_key_hash(spki));
    core::Bytes typed{0x02};
    typed.insert(typed.end(), spki.begin(), spki.end());
    const std::string vkey = v.to_string();
    EXPECT_EQ(vkey.substr(key_offset(vkey)), core::base64_encode(typed));

    auto note = cs->sign(sample());
    ASSERT_TRUE(note.ok()) << note.error().to_string();
    auto parsed = parse_signed_note(*note);
    ASSERT_TRUE(parsed.ok());
    ASSERT_EQ(parsed->signatures.size(), 1u);
    const core::Bytes& sig = parsed->signatures[0].signature;
    EXPECT_EQ(sig[0], 0x30);  // DER SEQUENCE, not raw r||s
    EXPECT_TRUE(crypto::ecdsa_der_to_raw(sig, 32).ok());
    // The DER signature verifies with OpenSSL over the note text (what a Go verifier does).
    EXPECT_TRUE(signer.public_key()
                    .verify(core::as_bytes(parsed->text), *crypto::ecdsa_der_to_raw(sig, 32))
                    .ok());

    auto reparsed = NoteVerifier::parse(vkey);
    ASSERT_TRUE(reparsed.ok()) << reparsed.error().to_string();
    EXPECT_EQ(reparsed->to_string(), vkey);
    auto opened = reparsed->open_checkpoint(*note);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    EXPECT_EQ(*opened, sample());
}

TEST(CheckpointEs256, TamperedNotesAndForeignKeysAreRejected) {
    OsslP256Signer signer;
    auto cs = CheckpointSigner::create("licentra.example/audit", signer);
    ASSERT_TRUE(cs.ok());
    const std::string note = *cs->sign(sample());
    const NoteVerifier& v = cs->verifier();

    std::string body_changed = note;
    body_changed[body_changed.find("42")] = '3';
    EXPECT_EQ(v.open_checkpoint(body_changed).error().code, "audit.checkpoint_signature_invalid");
    EXPECT_EQ(v.open_checkpoint(flip_in_signature(note)).error().code,
              "audit.checkpoint_signature_invalid");

    // Another P-256 key under the same name: its key hash differs, so the note is unsigned.
    OsslP256Signer other;
    auto other_cs = CheckpointSigner::create("licentra.example/audit", other);
    EXPECT_EQ(other_cs->verifier().open_checkpoint(note).error().code, "audit.checkpoint_unsigned");
    // An Ed25519 verifier does not accept an ECDSA note, nor the other way round.
    testing::OsslEd25519Signer ed;
    auto ed_cs = CheckpointSigner::create("licentra.example/audit", ed);
    EXPECT_EQ(ed_cs->verifier().open_checkpoint(note).error().code, "audit.checkpoint_unsigned");
    EXPECT_EQ(v.open_checkpoint(*ed_cs->sign(sample())).error().code, "audit.checkpoint_unsigned");
}

TEST(CheckpointEs256, VerifierKeysWithBadTypeKeyOrHashAreRefused) {
    OsslP256Signer signer;
    auto cs = CheckpointSigner::create("licentra.example/audit", signer);
    const std::string vkey = cs->verifier().to_string();
    const auto at = key_offset(vkey);
    auto key = *core::base64_decode(std::string_view(vkey).substr(at));
    auto with_key = [&](core::Bytes k) { return vkey.substr(0, at) + core::base64_encode(k); };

    core::Bytes unknown_type = key;
    unknown_type[0] = 0x03;
    EXPECT_EQ(NoteVerifier::parse(with_key(unknown_type)).error().code,
              "audit.verifier_key_invalid");
    core::Bytes as_ed25519 = key;
    as_ed25519[0] = 0x01;
    EXPECT_FALSE(NoteVerifier::parse(with_key(as_ed25519)).ok());
    core::Bytes truncated(key.begin(), key.end() - 1);
    EXPECT_FALSE(NoteVerifier::parse(with_key(truncated)).ok());
    std::string wrong_hash = vkey;
    wrong_hash[wrong_hash.find('+') + 1] = wrong_hash[wrong_hash.find('+') + 1] == '0' ? '1' : '0';
    EXPECT_FALSE(NoteVerifier::parse(wrong_hash).ok());
}

TEST(CheckpointEs256, AnEs256LogVerifiesOfflineAndDetectsAReplacedCheckpoint) {
    test::TempDir tmp;
    OsslP256Signer signer;
    LogOptions o = testing::test_options(tmp.path() / "log");
    o.checkpoint_every = 3;
    {
        auto log = AuditLog::open(o, {&signer, nullptr, nullptr});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        for (std::uint64_t i = 0; i < 7; ++i) {
            ASSERT_TRUE((*log)->append(testing::sample_entry(i)).ok());
        }
        ASSERT_TRUE((*log)->close().ok());
    }
    auto v = NoteVerifier::parse(
        NoteVerifier::from_public_key("licentra.example/audit", signer.public_key())->to_string());
    ASSERT_TRUE(v.ok());
    VerifyOptions vo;
    vo.dir = o.dir;
    VerifyReport report = verify_log_directory(vo, *v);
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.size, 7u);

    // Reopening the log checks every checkpoint with the ES256 key.
    {
        auto log = AuditLog::open(o, {&signer, nullptr, nullptr});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
    }
    const auto cp_file = o.dir / "checkpoints";
    std::string cps = test::read_file(cp_file);
    const auto last_sig = cps.rfind(' ');
    const auto line_end = cps.find('\n', last_sig);
    auto raw =
        *core::base64_decode(std::string_view(cps).substr(last_sig + 1, line_end - last_sig - 1));
    raw.back() ^= 0x01;
    cps = cps.substr(0, last_sig + 1) + core::base64_encode(raw) + cps.substr(line_end);
    test::write_file(cp_file, cps);
    report = verify_log_directory(vo, *v);
    EXPECT_EQ(report.status, VerifyStatus::tampered);
}

}  // namespace
}  // namespace licentra::audit
