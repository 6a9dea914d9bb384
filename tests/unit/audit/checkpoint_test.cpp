// Checkpoints as C2SP signed notes: the vector made by the Go reference implementation
// (test-vectors/c2sp-signed-note.json), strict parsing, and checkpoints from a real log verified
// by the Go reference itself (golang.org/x/mod/sumdb/note, Debian golang-golang-x-mod-dev).
#include "audit/checkpoint.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "audit/log.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json note_vector() {
    return json::parse(test::read_file(test::test_vectors_dir() / "c2sp-signed-note.json"));
}

Hash vector_root_size8() {
    const json v = json::parse(test::read_file(test::test_vectors_dir() / "rfc6962-merkle.json"));
    return *hash_from_hex(v["roots_by_size"][8].get<std::string>());
}

TEST(Checkpoint, SigningReproducesTheGoReferenceNoteByteForByte) {
    const json v = note_vector();
    testing::OsslEd25519Signer signer(*core::hex_decode(v["ed25519_seed_hex"].get<std::string>()));
    auto cs = CheckpointSigner::create(v["key_name"].get<std::string>(), signer);
    ASSERT_TRUE(cs.ok()) << cs.error().to_string();
    EXPECT_EQ(cs->verifier().to_string(), v["verifier_key"].get<std::string>());
    auto parsed = parse_signed_note(v["signed_note"].get<std::string>());
    ASSERT_TRUE(parsed.ok());
    auto body = parse_checkpoint_body(parsed->text);
    ASSERT_TRUE(body.ok());
    EXPECT_EQ(body->size, 8u);
    EXPECT_EQ(body->root, vector_root_size8());
    auto note = cs->sign(*body);
    ASSERT_TRUE(note.ok());
    EXPECT_EQ(*note, v["signed_note"].get<std::string>());
}

TEST(Checkpoint, VerifierKeyFromTheVectorOpensTheGoReferenceNote) {
    const json v = note_vector();
    auto verifier = NoteVerifier::parse(v["verifier_key"].get<std::string>());
    ASSERT_TRUE(verifier.ok()) << verifier.error().to_string();
    EXPECT_EQ(verifier->key_name(), "licentra.example/audit");
    EXPECT_EQ(verifier->key_hash(), 0xe90c851cu);
    auto cp = verifier->open_checkpoint(v["signed_note"].get<std::string>());
    ASSERT_TRUE(cp.ok()) << cp.error().to_string();
    EXPECT_EQ(cp->origin, "licentra.example/audit/node-1");
    EXPECT_EQ(cp->size, 8u);
    EXPECT_EQ(cp->root, vector_root_size8());
}

TEST(Checkpoint, RejectsTamperedNotesWithDistinctReasons) {
    const json v = note_vector();
    const std::string note = v["signed_note"].get<std::string>();
    auto verifier = *NoteVerifier::parse(v["verifier_key"].get<std::string>());
    auto code = [&](const std::string& text) {
        auto r = verifier.open_checkpoint(text);
        return r.ok() ? std::string("ok") : r.error().code;
    };
    std::string size_changed = note;
    size_changed.replace(size_changed.find("\n8\n"), 3, "\n9\n");
    EXPECT_EQ(code(size_changed), "audit.checkpoint_signature_invalid");
    std::string other_key = note;
    const std::string signer_line = "— licentra.example/audit ";
    other_key.replace(other_key.find(signer_line), signer_line.size(), "— licentra.example/other ");
    EXPECT_EQ(code(other_key), "audit.checkpoint_unsigned");
    EXPECT_EQ(code(note.substr(0, note.find("\n\n") + 1)), "audit.note_malformed");
    std::string ctrl = note;
    ctrl[3] = '\t';
    EXPECT_EQ(code(ctrl), "audit.note_malformed");
    EXPECT_EQ(code(std::string(note).replace(note.find("\xE2\x80\x94"), 3, "-")),
              "audit.note_malformed");
    EXPECT_EQ(code("a\nb\n\n\xE2\x80\x94 k AAAA\n"), "audit.note_malformed");

    EXPECT_FALSE(parse_checkpoint_body("o\n08\nAAAA\n").ok());
    EXPECT_FALSE(parse_checkpoint_body("o\n8\nAAAA\n").ok());
    EXPECT_FALSE(parse_checkpoint_body("o\n8\n").ok());
    const std::string root = core::base64_encode(Hash{});
    EXPECT_TRUE(parse_checkpoint_body("o\n0\n" + root + "\n").ok());
    EXPECT_FALSE(parse_checkpoint_body("o\n-1\n" + root + "\n").ok());
    EXPECT_FALSE(parse_checkpoint_body("o\n1\n" + root + "\next\n").ok());
    EXPECT_FALSE(parse_checkpoint_body("o\n18446744073709551616\n" + root + "\n").ok());

    EXPECT_FALSE(NoteVerifier::parse(
                     "licentra.example/audit+e90c851d+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS")
                     .ok());
    EXPECT_FALSE(NoteVerifier::parse("licentra.example/audit+e90c851c").ok());
    EXPECT_FALSE(NoteVerifier::parse("").ok());
}

// Builds tests/verifiers/note_verify with the Go toolchain, offline, against Debian's
// golang-golang-x-mod-dev sources (GOPATH mode). Fails, never skips, without Go.
std::string build_go_verifier() {
    const std::string go = test::find_program("go");
    EXPECT_FALSE(go.empty()) << "required program 'go' is not installed; run scripts/setup";
    if (go.empty()) return {};
    const fs::path out = fs::path(LICENTRA_BINARY_DIR) / "tests" / "note_verify";
    const std::string cache = std::string(LICENTRA_BINARY_DIR) + "/go-cache";
    std::string output;
    const int rc = test::run_command(
        {"/usr/bin/env", "GOPATH=/usr/share/gocode", "GO111MODULE=off", "GOFLAGS=", "GOPROXY=off",
         "GOCACHE=" + cache, "HOME=" + cache, go, "build", "-o", out.string(),
         std::string(LICENTRA_SOURCE_DIR) + "/tests/verifiers/note_verify/main.go"},
        &output);
    EXPECT_EQ(rc, 0) << output;
    return rc == 0 ? out.string() : std::string();
}

TEST(Checkpoint, GoReferenceVerifiesCheckpointsOfARealLog) {
    const std::string verifier_bin = build_go_verifier();
    ASSERT_FALSE(verifier_bin.empty());
    test::TempDir tmp;
    testing::OsslEd25519Signer signer(core::Bytes(32, 0x17));
    auto opts = testing::test_options(tmp.path() / "log");
    opts.checkpoint_every = 5;
    auto log = AuditLog::open(opts, {&signer});
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    for (int i = 0; i < 12; ++i) {
        ASSERT_TRUE((*log)->append(testing::sample_entry(i)).ok());
        if ((i + 1) % 5 == 0) {
            ASSERT_TRUE(testing::checkpoint_reaches(**log, static_cast<std::uint64_t>(i + 1)));
        }
    }
    const std::string vkey = (*log)->verifier().to_string();
    ASSERT_TRUE((*log)->close().ok());

    test::write_file(tmp.path() / "key.vkey", vkey + "\n");
    const std::string notes = test::read_file(tmp.path() / "log" / "checkpoints");
    // Split the checkpoints file into notes: each ends with its signature line.
    std::vector<std::string> each;
    std::size_t start = 0;
    while (start < notes.size()) {
        const auto sig = notes.find("\n\n\xE2\x80\x94 ", start);
        ASSERT_NE(sig, std::string::npos);
        const auto end = notes.find('\n', sig + 2) + 1;
        each.push_back(notes.substr(start, end - start));
        start = end;
    }
    ASSERT_EQ(each.size(), 4u);  // size 0 at open, 5, 10, and 12 at close
    for (const std::string& note : each) {
        test::write_file(tmp.path() / "note", note);
        std::string output;
        EXPECT_EQ(test::run_command({verifier_bin, (tmp.path() / "key.vkey").string(),
                                     (tmp.path() / "note").string()},
                                    &output),
                  0)
            << output << note;
        EXPECT_EQ(output, note.substr(0, note.find("\n\n") + 1));
    }
    // And the Go reference rejects a checkpoint whose size was changed.
    std::string forged = each.back();
    forged.replace(forged.find("\n12\n"), 4, "\n13\n");
    test::write_file(tmp.path() / "note", forged);
    std::string output;
    EXPECT_EQ(test::run_command({verifier_bin, (tmp.path() / "key.vkey").string(),
                                 (tmp.path() / "note").string()},
                                &output),
              1)
        << output;
    // The vector note verifies with the vector key under Go too (sanity of the harness).
    const json v = note_vector();
    test::write_file(tmp.path() / "key.vkey", v["verifier_key"].get<std::string>());
    test::write_file(tmp.path() / "note", v["signed_note"].get<std::string>());
    EXPECT_EQ(test::run_command({verifier_bin, (tmp.path() / "key.vkey").string(),
                                 (tmp.path() / "note").string()},
                                &output),
              0)
        << output;
}

}  // namespace
}  // namespace licentra::audit
