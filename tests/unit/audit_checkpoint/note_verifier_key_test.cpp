// Verifier keys "<name>+<hash>+<keydata>": the key hash is eight lower-case hex digits, so every
// key has exactly one text form and to_string() prints back the text that was parsed.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "audit/checkpoint.hpp"

namespace licentra::audit {
namespace {

// The verifier key of test-vectors/c2sp-signed-note.json.
constexpr std::string_view kKey =
    "licentra.example/audit+e90c851c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";

std::string with_hash(std::string_view hash) {
    std::string key(kKey);
    return key.replace(key.find('+') + 1, 8, hash);
}

TEST(NoteVerifierKey, ALowerCaseKeyPrintsBackExactly) {
    auto v = NoteVerifier::parse(kKey);
    ASSERT_TRUE(v.ok()) << v.error().to_string();
    EXPECT_EQ(v->to_string(), kKey);
}

// Found by fuzz_audit_checkpoint (tests/fuzz/corpus/audit_checkpoint/upper_case_key_hash): the
// key was accepted and printed back in lower case, a second text form for the same key.
TEST(NoteVerifierKey, UpperCaseHexInTheKeyHashIsRefused) {
    for (std::string_view hash : {"E90c851c", "E90C851C", "e90c851C"}) {
        auto v = NoteVerifier::parse(with_hash(hash));
        ASSERT_FALSE(v.ok()) << hash;
        EXPECT_EQ(v.error().kind, core::ErrorKind::usage);
        EXPECT_EQ(v.error().code, "audit.verifier_key_invalid");
        EXPECT_EQ(v.error().message, "key hash must be 8 lower-case hex digits") << hash;
    }
}

TEST(NoteVerifierKey, AKeyHashThatIsNotEightHexDigitsIsRefused) {
    for (std::string_view hash : {"e90c851", "e90c851c0", "e90c851g", "+90c851c", " 90c851c"}) {
        EXPECT_FALSE(NoteVerifier::parse(with_hash(hash)).ok()) << hash;
    }
    auto wrong = NoteVerifier::parse(with_hash("e90c851d"));
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().message, "key hash does not match the key");
}

}  // namespace
}  // namespace licentra::audit
