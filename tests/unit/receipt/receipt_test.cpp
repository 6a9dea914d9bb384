// The receipt format (C2SP tlog-proof with the entry as extra data) and its verification, by the
// audit module and through the product library (licentra::verify_receipt).
#include "audit/receipt.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/bytes.hpp"
#include "licentra/verify.hpp"
#include "support/test_support.hpp"
#include "unit/receipt/receipt_fixture.hpp"

namespace licentra::test {
namespace {

using audit::parse_receipt;
using audit::Receipt;

// Replaces the first occurrence of `from` in text.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

class Receipts : public ::testing::Test {
  protected:
    void SetUp() override {
        for (int i = 0; i < 6; ++i) log_.add_token("token-" + std::to_string(i));
        rotation_ = log_.add_other("key.rotate.request");
        index_ = log_.add_token(token_);
        for (int i = 0; i < 5; ++i) log_.add_token("later-" + std::to_string(i));
    }
    SignedLog log_;
    std::string token_ = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhY21lIn0.c2lnbmF0dXJl";
    std::uint64_t rotation_ = 0;
    std::uint64_t index_ = 0;
};

TEST_F(Receipts, FormatIsTheC2spTlogProofWithTheEntryAsExtraData) {
    const Receipt parts = log_.receipt_parts(index_);
    const std::string text = audit::format_receipt(parts);
    std::string expected = "c2sp.org/tlog-proof@v1\nextra " +
                           core::base64_encode(core::as_bytes(log_.line(index_))) + "\nindex " +
                           std::to_string(index_) + "\n";
    for (const auto& h : parts.proof) expected += core::base64_encode(h) + "\n";
    expected += "\n" + log_.note();
    EXPECT_EQ(text, expected);
    auto parsed = parse_receipt(text);
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    EXPECT_EQ(*parsed, parts);
    // Without extra data and without proof lines (a tree of one entry) it still round-trips.
    Receipt bare;
    bare.index = 0;
    bare.checkpoint = parts.checkpoint;
    auto again = parse_receipt(audit::format_receipt(bare));
    ASSERT_TRUE(again.ok()) << again.error().to_string();
    EXPECT_EQ(*again, bare);
}

TEST_F(Receipts, ParserRefusesEveryMalformation) {
    const std::string good = log_.receipt(index_);
    const std::string idx = "index " + std::to_string(index_) + "\n";
    const auto proof_line = good.substr(good.find(idx) + idx.size(), 45);
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"empty", ""},
        {"other header", replaced(good, "c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2")},
        {"no index line", replaced(good, idx, "")},
        {"leading zero", replaced(good, idx, "index 0" + std::to_string(index_) + "\n")},
        {"negative index", replaced(good, idx, "index -1\n")},
        {"index overflow", replaced(good, idx, "index 18446744073709551616\n")},
        {"index with space", replaced(good, idx, "index  " + std::to_string(index_) + "\n")},
        {"empty extra", replaced(good, "extra ", "extra \nx")},
        {"extra not base64", replaced(good, "extra ", "extra !")},
        {"short hash", replaced(good, proof_line, "AAAA\n")},
        {"hash not canonical", replaced(good, proof_line, proof_line.substr(0, 42) + "B=\n")},
        {"carriage return", replaced(good, idx, "index " + std::to_string(index_) + "\r\n")},
        {"no empty line", good.substr(0, good.find("\n\n") + 1)},
        {"no checkpoint", good.substr(0, good.find("\n\n") + 2)},
        {"too long", good + std::string(audit::kMaxReceiptBytes, 'x')},
    };
    for (const auto& [name, text] : bad) {
        auto r = parse_receipt(text);
        EXPECT_FALSE(r.ok()) << name;
        if (!r.ok()) {
            EXPECT_EQ(r.error().code, "audit.receipt_malformed") << name;
        }
    }
    // More proof hashes than any tree of 2^64 entries needs.
    Receipt many = log_.receipt_parts(index_);
    many.proof.resize(audit::kMaxProofHashes + 1);
    EXPECT_EQ(parse_receipt(audit::format_receipt(many)).error().code, "audit.receipt_malformed");
}

TEST_F(Receipts, AReceiptOfTheLogVerifiesAndTiesTheTokenToItsEntry) {
    auto v = audit::verify_receipt(log_.receipt(index_), log_.verifier(), log_.origin());
    ASSERT_TRUE(v.ok()) << v.error().to_string();
    EXPECT_EQ(v->index, index_);
    EXPECT_EQ(v->checkpoint.size, 13u);
    EXPECT_EQ(v->checkpoint.origin, log_.origin());
    EXPECT_EQ(v->entry_line, log_.line(index_));
    EXPECT_TRUE(audit::check_receipt_token(*v, token_).ok());
    EXPECT_EQ(audit::check_receipt_token(*v, token_ + "x").error().code,
              "audit.receipt_token_mismatch");
    // Every entry of the tree, first and last included, has a receipt that verifies.
    for (std::uint64_t i = 0; i < 13; ++i) {
        EXPECT_TRUE(audit::verify_receipt(log_.receipt(i), log_.verifier()).ok()) << i;
    }
}

TEST_F(Receipts, TamperedReceiptsAreRefusedWithTheirReason) {
    const Receipt parts = log_.receipt_parts(index_);
    auto code = [&](const Receipt& r, std::string_view origin = {}) {
        auto v = audit::verify_receipt(audit::format_receipt(r), log_.verifier(), origin);
        return v.ok() ? std::string("ok") : v.error().code;
    };
    for (std::size_t i = 0; i < parts.proof.size(); ++i) {
        Receipt r = parts;
        r.proof[i][7] ^= 0x01;  // one proof hash changed
        EXPECT_EQ(code(r), "audit.inclusion_proof_invalid") << i;
    }
    Receipt shorter = parts;
    shorter.proof.pop_back();
    EXPECT_EQ(code(shorter), "audit.inclusion_proof_invalid");
    Receipt moved = parts;
    moved.index = index_ + 1;  // the index changed
    EXPECT_EQ(code(moved), "audit.receipt_index_mismatch");
    // Another entry's line with this proof: the leaf hash differs.
    Receipt swapped = parts;
    swapped.extra = log_.line(index_ + 1);
    EXPECT_EQ(code(swapped), "audit.receipt_index_mismatch");
    Receipt forged = parts;
    forged.extra = replaced(*parts.extra, "\"result\":\"allowed\"", "\"result\":\"denied\"");
    EXPECT_EQ(code(forged), "audit.inclusion_proof_invalid");
    Receipt no_entry = parts;
    no_entry.extra.reset();
    EXPECT_EQ(code(no_entry), "audit.receipt_entry_invalid");
    Receipt not_canonical = parts;
    not_canonical.extra = *parts.extra + " ";
    EXPECT_EQ(code(not_canonical), "audit.receipt_entry_invalid");
    Receipt resized = parts;
    resized.checkpoint = replaced(parts.checkpoint, "\n13\n", "\n14\n");
    EXPECT_EQ(code(resized), "audit.checkpoint_signature_invalid");
    EXPECT_EQ(code(parts, "test.example/audit/node-2"), "audit.checkpoint_origin");
    EXPECT_EQ(code(parts, log_.origin()), "ok");
}

TEST_F(Receipts, AReceiptFromAnotherLogIsRefused) {
    SignedLog other;  // same origin, another key: another deployment
    const auto i = other.add_token(token_);
    auto v = audit::verify_receipt(other.receipt(i), log_.verifier(), log_.origin());
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, "audit.checkpoint_unsigned");
    // The product library says the same with its own codes.
    auto r = licentra::verify_receipt(token_, other.receipt(i), log_.verifier_key());
    EXPECT_EQ(r.error, VerifyErrc::receipt_wrong_log) << r.message;
    // An ES256 log key (signed-note type 0x02) works the same way.
    SignedLog ecdsa("test.example/audit/ecdsa", crypto::Algorithm::ES256);
    const auto j = ecdsa.add_token(token_);
    EXPECT_TRUE(licentra::verify_receipt(token_, ecdsa.receipt(j), ecdsa.verifier_key()).ok());
    EXPECT_EQ(licentra::verify_receipt(token_, ecdsa.receipt(j), log_.verifier_key()).error,
              VerifyErrc::receipt_wrong_log);
}

TEST_F(Receipts, TheLibraryMapsEveryFailureToAStableCode) {
    const std::string key = log_.verifier_key();
    auto ok = licentra::verify_receipt(token_, log_.receipt(index_), key + "\n");
    ASSERT_TRUE(ok.ok()) << ok.message;
    EXPECT_EQ(ok.index, index_);
    EXPECT_EQ(ok.origin, log_.origin());
    EXPECT_EQ(ok.tree_size, 13u);
    EXPECT_EQ(ok.entry_json, log_.line(index_));

    Receipt parts = log_.receipt_parts(index_);
    parts.proof[0][0] ^= 0x80;
    EXPECT_EQ(licentra::verify_receipt(token_, audit::format_receipt(parts), key).error,
              VerifyErrc::receipt_proof_invalid);
    parts = log_.receipt_parts(index_);
    parts.index += 1;
    EXPECT_EQ(licentra::verify_receipt(token_, audit::format_receipt(parts), key).error,
              VerifyErrc::receipt_proof_invalid);
    parts = log_.receipt_parts(index_);
    parts.checkpoint = replaced(parts.checkpoint, "\n13\n", "\n12\n");
    EXPECT_EQ(licentra::verify_receipt(token_, audit::format_receipt(parts), key).error,
              VerifyErrc::receipt_signature_invalid);
    EXPECT_EQ(licentra::verify_receipt(token_ + "x", log_.receipt(index_), key).error,
              VerifyErrc::receipt_token_mismatch);
    // A valid receipt of an entry that records no token.
    EXPECT_EQ(licentra::verify_receipt(token_, log_.receipt(rotation_), key).error,
              VerifyErrc::receipt_token_mismatch);
    EXPECT_EQ(licentra::verify_receipt(token_, "not a receipt", key).error,
              VerifyErrc::malformed_receipt);
    EXPECT_EQ(licentra::verify_receipt(token_, log_.receipt(index_), "not+a+key").error,
              VerifyErrc::malformed_log_key);
    ReceiptOptions other_origin;
    other_origin.expected_origin = "test.example/audit/node-2";
    EXPECT_EQ(licentra::verify_receipt(token_, log_.receipt(index_), key, other_origin).error,
              VerifyErrc::receipt_wrong_log);
    for (auto e : {VerifyErrc::malformed_receipt, VerifyErrc::malformed_log_key,
                   VerifyErrc::receipt_wrong_log, VerifyErrc::receipt_signature_invalid,
                   VerifyErrc::receipt_proof_invalid, VerifyErrc::receipt_token_mismatch}) {
        EXPECT_NE(licentra::to_string(e), "unknown");
    }
}

// The saved receipts of the fuzz corpus were made with the key of the C2SP signed-note vector
// (seed 0x42...): they pin the wire format byte for byte and still verify.
TEST(ReceiptGolden, TheSavedReceiptsVerifyWithTheVectorKeyAndReformatByteForByte) {
    const auto corpus =
        std::filesystem::path(LICENTRA_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "audit_receipt";
    const std::string key =
        "licentra.example/audit+e90c851c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";
    for (const std::string name : {"valid_index_0", "valid_index_4"}) {
        const std::string text = read_file(corpus / name);
        auto parsed = parse_receipt(text);
        ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.error().to_string();
        EXPECT_EQ(audit::format_receipt(*parsed), text) << name;
        auto r = licentra::verify_receipt("a.b.c", text, key);
        EXPECT_TRUE(r.ok()) << name << ": " << r.message;
        EXPECT_EQ(r.tree_size, 5u);
    }
    // Entry 2 is a key.bootstrap: a genuine receipt of no token.
    EXPECT_EQ(licentra::verify_receipt("a.b.c", read_file(corpus / "valid_index_2"), key).error,
              VerifyErrc::receipt_token_mismatch);
    EXPECT_EQ(
        licentra::verify_receipt("a.b.c", read_file(corpus / "invalid_proof_hash"), key).error,
        VerifyErrc::receipt_proof_invalid);
    EXPECT_EQ(
        licentra::verify_receipt("a.b.c", read_file(corpus / "invalid_size_changed"), key).error,
        VerifyErrc::receipt_signature_invalid);
}

}  // namespace
}  // namespace licentra::test
