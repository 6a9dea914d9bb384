// cross_check() over hand-built logs, and verify_log_directories() over logs written through the
// library: what replicas record about shared keys must not contradict.
#include "audit/cross_check.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "audit/log.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

namespace fs = std::filesystem;

const std::string kKidA = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
const std::string kKidB = "B7kV3lOJ0wWbAnyFJ2aXmmd1cYzcq8tKq2BnfH0Bx3c";
const std::string kDigest1 = std::string(64, '1');
const std::string kDigest2 = std::string(64, '2');

Entry lifecycle(std::string action, std::uint64_t version, std::optional<std::string> kid,
                std::optional<std::string> digest = std::nullopt,
                Outcome result = Outcome::allowed) {
    Entry e;
    e.principal = "key-admin";
    e.action = std::move(action);
    e.result = result;
    e.key = "acme-prod";
    e.version = version;
    e.kid = std::move(kid);
    e.request_digest = std::move(digest);
    return e;
}

// A log as cross_check() sees it: entries numbered from 0 in the order given.
CrossLog log_of(std::string origin, std::vector<Entry> entries) {
    CrossLog log{std::move(origin), {}};
    for (std::size_t i = 0; i < entries.size(); ++i) {
        entries[i].seq = i;
        log.facts.add(entries[i]);
    }
    return log;
}

TEST(CrossCheck, TheSameTransitionRecordedByEveryReplicaIsNoContradiction) {
    const std::vector<CrossLog> logs = {
        log_of("node-1", {lifecycle("key.rotate", 4, kKidB, kDigest1),
                          lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1),
                          lifecycle("key.activate", 4, kKidB), testing::sample_entry(1)}),
        log_of("node-2", {testing::sample_entry(2), lifecycle("key.activate", 4, kKidB),
                          lifecycle("key.retire", 3, kKidA)}),
    };
    EXPECT_TRUE(cross_check(logs).empty());
}

TEST(CrossCheck, AKeyVersionWithTwoKidsAcrossLogsIsAConflictNamingBothEntries) {
    const std::vector<CrossLog> logs = {
        log_of("node-1", {testing::sample_entry(0), lifecycle("key.activate", 4, kKidA)}),
        log_of("node-2", {lifecycle("key.activate", 4, kKidB), lifecycle("key.retire", 4, kKidB)}),
    };
    const auto findings = cross_check(logs);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_kid_conflict");
    EXPECT_EQ(findings[0].first.log, 0u);
    EXPECT_EQ(findings[0].first.index, 1u);
    EXPECT_EQ(findings[0].second.log, 1u);
    EXPECT_EQ(findings[0].second.index, 0u);
    EXPECT_EQ(findings[0].message, "key acme-prod version 4 has kid " + kKidA +
                                       " at node-1 entry 1 (key.activate) and kid " + kKidB +
                                       " at node-2 entry 0 (key.activate)");
}

TEST(CrossCheck, SigningEntriesCountAsRecordsOfTheirKid) {
    // sample_entry signs with acme-prod version 3 and kid A.
    const std::vector<CrossLog> logs = {
        log_of("node-1", {testing::sample_entry(0)}),
        log_of("node-2", {lifecycle("key.activate", 3, kKidB)}),
    };
    const auto findings = cross_check(logs);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_kid_conflict");
}

TEST(CrossCheck, AConflictWithinOneLogIsFoundToo) {
    const auto findings = cross_check({log_of(
        "node-1", {lifecycle("key.rotate", 5, kKidA), lifecycle("key.activate", 5, kKidB)})});
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_kid_conflict");
    EXPECT_EQ(findings[0].first.log, 0u);
    EXPECT_EQ(findings[0].first.index, 0u);
    EXPECT_EQ(findings[0].second.log, 0u);
    EXPECT_EQ(findings[0].second.index, 1u);
}

TEST(CrossCheck, AConflictIsReportedOncePerLogNotOncePerEntry) {
    const std::vector<CrossLog> logs = {
        log_of("node-1", {lifecycle("key.activate", 4, kKidA)}),
        log_of("node-2", {lifecycle("key.activate", 4, kKidB), lifecycle("key.retire", 4, kKidB),
                          lifecycle("key.destroy", 4, kKidB)}),
        log_of("node-3", {lifecycle("key.activate", 4, kKidB)}),
    };
    const auto findings = cross_check(logs);
    ASSERT_EQ(findings.size(), 2u);
    EXPECT_EQ(findings[0].second.log, 1u);
    EXPECT_EQ(findings[0].second.index, 0u);
    EXPECT_EQ(findings[1].second.log, 2u);
    EXPECT_EQ(findings[1].second.index, 0u);
    for (const auto& f : findings) {
        EXPECT_EQ(f.first.log, 0u);
        EXPECT_EQ(f.first.index, 0u);
    }
}

TEST(CrossCheck, DeniedAndFailedEntriesAreNotRecordsOfWhatHappened) {
    const std::vector<CrossLog> logs = {
        log_of("node-1", {lifecycle("key.activate", 4, kKidA),
                          lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)}),
        log_of("node-2",
               {lifecycle("key.activate", 4, kKidB, std::nullopt, Outcome::denied),
                lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1, Outcome::failed),
                lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1, Outcome::denied)}),
    };
    EXPECT_TRUE(cross_check(logs).empty());
}

TEST(CrossCheck, ARequestExecutedInTwoLogsIsADoubleExecution) {
    const std::vector<CrossLog> logs = {
        log_of("node-1", {lifecycle("key.rotate.approve", 4, std::nullopt, kDigest1),
                          lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1),
                          lifecycle("key.retire.execute", 3, std::nullopt, kDigest2)}),
        log_of("node-2", {lifecycle("key.rotate.approve", 4, std::nullopt, kDigest1),
                          lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)}),
    };
    const auto findings = cross_check(logs);
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_double_execution");
    EXPECT_EQ(findings[0].first.log, 0u);
    EXPECT_EQ(findings[0].first.index, 1u);
    EXPECT_EQ(findings[0].second.log, 1u);
    EXPECT_EQ(findings[0].second.index, 1u);
    EXPECT_EQ(findings[0].message,
              "request " + kDigest1 +
                  " executed at node-1 entry 1 (key.rotate.execute) and again at node-2 entry 1 "
                  "(key.rotate.execute)");
}

TEST(CrossCheck, ARequestExecutedTwiceInOneLogIsADoubleExecution) {
    const auto findings = cross_check(
        {log_of("node-1", {lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1),
                           lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)})});
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_double_execution");
    EXPECT_EQ(findings[0].first.index, 0u);
    EXPECT_EQ(findings[0].second.index, 1u);
}

TEST(CrossCheck, TwoLogsWithOneOriginAreReportedAndTheSecondIsNotComparedAgain) {
    const CrossLog log =
        log_of("node-1", {lifecycle("key.activate", 4, kKidA),
                          lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)});
    const auto findings = cross_check({log, log});
    ASSERT_EQ(findings.size(), 1u);
    EXPECT_EQ(findings[0].reason, "audit.cross_duplicate_origin");
    EXPECT_EQ(findings[0].first.log, 0u);
    EXPECT_FALSE(findings[0].first.index);
    EXPECT_EQ(findings[0].second.log, 1u);
    EXPECT_FALSE(findings[0].second.index);
}

// Logs written through AuditLog, verified from disk.
class VerifyLogDirectories : public ::testing::Test {
  protected:
    fs::path write_log(const std::string& node, const std::vector<Entry>& entries) {
        const fs::path dir = tmp_.path() / node;
        auto o = testing::test_options(dir);
        o.origin = "licentra.example/audit/" + node;
        o.checkpoint_every = 4;
        auto log = AuditLog::open(o, {&signer_});
        EXPECT_TRUE(log.ok());
        for (const auto& e : entries) EXPECT_TRUE((*log)->append(e).ok());
        EXPECT_TRUE((*log)->close().ok());
        return dir;
    }
    std::vector<LogToVerify> to_verify(const std::vector<fs::path>& dirs) {
        std::vector<LogToVerify> out;
        for (const auto& d : dirs) {
            LogToVerify l;
            l.options.dir = d;
            l.verifier = &verifier_;
            out.push_back(std::move(l));
        }
        return out;
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    NoteVerifier verifier_ =
        *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
};

TEST_F(VerifyLogDirectories, CleanLogsVerifyEachWithItsOwnOrigin) {
    const auto a = write_log(
        "node-1",
        {testing::sample_entry(0), lifecycle("key.activate", 4, kKidB), testing::sample_entry(1)});
    const auto b = write_log("node-2", {lifecycle("key.activate", 4, kKidB)});
    const MultiVerifyReport m = verify_log_directories(to_verify({a, b}));
    EXPECT_EQ(m.status, VerifyStatus::verified);
    ASSERT_EQ(m.logs.size(), 2u);
    EXPECT_EQ(m.logs[0].status, VerifyStatus::verified);
    EXPECT_EQ(m.logs[0].size, 3u);
    EXPECT_EQ(m.logs[0].newest->origin, "licentra.example/audit/node-1");
    EXPECT_EQ(m.logs[1].status, VerifyStatus::verified);
    EXPECT_EQ(m.logs[1].size, 1u);
    EXPECT_EQ(m.logs[1].newest->origin, "licentra.example/audit/node-2");
    EXPECT_EQ(m.cross_checked, 2u);
    EXPECT_TRUE(m.contradictions.empty());
}

TEST_F(VerifyLogDirectories, AContradictionFailsTheRunAsTamperedWhileEachLogVerifies) {
    const auto a =
        write_log("node-1", {lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)});
    const auto b = write_log(
        "node-2",
        {testing::sample_entry(0), lifecycle("key.rotate.execute", 4, std::nullopt, kDigest1)});
    const MultiVerifyReport m = verify_log_directories(to_verify({a, b}));
    EXPECT_EQ(m.status, VerifyStatus::tampered);
    EXPECT_EQ(m.logs[0].status, VerifyStatus::verified);
    EXPECT_EQ(m.logs[1].status, VerifyStatus::verified);
    ASSERT_EQ(m.contradictions.size(), 1u);
    EXPECT_EQ(m.contradictions[0].reason, "audit.cross_double_execution");
    EXPECT_EQ(m.contradictions[0].first.log, 0u);
    EXPECT_EQ(m.contradictions[0].first.index, 0u);
    EXPECT_EQ(m.contradictions[0].second.log, 1u);
    EXPECT_EQ(m.contradictions[0].second.index, 1u);
}

TEST_F(VerifyLogDirectories, ALogThatFailsIsReportedAndLeftOutOfTheCrossCheck) {
    const auto a = write_log("node-1", {lifecycle("key.activate", 4, kKidA)});
    const auto b = write_log("node-2", {lifecycle("key.activate", 4, kKidA)});
    const auto c = write_log("node-3", {lifecycle("key.activate", 4, kKidB)});
    // node-3's only entry is rewritten: the tree no longer matches its checkpoints.
    std::string data = test::read_file(c / "log-000000.jsonl");
    data.replace(data.find(kKidB), kKidB.size(), kKidA);
    test::write_file(c / "log-000000.jsonl", data);
    const MultiVerifyReport m =
        verify_log_directories(to_verify({a, tmp_.path() / "missing", b, c}));
    EXPECT_EQ(m.status, VerifyStatus::tampered);
    EXPECT_EQ(m.logs[0].status, VerifyStatus::verified);
    EXPECT_EQ(m.logs[1].status, VerifyStatus::unreadable);
    EXPECT_EQ(m.logs[1].finding->reason, "audit.dir_unreadable");
    EXPECT_EQ(m.logs[2].status, VerifyStatus::verified);
    EXPECT_EQ(m.logs[3].status, VerifyStatus::tampered);
    EXPECT_EQ(m.logs[3].finding->reason, "audit.root_mismatch");
    EXPECT_EQ(m.cross_checked, 2u);
    EXPECT_TRUE(m.contradictions.empty());
}

TEST_F(VerifyLogDirectories, AnUnreadableLogAloneMakesTheRunUnreadable) {
    const auto a = write_log("node-1", {lifecycle("key.activate", 4, kKidA)});
    const MultiVerifyReport m = verify_log_directories(to_verify({a, tmp_.path() / "missing"}));
    EXPECT_EQ(m.status, VerifyStatus::unreadable);
    EXPECT_EQ(m.cross_checked, 1u);
}

TEST_F(VerifyLogDirectories, ContradictionIndexesPointIntoTheLogsGivenNotTheLogsCrossChecked) {
    const auto a = write_log("node-1", {lifecycle("key.activate", 4, kKidA)});
    const auto b = write_log("node-2", {lifecycle("key.activate", 4, kKidB)});
    const MultiVerifyReport m = verify_log_directories(to_verify({tmp_.path() / "missing", a, b}));
    EXPECT_EQ(m.status, VerifyStatus::tampered);
    ASSERT_EQ(m.contradictions.size(), 1u);
    EXPECT_EQ(m.contradictions[0].reason, "audit.cross_kid_conflict");
    EXPECT_EQ(m.contradictions[0].first.log, 1u);
    EXPECT_EQ(m.contradictions[0].second.log, 2u);
}

}  // namespace
}  // namespace licentra::audit
