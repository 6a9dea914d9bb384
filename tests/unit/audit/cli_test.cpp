// `licentra audit ...` run as a separate process on logs written through the library.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "audit/log.hpp"
#include "audit_test_support.hpp"
#include "pruned_log_support.hpp"
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
    EXPECT_EQ(inc["tree_size"], 21);  // default: the newest checkpoint
    EXPECT_EQ(inc["index"], 13);
    EXPECT_TRUE(
        verify_inclusion(13, 21, b64hash(inc["leaf_hash"]), hashes(inc["proof"]), signed_cp.root)
            .ok());
    ASSERT_EQ(
        run({"prove-inclusion", "--dir", dir().string(), "--index", "3", "--size", "8"}, &out), 0);
    EXPECT_EQ(json::parse(out)["tree_size"], 8);
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

// Several replicas' logs verified in one run.
class AuditCliReplicas : public ::testing::Test {
  protected:
    static constexpr const char* kKidA = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    static constexpr const char* kKidB = "B7kV3lOJ0wWbAnyFJ2aXmmd1cYzcq8tKq2BnfH0Bx3c";

    void SetUp() override {
        ASSERT_TRUE(fs::exists(kLicentra)) << kLicentra;
        key_file_ = write_key("audit.vkey", signer_);
    }
    static Entry lifecycle(std::string action, std::optional<std::string> kid,
                           std::optional<std::string> digest = std::nullopt) {
        Entry e;
        e.principal = "key-admin";
        e.action = std::move(action);
        e.result = Outcome::allowed;
        e.key = "acme-prod";
        e.version = 4;
        e.kid = std::move(kid);
        e.request_digest = std::move(digest);
        return e;
    }
    fs::path write_key(const std::string& name, const testing::OsslEd25519Signer& signer) {
        auto v = NoteVerifier::from_public_key("licentra.example/audit", signer.public_key());
        test::write_file(tmp_.path() / name, v->to_string() + "\n");
        return tmp_.path() / name;
    }
    // A log of node (origin licentra.example/audit/<node>): two signing entries, then entries.
    std::string write_log(const std::string& node, const std::vector<Entry>& entries,
                          testing::OsslEd25519Signer* signer = nullptr) {
        const fs::path dir = tmp_.path() / node;
        auto o = testing::test_options(dir);
        o.origin = "licentra.example/audit/" + node;
        o.checkpoint_every = 8;
        auto log = AuditLog::open(o, {signer != nullptr ? signer : &signer_});
        EXPECT_TRUE(log.ok());
        for (int i = 0; i < 2; ++i) EXPECT_TRUE((*log)->append(testing::sample_entry(i)).ok());
        for (const auto& e : entries) EXPECT_TRUE((*log)->append(e).ok());
        EXPECT_TRUE((*log)->close().ok());
        return dir.string();
    }
    int run(std::vector<std::string> args, std::string* out) {
        args.insert(args.begin(), {kLicentra, "audit"});
        return test::run_command(args, out);
    }
    static std::vector<std::string> lines(const std::string& text) {
        std::vector<std::string> out;
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::size_t nl = text.find('\n', pos);
            out.push_back(text.substr(pos, nl - pos));
            if (nl == std::string::npos) break;
            pos = nl + 1;
        }
        return out;
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    fs::path key_file_;
};

TEST_F(AuditCliReplicas, CleanLogsVerifyWithOneReportPerOriginAndTheSameActivationInBoth) {
    const auto a = write_log("node-1", {lifecycle("key.activate", kKidB)});
    const auto b = write_log("node-2", {lifecycle("key.activate", kKidB)});
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string()}, &out), 0) << out;
    const auto l = lines(out);
    ASSERT_EQ(l.size(), 3u) << out;
    EXPECT_EQ(l[0].rfind(a + ": verified: 3 entries, ", 0), 0u) << out;
    EXPECT_NE(l[0].find("newest checkpoint licentra.example/audit/node-1 size 3 root "),
              std::string::npos)
        << out;
    EXPECT_EQ(l[1].rfind(b + ": verified: 3 entries, ", 0), 0u) << out;
    EXPECT_NE(l[1].find("newest checkpoint licentra.example/audit/node-2 size 3 root "),
              std::string::npos)
        << out;
    EXPECT_EQ(l[2],
              "verified: 2 logs, 2 verified, 0 tampered, 0 unreadable, 0 contradictions across 2 "
              "cross-checked logs");
}

TEST_F(AuditCliReplicas, OneKeyPerDirectoryIsMatchedInOrder) {
    testing::OsslEd25519Signer other(core::Bytes(32, 0x07));
    const fs::path other_key = write_key("other.vkey", other);
    const auto a = write_log("node-1", {});
    const auto b = write_log("node-2", {}, &other);
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string(), "--key",
                   other_key.string()},
                  &out),
              0)
        << out;
    // The keys the other way round: neither log carries a signature by the key given for it.
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", other_key.string(), "--key",
                   key_file_.string()},
                  &out),
              3)
        << out;
    EXPECT_NE(out.find(a + ": tampered: integrity: audit.checkpoint_unsigned"), std::string::npos)
        << out;
    EXPECT_NE(out.find(b + ": tampered: integrity: audit.checkpoint_unsigned"), std::string::npos)
        << out;
    // One key for both: the second log is not signed by it.
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string()}, &out), 3) << out;
    EXPECT_NE(out.find(b + ": tampered: integrity: audit.checkpoint_unsigned"), std::string::npos)
        << out;
}

TEST_F(AuditCliReplicas, AKidConflictAcrossTwoLogsFailsAsTamperedNamingBothEntries) {
    const auto a = write_log("node-1", {lifecycle("key.activate", kKidA)});
    const auto b = write_log("node-2", {lifecycle("key.rotate", kKidB)});
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string()}, &out), 3) << out;
    const auto l = lines(out);
    ASSERT_EQ(l.size(), 4u) << out;
    EXPECT_EQ(l[0].rfind(a + ": verified: ", 0), 0u) << out;
    EXPECT_EQ(l[1].rfind(b + ": verified: ", 0), 0u) << out;
    EXPECT_EQ(l[2], std::string("contradiction: audit.cross_kid_conflict: key acme-prod version 4 "
                                "has kid ") +
                        kKidA +
                        " at licentra.example/audit/node-1 entry 2 (key.activate) and kid " +
                        kKidB + " at licentra.example/audit/node-2 entry 2 (key.rotate) (" + a +
                        ", " + b + ")");
    EXPECT_EQ(l[3],
              "tampered: 2 logs, 2 verified, 0 tampered, 0 unreadable, 1 contradictions across 2 "
              "cross-checked logs");
}

TEST_F(AuditCliReplicas, ARequestExecutedByTwoReplicasIsADoubleExecution) {
    const std::string digest(64, 'c');
    const auto a = write_log("node-1", {lifecycle("key.rotate.execute", std::nullopt, digest)});
    const auto b = write_log("node-2", {lifecycle("key.rotate.approve", std::nullopt, digest),
                                        lifecycle("key.rotate.execute", std::nullopt, digest)});
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string(), "--json"}, &out),
              3)
        << out;
    const json j = json::parse(out);
    EXPECT_EQ(j["status"], "tampered");
    ASSERT_EQ(j["contradictions"].size(), 1u);
    const json& c = j["contradictions"][0];
    EXPECT_EQ(c["reason"], "audit.cross_double_execution");
    EXPECT_EQ(c["first"],
              json({{"dir", a}, {"origin", "licentra.example/audit/node-1"}, {"index", 2}}));
    EXPECT_EQ(c["second"],
              json({{"dir", b}, {"origin", "licentra.example/audit/node-2"}, {"index", 3}}));
    EXPECT_EQ(c["message"], "request " + digest +
                                " executed at licentra.example/audit/node-1 entry 2 "
                                "(key.rotate.execute) and again at licentra.example/audit/node-2 "
                                "entry 3 (key.rotate.execute)");
}

TEST_F(AuditCliReplicas, ATamperedSecondLogFailsTheRunAndNamesThatDirectory) {
    const auto a = write_log("node-1", {lifecycle("key.activate", kKidA)});
    const auto b = write_log("node-2", {lifecycle("key.activate", kKidA)});
    std::string data = test::read_file(fs::path(b) / "log-000000.jsonl");
    const std::size_t second = data.find('\n') + 1;
    data.erase(second, data.find('\n', second) + 1 - second);  // delete entry 1
    test::write_file(fs::path(b) / "log-000000.jsonl", data);
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string()}, &out), 3) << out;
    const auto l = lines(out);
    ASSERT_EQ(l.size(), 3u) << out;
    EXPECT_EQ(l[0].rfind(a + ": verified: 3 entries", 0), 0u) << out;
    EXPECT_EQ(l[1], b + ": tampered: integrity: audit.seq_gap: log-000000.jsonl at byte " +
                        std::to_string(second) + ", entry 1: seq 2 where 1 belongs");
    EXPECT_EQ(l[2],
              "tampered: 2 logs, 1 verified, 1 tampered, 0 unreadable, 0 contradictions across 1 "
              "cross-checked logs");
}

TEST_F(AuditCliReplicas, AMissingDirectoryAloneExitsUnreadable) {
    const auto a = write_log("node-1", {});
    const std::string missing = (tmp_.path() / "nope").string();
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", missing, "--key", key_file_.string()}, &out), 4)
        << out;
    EXPECT_NE(out.find(missing + ": unreadable: unavailable: audit.dir_unreadable"),
              std::string::npos)
        << out;
}

TEST_F(AuditCliReplicas, JsonReportsEveryLogAndTheContradictions) {
    const auto a = write_log("node-1", {lifecycle("key.activate", kKidA)});
    const auto b = write_log("node-2", {lifecycle("key.activate", kKidA)});
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string(), "--json"}, &out),
              0)
        << out;
    const json j = json::parse(out);
    std::set<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.insert(k);
    EXPECT_EQ(keys, (std::set<std::string>{"status", "logs", "cross_checked", "contradictions"}));
    EXPECT_EQ(j["status"], "verified");
    EXPECT_EQ(j["cross_checked"], 2);
    EXPECT_EQ(j["contradictions"], json::array());
    ASSERT_EQ(j["logs"].size(), 2u);
    const json& first = j["logs"][0];
    std::set<std::string> log_keys;
    for (const auto& [k, v] : first.items()) log_keys.insert(k);
    EXPECT_EQ(log_keys, (std::set<std::string>{"dir", "origin", "status", "entries", "checkpoints",
                                               "newest_checkpoint", "unsigned_entries"}));
    EXPECT_EQ(first["dir"], a);
    EXPECT_EQ(first["origin"], "licentra.example/audit/node-1");
    EXPECT_EQ(first["status"], "verified");
    EXPECT_EQ(first["entries"], 3);
    EXPECT_EQ(first["newest_checkpoint"]["size"], 3);
    EXPECT_EQ(j["logs"][1]["dir"], b);
    EXPECT_EQ(j["logs"][1]["origin"], "licentra.example/audit/node-2");
}

TEST_F(AuditCliReplicas, TwoDirectoriesWithOneOriginFail) {
    const auto a = write_log("node-1", {});
    const std::string copy = (tmp_.path() / "copy").string();
    fs::copy(a, copy);
    std::string out;
    ASSERT_EQ(
        run({"verify", "--dir", a, "--dir", copy, "--key", key_file_.string(), "--json"}, &out), 3)
        << out;
    const json j = json::parse(out);
    ASSERT_EQ(j["contradictions"].size(), 1u);
    EXPECT_EQ(j["contradictions"][0]["reason"], "audit.cross_duplicate_origin");
    EXPECT_EQ(j["contradictions"][0]["first"],
              json({{"dir", a}, {"origin", "licentra.example/audit/node-1"}}));
    EXPECT_EQ(j["contradictions"][0]["second"],
              json({{"dir", copy}, {"origin", "licentra.example/audit/node-1"}}));
}

TEST_F(AuditCliReplicas, UsageErrorsNameWhatIsMissing) {
    const auto a = write_log("node-1", {});
    const auto b = write_log("node-2", {});
    const std::string c = (tmp_.path() / "node-3").string();
    const std::string key = key_file_.string();
    std::string out;
    EXPECT_EQ(run({"verify", "--key", key}, &out), 2) << out;
    EXPECT_NE(out.find("verify needs --dir DIR and --key FILE"), std::string::npos) << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b}, &out), 2) << out;
    EXPECT_NE(out.find("verify needs --key FILE: no --key for " + a), std::string::npos) << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--dir", c, "--key", key, "--key", key}, &out),
              2)
        << out;
    EXPECT_NE(out.find("3 --dir but 2 --key: give one --key for all directories or one per "
                       "--dir, in order (no --key for " +
                       c + ")"),
              std::string::npos)
        << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--key", key, "--key", key}, &out), 2) << out;
    EXPECT_NE(out.find("1 --dir but 2 --key"), std::string::npos) << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key, "--origin",
                   "licentra.example/audit/node-1"},
                  &out),
              2)
        << out;
    EXPECT_NE(out.find("2 --dir but 1 --origin"), std::string::npos) << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", a + "/", "--key", key}, &out), 2) << out;
    EXPECT_NE(out.find("is given twice"), std::string::npos) << out;
    // Only verify reads several directories.
    EXPECT_EQ(run({"checkpoint", "--dir", a, "--dir", b}, &out), 2) << out;
    EXPECT_NE(out.find("--dir is given more than once"), std::string::npos) << out;
}

TEST_F(AuditCliReplicas, OriginsAreMatchedToDirectoriesInOrder) {
    const auto a = write_log("node-1", {});
    const auto b = write_log("node-2", {});
    std::string out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string(), "--origin",
                   "licentra.example/audit/node-1", "--origin=licentra.example/audit/node-2"},
                  &out),
              0)
        << out;
    EXPECT_EQ(run({"verify", "--dir", a, "--dir", b, "--key", key_file_.string(), "--origin",
                   "licentra.example/audit/node-2", "--origin", "licentra.example/audit/node-1"},
                  &out),
              3)
        << out;
    EXPECT_NE(out.find(a + ": tampered: integrity: audit.checkpoint_origin"), std::string::npos)
        << out;
}

TEST_F(AuditCliReplicas, ASingleLogIsCrossCheckedWithinItselfAndKeepsItsReportShape) {
    const std::string digest(64, 'd');
    const auto a = write_log("node-1", {lifecycle("key.rotate.execute", std::nullopt, digest),
                                        lifecycle("key.rotate.execute", std::nullopt, digest)});
    std::string out;
    ASSERT_EQ(run({"verify", "--dir", a, "--key", key_file_.string()}, &out), 3) << out;
    const auto l = lines(out);
    ASSERT_EQ(l.size(), 3u) << out;
    EXPECT_EQ(l[0].rfind("verified: 4 entries, 2 checkpoints; newest checkpoint "
                         "licentra.example/audit/node-1 size 4 root ",
                         0),
              0u)
        << out;
    EXPECT_EQ(l[1], "contradiction: audit.cross_double_execution: request " + digest +
                        " executed at licentra.example/audit/node-1 entry 2 (key.rotate.execute) "
                        "and again at licentra.example/audit/node-1 entry 3 (key.rotate.execute)");
    EXPECT_EQ(l[2],
              "tampered: 1 logs, 1 verified, 0 tampered, 0 unreadable, 1 contradictions across 1 "
              "cross-checked logs");
    ASSERT_EQ(run({"verify", "--dir", a, "--key", key_file_.string(), "--json"}, &out), 3) << out;
    const json j = json::parse(out);
    EXPECT_EQ(j["status"], "tampered");
    EXPECT_EQ(j["entries"], 4);
    EXPECT_EQ(j["newest_checkpoint"]["origin"], "licentra.example/audit/node-1");
    ASSERT_EQ(j["contradictions"].size(), 1u);
    EXPECT_EQ(j["contradictions"][0]["second"],
              json({{"dir", a}, {"origin", "licentra.example/audit/node-1"}, {"index", 3}}));
}

// ---- prune -----------------------------------------------------------------------------------

// 50 entries a minute apart from 2026-01-01T00:00Z, segments of 12 (the open one holds 48-49),
// a checkpoint every 10.
class AuditCliPrune : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(fs::exists(kLicentra)) << kLicentra;
        testing::CraftedLog spec;
        spec.segments = {12, 12, 12, 12, 2};
        spec.checkpoints = {0, 10, 20, 30, 40, 50};
        testing::write_crafted_log(dir(), spec, signer_);
        key_file_ = tmp_.path() / "audit.vkey";
        test::write_file(
            key_file_, NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key())
                               ->to_string() +
                           "\n");
    }
    int run(std::vector<std::string> args, std::string* out) {
        args.insert(args.begin(), {kLicentra, "audit"});
        return test::run_command(args, out);
    }
    int prune(const std::string& before, std::string* out) {
        return run(
            {"prune", "--dir", dir().string(), "--key", key_file_.string(), "--before", before},
            out);
    }
    fs::path dir() const { return tmp_.path() / "log"; }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    fs::path key_file_;
};

TEST_F(AuditCliPrune, HelpDescribesTheCommandAndExitsZero) {
    std::string out;
    EXPECT_EQ(run({"prune", "--help"}, &out), 0) << out;
    EXPECT_NE(out.find("Usage: licentra audit prune [OPTIONS]"), std::string::npos) << out;
    EXPECT_NE(out.find("--before"), std::string::npos) << out;
    EXPECT_NE(out.find("Offline only"), std::string::npos) << out;
    EXPECT_NE(out.find("7 the directory is locked by a running daemon"), std::string::npos) << out;
}

TEST_F(AuditCliPrune, ABadDateIsAUsageErrorAndChangesNothing) {
    const auto before = testing::snapshot(dir());
    for (const std::string bad :
         {"yesterday", "2026-13-01", "2026-01-01T25:00:00Z", "2026-01-01 00:00:00",
          "2026-01-01T00:00:00+01:00", "2999-01-01", ""}) {
        std::string out;
        EXPECT_EQ(prune(bad, &out), 2) << bad << "\n" << out;
        EXPECT_EQ(out, "licentra audit: --before " + bad +
                           ": expected a date YYYY-MM-DD or an RFC 3339 UTC time "
                           "YYYY-MM-DDThh:mm:ss[.sss]Z\n");
    }
    std::string out;
    EXPECT_EQ(run({"prune", "--dir", dir().string(), "--key", key_file_.string()}, &out), 2) << out;
    EXPECT_NE(out.find("--before is required"), std::string::npos) << out;
    EXPECT_EQ(testing::snapshot(dir()), before);
}

TEST_F(AuditCliPrune, PruneThenVerifyExitZeroAndReportThePrunedRange) {
    std::string out;
    ASSERT_EQ(prune("2026-01-01T00:42:00Z", &out), 0) << out;
    EXPECT_EQ(out,
              "pruned: 42 entries before 2026-01-01T00:42:00Z in 4 segments (log-000000.jsonl, "
              "log-000001.jsonl, log-000002.jsonl, log-000003.jsonl); the log holds 50 entries, "
              "checkpoint size 50\n"
              "entries 0-41 pruned (payloads removed, leaf hashes kept)\n"
              "note: entries from 48 on are never pruned (after the newest checkpoint or in the "
              "open segment)\n");

    ASSERT_EQ(run({"verify", "--dir", dir().string(), "--key", key_file_.string()}, &out), 0)
        << out;
    EXPECT_EQ(out.substr(0, out.find('\n') + 1).rfind("verified: 50 entries, 6 checkpoints;", 0),
              0u)
        << out;
    EXPECT_NE(out.find("\nnote: entries 0-41 pruned (payloads removed, leaf hashes kept)\n"),
              std::string::npos)
        << out;
    ASSERT_EQ(run({"verify", "--dir", dir().string(), "--key", key_file_.string(), "--json"}, &out),
              0);
    const json j = json::parse(out);
    EXPECT_EQ(j["status"], "verified");
    EXPECT_EQ(j["entries"], 50);
    EXPECT_EQ(j["pruned"], json::parse(R"([{"first":0,"last":41}])"));

    // Again with the same date: nothing to do, still exit 0.
    ASSERT_EQ(prune("2026-01-01", &out), 0) << out;
    EXPECT_EQ(out.rfind("pruned: 0 entries before 2026-01-01 in 0 segments; ", 0), 0u) << out;

    // A proof for a pruned entry still checks against the signed root, and says it is pruned.
    ASSERT_EQ(run({"prove-inclusion", "--dir", dir().string(), "--index", "5"}, &out), 0) << out;
    const std::string note =
        "licentra audit: note: entry 5 is pruned (payload removed, leaf hash "
        "kept)\n";
    ASSERT_EQ(out.rfind(note, 0), 0u) << out;
    const json inc = json::parse(out.substr(note.size()));
    EXPECT_EQ(inc["tree_size"], 50);
    auto b64hash = [](const json& v) {
        return *hash_from_bytes(*core::base64_decode(v.get<std::string>()));
    };
    std::vector<Hash> path;
    for (const auto& h : inc["proof"]) path.push_back(b64hash(h));
    EXPECT_TRUE(
        verify_inclusion(5, 50, b64hash(inc["leaf_hash"]), path, b64hash(inc["root_hash"])).ok());
}

TEST_F(AuditCliPrune, ALockedDirectoryExitsSevenAndATamperedLogExitsThree) {
    std::string out;
    {
        testing::MemoryAnchor anchor;
        auto log = AuditLog::open(testing::test_options(dir()), {&signer_, &anchor});
        ASSERT_TRUE(log.ok()) << log.error().to_string();
        EXPECT_EQ(prune("2026-01-02", &out), 7) << out;
        EXPECT_NE(out.find("licentra audit prune: conflict: audit.locked: "), std::string::npos)
            << out;
    }
    auto lines = testing::read_lines(dir() / "log-000001.jsonl");
    lines[3].replace(lines[3].find("req-15"), 6, "req-99");
    testing::write_lines(dir() / "log-000001.jsonl", lines);
    EXPECT_EQ(prune("2026-01-02", &out), 3) << out;
    EXPECT_EQ(out.rfind("licentra audit prune: the log does not verify, nothing was pruned: "
                        "integrity: audit.root_mismatch: ",
                        0),
              0u)
        << out;
}

}  // namespace
}  // namespace licentra::audit
