// `licentra audit ...` run as a separate process on logs written through the library.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "audit/log.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kLicentra = LICENTRA_BINARY_DIR "/src/app/licentra";

class AuditCli : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kLicentra)) << kLicentra;
        auto o = testing::test_options(dir());
        o.checkpoint_every = 8;
        auto log = AuditLog::open(o, {&signer_});
        ASSERT_TRUE(log.ok());
        for (int i = 0; i < 21; ++i) ASSERT_TRUE((*log)->append(testing::sample_entry(i)).ok());
        key_file_ = tmp_.path() / "audit.vkey";
        test::write_file(key_file_, (*log)->verifier().to_string() + "\n");
        ASSERT_TRUE((*log)->close().ok());
    }
    int run(std::vector<std::string> args, std::string* out) {
        args.insert(args.begin(), {kLicentra, "audit"});
        return test::run_command(args, out);
    }
    fs::path dir() const { return tmp_.path() / "log"; }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    fs::path key_file_;
};

TEST_F(AuditCli, VerifyPassesOnAnIntactLog) {
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", dir().string(), "--key", key_file_.string()}, &out), 0)
        << out;
    EXPECT_NE(out.find("verified: 21 entries"), std::string::npos) << out;
    EXPECT_EQ(run({"verify", "--dir", dir().string(), "--key", key_file_.string(), "--json"}, &out),
              0);
    const json j = json::parse(out);
    EXPECT_EQ(j["status"], "verified");
    EXPECT_EQ(j["entries"], 21);
    EXPECT_EQ(j["newest_checkpoint"]["size"], 21);
}

TEST_F(AuditCli, VerifyReportsTheFirstBadEntryAndExitsTampered) {
    std::string data = test::read_file(dir() / "log-000000.jsonl");
    std::size_t line_start = 0;
    for (int i = 0; i < 12; ++i) line_start = data.find('\n', line_start) + 1;
    const std::size_t next = data.find('\n', line_start) + 1;
    data.erase(line_start, next - line_start);  // delete entry 12
    test::write_file(dir() / "log-000000.jsonl", data);
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", dir().string(), "--key", key_file_.string()}, &out), 3)
        << out;
    EXPECT_NE(out.find("audit.seq_gap"), std::string::npos) << out;
    EXPECT_NE(out.find("log-000000.jsonl at byte " + std::to_string(line_start) + ", entry 12"),
              std::string::npos)
        << out;
}

TEST_F(AuditCli, VerifyExitsUnreadableForAMissingDirectoryAndUsageForABadKey) {
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", (tmp_.path() / "nope").string(), "--key", key_file_.string()},
                  &out),
              4)
        << out;
    test::write_file(tmp_.path() / "bad.vkey", "not a key\n");
    EXPECT_EQ(run({"verify", "--dir", dir().string(), "--key", (tmp_.path() / "bad.vkey").string()},
                  &out),
              2)
        << out;
    EXPECT_EQ(run({"verify", "--dir", dir().string()}, &out), 2);
    // A key of someone else: the checkpoints carry no signature by it.
    testing::OsslEd25519Signer other(core::Bytes(32, 0x01));
    auto v = NoteVerifier::from_public_key("licentra.example/audit", other.public_key());
    test::write_file(tmp_.path() / "other.vkey", v->to_string());
    EXPECT_EQ(
        run({"verify", "--dir", dir().string(), "--key", (tmp_.path() / "other.vkey").string()},
            &out),
        3);
    EXPECT_NE(out.find("audit.checkpoint_unsigned"), std::string::npos) << out;
}

TEST_F(AuditCli, CheckpointAndProofsPrintJsonThatVerifies) {
    std::string out;
    ASSERT_EQ(run({"checkpoint", "--dir", dir().string()}, &out), 0) << out;
    const json cp = json::parse(out);
    EXPECT_EQ(cp["size"], 21);
    EXPECT_EQ(cp["origin"], "licentra.example/audit/node-1");
    const auto verifier = *NoteVerifier::parse(
        test::read_file(key_file_).substr(0, test::read_file(key_file_).size() - 1));
    const Checkpoint signed_cp = *verifier.open_checkpoint(cp["note"].get<std::string>());
    EXPECT_EQ(core::base64_encode(signed_cp.root), cp["root_hash"]);

    auto b64hash = [](const json& v) {
        return *hash_from_bytes(*core::base64_decode(v.get<std::string>()));
    };
    auto hashes = [&](const json& arr) {
        std::vector<Hash> out_hashes;
        for (const auto& h : arr) out_hashes.push_back(b64hash(h));
        return out_hashes;
    };
    ASSERT_EQ(run({"prove-inclusion", "--dir", dir().string(), "--index", "13"}, &out), 0) << out;
    const json inc = json::parse(out);
    EXPECT_EQ(inc["size"], 21);  // default: the newest checkpoint
    EXPECT_TRUE(
        verify_inclusion(13, 21, b64hash(inc["leaf_hash"]), hashes(inc["proof"]), signed_cp.root)
            .ok());
    ASSERT_EQ(
        run({"prove-inclusion", "--dir", dir().string(), "--index", "3", "--size", "8"}, &out), 0);
    EXPECT_EQ(json::parse(out)["size"], 8);
    EXPECT_EQ(run({"prove-inclusion", "--dir", dir().string(), "--index", "21"}, &out), 2);

    ASSERT_EQ(
        run({"prove-consistency", "--dir", dir().string(), "--from", "8", "--to", "21"}, &out), 0)
        << out;
    const json con = json::parse(out);
    EXPECT_TRUE(verify_consistency(8, 21, b64hash(con["first_root_hash"]), signed_cp.root,
                                   hashes(con["proof"]))
                    .ok());
    EXPECT_EQ(run({"prove-consistency", "--dir", dir().string(), "--from", "x", "--to", "2"}, &out),
              2);
}

}  // namespace
}  // namespace licentra::audit
