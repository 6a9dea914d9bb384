#include "keys/key_records.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/time.hpp"

namespace licentra::keys {
namespace {

using Data = std::vector<std::pair<std::string, core::Bytes>>;
using Pairs = std::vector<hsm::KeyInfo>;

constexpr const char* kName = "product-a";

std::string label_of(unsigned version, const std::string& name = kName) {
    return "licentra/" + name + "/v" + std::to_string(version);
}

std::pair<std::string, core::Bytes> record(const std::string& label, const std::string& json) {
    return {label, core::to_bytes(json)};
}

CreatedRecord created_at(std::int64_t activate_at, std::int64_t supersede_verify = 0,
                         crypto::Algorithm alg = crypto::Algorithm::EdDSA) {
    CreatedRecord c;
    c.algorithm = alg;
    c.created_ms = activate_at - 100;
    c.activate_at_ms = activate_at;
    c.supersede_verify_ms = supersede_verify;
    c.by = "replica-a";
    c.request = "";
    return c;
}

// A version created through the current records: its created record and its key pair.
void add_version(Data& data, Pairs& pairs, unsigned version, const CreatedRecord& c,
                 const std::string& id_hex) {
    data.push_back(record(created_label(label_of(version), id_hex), c.to_json()));
    hsm::KeyInfo k;
    k.label = label_of(version);
    k.name = kName;
    k.version = version;
    k.algorithm = c.algorithm;
    k.id_hex = id_hex;
    k.has_private = true;
    k.has_public = true;
    pairs.push_back(k);
}

hsm::KeyInfo key_pair(unsigned version, const std::string& id_hex, bool has_private = true,
                      const std::string& name = kName) {
    hsm::KeyInfo k;
    k.label = label_of(version, name);
    k.name = name;
    k.version = version;
    k.algorithm = crypto::Algorithm::EdDSA;
    k.id_hex = id_hex;
    k.has_private = has_private;
    k.has_public = true;
    return k;
}

void add_retired(Data& data, unsigned version, std::int64_t at, std::int64_t verify_until,
                 const std::string& nonce = std::string(32, 'a')) {
    data.push_back(record(retired_prefix(label_of(version)) + nonce,
                          EventRecord{at, verify_until, "officer"}.to_json()));
}

void add_destroyed(Data& data, unsigned version, std::int64_t at,
                   const std::string& nonce = std::string(32, 'a')) {
    data.push_back(record(destroyed_prefix(label_of(version)) + nonce,
                          EventRecord{at, std::nullopt, "officer"}.to_json()));
}

const std::vector<FoldedVersion>& versions_of(const Fold& f, const std::string& name = kName) {
    static const std::vector<FoldedVersion> kNone;
    auto it = f.keys.find(name);
    return it == f.keys.end() ? kNone : it->second;
}

const FoldedVersion* find(const Fold& f, unsigned version) {
    for (const auto& v : versions_of(f)) {
        if (v.record.version == version) return &v;
    }
    return nullptr;
}

std::vector<unsigned> active_versions(const Fold& f) {
    std::vector<unsigned> out;
    for (const auto& v : versions_of(f)) {
        if (v.record.state == KeyState::active) out.push_back(v.record.version);
    }
    return out;
}

// Everything a fold computes, as one comparable text.
std::string dump(const Fold& f) {
    std::string s;
    for (const auto& [name, list] : f.keys) {
        for (const auto& v : list) {
            s += name + "|" + v.name + "|" + v.label + "|" + v.id_hex + "|" + v.record.to_json() +
                 "\n";
        }
    }
    for (const auto& [name, h] : f.highest) s += "highest " + name + "=" + std::to_string(h) + "\n";
    for (const auto& w : f.warnings) s += "warning " + w + "\n";
    return s;
}

// ---- activation ----

TEST(FoldKeyRecords, VersionIsPreActiveBeforeItsActivationAndActiveFromIt) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(2000, 0, crypto::Algorithm::ES256), "0a");

    const Fold before = fold_key_records(data, pairs, 1999);
    ASSERT_EQ(versions_of(before).size(), 1u);
    const FoldedVersion& p = versions_of(before)[0];
    EXPECT_EQ(p.name, kName);
    EXPECT_EQ(p.label, "licentra/product-a/v1");
    EXPECT_EQ(p.id_hex, "0a");
    EXPECT_EQ(p.record.version, 1u);
    EXPECT_EQ(p.record.algorithm, crypto::Algorithm::ES256);
    EXPECT_EQ(p.record.created_ms, 1900);
    EXPECT_EQ(p.record.state, KeyState::pre_active);
    EXPECT_EQ(p.record.activate_at_ms, 2000);
    EXPECT_EQ(p.record.activated_ms, std::nullopt);
    EXPECT_EQ(p.record.retired_ms, std::nullopt);
    EXPECT_TRUE(before.warnings.empty());

    const Fold at = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(at).size(), 1u);
    const FoldedVersion& a = versions_of(at)[0];
    EXPECT_EQ(a.record.state, KeyState::active);
    EXPECT_EQ(a.record.activated_ms, 2000);
    EXPECT_EQ(a.record.retired_ms, std::nullopt);
    EXPECT_EQ(a.record.verify_until_ms, std::nullopt);
    EXPECT_EQ(a.record.destroyed_ms, std::nullopt);
}

TEST(FoldKeyRecords, NextVersionActivationSupersedesThePreviousOne) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(5000, 3000), "02");

    const Fold waiting = fold_key_records(data, pairs, 4999);
    EXPECT_EQ(active_versions(waiting), std::vector<unsigned>{1});
    EXPECT_EQ(find(waiting, 2)->record.state, KeyState::pre_active);
    EXPECT_EQ(find(waiting, 1)->record.retired_ms, std::nullopt);

    const Fold after = fold_key_records(data, pairs, 6000);
    EXPECT_EQ(active_versions(after), std::vector<unsigned>{2});
    const VersionRecord& v1 = find(after, 1)->record;
    EXPECT_EQ(v1.state, KeyState::retired);
    EXPECT_EQ(v1.activated_ms, 1000);
    EXPECT_EQ(v1.retired_ms, 5000);
    EXPECT_EQ(v1.verify_until_ms, 8000);
    const VersionRecord& v2 = find(after, 2)->record;
    EXPECT_EQ(v2.activated_ms, 5000);
    EXPECT_EQ(v2.retired_ms, std::nullopt);
    EXPECT_TRUE(after.warnings.empty());
}

TEST(FoldKeyRecords, EachVersionIsSupersededByTheNextOneThatActivated) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(2000, 500), "02");
    add_version(data, pairs, 3, created_at(3000, 700), "03");
    const Fold f = fold_key_records(data, pairs, 4000);
    EXPECT_EQ(active_versions(f), std::vector<unsigned>{3});
    EXPECT_EQ(find(f, 1)->record.retired_ms, 2000);
    EXPECT_EQ(find(f, 1)->record.verify_until_ms, 2500);
    EXPECT_EQ(find(f, 2)->record.retired_ms, 3000);
    EXPECT_EQ(find(f, 2)->record.verify_until_ms, 3700);
}

TEST(FoldKeyRecords, RetiringTheActiveVersionLeavesNoActiveVersionAndOlderOnesStayRetired) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(2000, 400), "02");
    add_retired(data, 2, 3000, 9000);

    const Fold f = fold_key_records(data, pairs, 4000);
    EXPECT_TRUE(active_versions(f).empty());
    const VersionRecord& v1 = find(f, 1)->record;
    EXPECT_EQ(v1.state, KeyState::retired);
    EXPECT_EQ(v1.retired_ms, 2000);
    EXPECT_EQ(v1.verify_until_ms, 2400);
    const VersionRecord& v2 = find(f, 2)->record;
    EXPECT_EQ(v2.state, KeyState::retired);
    EXPECT_EQ(v2.activated_ms, 2000);
    EXPECT_EQ(v2.retired_ms, 3000);
    EXPECT_EQ(v2.verify_until_ms, 9000);
}

TEST(FoldKeyRecords, EarliestOfSeveralRetirementsCounts) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_retired(data, 1, 3000, 9000, std::string(32, 'b'));
    add_retired(data, 1, 2500, 8000, std::string(32, 'c'));
    const Fold f = fold_key_records(data, pairs, 4000);
    EXPECT_EQ(find(f, 1)->record.retired_ms, 2500);
    EXPECT_EQ(find(f, 1)->record.verify_until_ms, 8000);
}

TEST(FoldKeyRecords, PreActiveVersionRetiredBeforeItsActivationNeverBecomesActive) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(5000, 3000), "02");
    add_retired(data, 2, 3000, 4000);

    for (std::int64_t now : {3000, 5000, 10000}) {
        const Fold f = fold_key_records(data, pairs, now);
        EXPECT_EQ(active_versions(f), std::vector<unsigned>{1}) << "at " << now;
        const VersionRecord& v2 = find(f, 2)->record;
        EXPECT_EQ(v2.state, KeyState::retired) << "at " << now;
        EXPECT_EQ(v2.activated_ms, std::nullopt) << "at " << now;
        EXPECT_EQ(v2.retired_ms, 3000) << "at " << now;
        EXPECT_EQ(v2.verify_until_ms, 4000) << "at " << now;
        EXPECT_EQ(find(f, 1)->record.retired_ms, std::nullopt) << "at " << now;
    }
}

// ---- destruction ----

TEST(FoldKeyRecords, DestroyedWinsOverActiveRetiredAndSuperseded) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(2000), "02");
    add_version(data, pairs, 3, created_at(9000), "03");
    add_retired(data, 1, 1500, 1800);
    add_destroyed(data, 1, 3000);  // retired first, then destroyed
    add_destroyed(data, 2, 3500);  // the active version
    add_destroyed(data, 3, 4000);  // still pre-active
    const Fold f = fold_key_records(data, pairs, 5000);
    ASSERT_EQ(versions_of(f).size(), 3u);
    EXPECT_TRUE(active_versions(f).empty());
    EXPECT_EQ(find(f, 1)->record.state, KeyState::destroyed);
    EXPECT_EQ(find(f, 1)->record.destroyed_ms, 3000);
    EXPECT_EQ(find(f, 1)->record.retired_ms, 1500);
    EXPECT_EQ(find(f, 2)->record.state, KeyState::destroyed);
    EXPECT_EQ(find(f, 2)->record.destroyed_ms, 3500);
    EXPECT_EQ(find(f, 3)->record.state, KeyState::destroyed);
    EXPECT_EQ(find(f, 3)->record.destroyed_ms, 4000);
    // Its activation time passes later: it stays destroyed and never signs.
    const Fold later = fold_key_records(data, pairs, 10000);
    EXPECT_EQ(find(later, 3)->record.state, KeyState::destroyed);
    EXPECT_EQ(find(later, 3)->record.activated_ms, std::nullopt);
    EXPECT_TRUE(active_versions(later).empty());
}

// ---- several key pairs for one version ----

TEST(FoldKeyRecords, TwoCreatedRecordsForOneVersionResolveToTheLowestIdWithAPair) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(3000, 0, crypto::Algorithm::EdDSA), "bb");
    add_version(data, pairs, 1, created_at(1000, 0, crypto::Algorithm::ES256), "aa");
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    const FoldedVersion& v = versions_of(f)[0];
    EXPECT_EQ(v.id_hex, "aa");
    EXPECT_EQ(v.record.algorithm, crypto::Algorithm::ES256);
    EXPECT_EQ(v.record.state, KeyState::active);
    EXPECT_EQ(v.record.activated_ms, 1000);
    EXPECT_EQ(f.warnings,
              std::vector<std::string>{
                  "licentra/product-a/v1 has a second key pair (CKA_ID bb) that is not the "
                  "version; remove it with: pkcs11-tool --login --delete-object --type privkey "
                  "--label 'licentra/product-a/v1' --id bb (and --type pubkey)"});
}

TEST(FoldKeyRecords, LowestCreatedIdWithoutAPairIsPassedOver) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "bb");
    data.push_back(record(created_label(label_of(1), "aa"), created_at(500).to_json()));
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    EXPECT_EQ(versions_of(f)[0].id_hex, "bb");
    EXPECT_EQ(versions_of(f)[0].record.activated_ms, 1000);
    EXPECT_TRUE(f.warnings.empty());
}

TEST(FoldKeyRecords, CreatedRecordWithoutItsKeyPairIsIgnoredWithAWarning) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    data.push_back(record(created_label(label_of(2), "02"), created_at(1500).to_json()));
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    EXPECT_EQ(versions_of(f)[0].record.version, 1u);
    EXPECT_EQ(active_versions(f), std::vector<unsigned>{1});
    EXPECT_EQ(f.warnings, std::vector<std::string>{"version 2 of product-a has created records "
                                                   "but no key pair; it is ignored"});
    EXPECT_EQ(f.highest.at(kName), 2u);
}

TEST(FoldKeyRecords, CreatedRecordWhosePairHasNoPublicKeyIsIgnored) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    pairs.back().has_public = false;
    const Fold f = fold_key_records(data, pairs, 2000);
    EXPECT_TRUE(versions_of(f).empty());
    EXPECT_EQ(f.warnings, std::vector<std::string>{"version 1 of product-a has created records "
                                                   "but no key pair; it is ignored"});
}

// ---- records of an older release ----

TEST(FoldKeyRecords, LegacyStateRecordWithTwoPairsTakesTheLowestIdWithAPrivateKey) {
    VersionRecord legacy;
    legacy.version = 1;
    legacy.algorithm = crypto::Algorithm::ES384;
    legacy.state = KeyState::active;
    legacy.created_ms = 500;
    legacy.activated_ms = 700;
    const Data data = {record(state_label(label_of(1)), legacy.to_json())};
    const Pairs pairs = {key_pair(1, "03"), key_pair(1, "01", false), key_pair(1, "02")};
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    const FoldedVersion& v = versions_of(f)[0];
    EXPECT_EQ(v.id_hex, "02");
    EXPECT_EQ(v.record.algorithm, crypto::Algorithm::ES384);
    EXPECT_EQ(v.record.created_ms, 500);
    EXPECT_EQ(v.record.state, KeyState::active);
    EXPECT_EQ(v.record.activated_ms, 700);
    ASSERT_EQ(f.warnings.size(), 2u);
    EXPECT_NE(f.warnings[0].find("(CKA_ID 03)"), std::string::npos) << f.warnings[0];
    EXPECT_NE(f.warnings[1].find("(CKA_ID 01)"), std::string::npos) << f.warnings[1];
    for (const auto& w : f.warnings) {
        EXPECT_NE(w.find("pkcs11-tool --login --delete-object"), std::string::npos) << w;
    }
}

TEST(FoldKeyRecords, LegacyStateRecordWithoutAnyPrivateKeyStillFoldsToOnePair) {
    VersionRecord legacy;
    legacy.version = 1;
    legacy.state = KeyState::active;
    legacy.created_ms = 500;
    legacy.activated_ms = 700;
    const Data data = {record(state_label(label_of(1)), legacy.to_json())};
    const Pairs pairs = {key_pair(1, "01", false), key_pair(1, "02", false)};
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    EXPECT_EQ(versions_of(f)[0].id_hex, "01");
    EXPECT_EQ(f.warnings.size(), 1u);
}

TEST(FoldKeyRecords, LegacyRetiredAndDestroyedStatesAreKept) {
    VersionRecord retired;
    retired.version = 1;
    retired.state = KeyState::retired;
    retired.created_ms = 100;
    retired.activated_ms = 200;
    retired.retired_ms = 300;
    retired.verify_until_ms = 900;
    VersionRecord destroyed;
    destroyed.version = 2;
    destroyed.state = KeyState::destroyed;
    destroyed.created_ms = 100;
    destroyed.activated_ms = 350;  // after version 1 was retired: it supersedes nothing
    destroyed.destroyed_ms = 400;
    const Data data = {record(state_label(label_of(1)), retired.to_json()),
                       record(state_label(label_of(2)), destroyed.to_json())};
    const Pairs pairs = {key_pair(1, "01"), key_pair(2, "02", false)};
    const Fold f = fold_key_records(data, pairs, 1000);
    ASSERT_EQ(versions_of(f).size(), 2u);
    const VersionRecord& v1 = find(f, 1)->record;
    EXPECT_EQ(v1.state, KeyState::retired);
    EXPECT_EQ(v1.retired_ms, 300);
    EXPECT_EQ(v1.verify_until_ms, 900);
    const VersionRecord& v2 = find(f, 2)->record;
    EXPECT_EQ(v2.state, KeyState::destroyed);
    EXPECT_EQ(v2.destroyed_ms, 400);
    EXPECT_EQ(find(f, 2)->id_hex, "02");
}

TEST(FoldKeyRecords, CreatedRecordsTakePrecedenceOverALegacyStateRecord) {
    VersionRecord legacy;
    legacy.version = 1;
    legacy.state = KeyState::retired;
    legacy.created_ms = 100;
    legacy.retired_ms = 150;
    legacy.verify_until_ms = 160;
    Data data = {record(state_label(label_of(1)), legacy.to_json())};
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    const Fold f = fold_key_records(data, pairs, 2000);
    ASSERT_EQ(versions_of(f).size(), 1u);
    EXPECT_EQ(versions_of(f)[0].record.state, KeyState::active);
    EXPECT_EQ(versions_of(f)[0].record.activated_ms, 1000);
}

// ---- version numbers ----

TEST(FoldKeyRecords, HighestCountsClaimsAndStrayPairsSoTheNextNumberSkipsThem) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    data.push_back(record(claim_prefix(label_of(3)) + std::string(32, 'c') + "/replica-b", "{}"));
    pairs.push_back(key_pair(5, "05"));  // generated, never recorded
    data.push_back(record(claim_prefix(label_of(1, "product-b")) + std::string(32, 'd'), "{}"));
    const Fold f = fold_key_records(data, pairs, 2000);
    EXPECT_EQ(f.highest.at("product-a"), 5u);
    EXPECT_EQ(f.highest.at("product-b"), 1u);
    ASSERT_EQ(versions_of(f).size(), 1u);
    EXPECT_EQ(versions_of(f)[0].record.version, 1u);
    EXPECT_EQ(f.keys.count("product-b"), 0u);
    EXPECT_TRUE(f.warnings.empty());
}

TEST(FoldKeyRecords, ObjectsThatAreNotKeyRecordsAreSkippedSilently) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    data.push_back(record("licentra/request/" + std::string(32, 'e'), "{}"));
    data.push_back(record("licentra/audit/anchor", "{}"));
    data.push_back(record("other/product-a/v9/created/09", created_at(1).to_json()));
    data.push_back(record(label_of(7), "{}"));  // the key label itself carries no record
    const Fold f = fold_key_records(data, pairs, 2000);
    EXPECT_EQ(f.highest.at(kName), 1u);
    EXPECT_EQ(f.highest.count("request"), 0u);
    EXPECT_EQ(versions_of(f).size(), 1u);
    EXPECT_TRUE(f.warnings.empty());
}

// ---- malformed records ----

TEST(FoldKeyRecords, MalformedRecordsAreIgnoredWithAWarning) {
    Data data;
    Pairs pairs;
    add_version(data, pairs, 1, created_at(1000), "01");
    const std::string v1 = label_of(1);
    const std::string created_bad = created_label(v1, "ff");
    const std::string retired_bad = retired_prefix(v1) + std::string(32, 'b');
    const std::string destroyed_bad = destroyed_prefix(v1) + std::string(32, 'c');
    const std::string unknown_member = retired_prefix(v1) + std::string(32, 'd');
    const std::string state_bad = state_label(label_of(2));
    data.push_back(record(created_bad, "not json"));
    data.push_back(record(retired_bad, R"({"at_ms":1500,"by":"officer"})"));  // no verify_until
    data.push_back(record(destroyed_bad, R"({"at_ms":"soon","by":"officer"})"));
    data.push_back(
        record(unknown_member, R"({"at_ms":1500,"by":"o","verify_until_ms":2,"extra":1})"));
    data.push_back(record(state_bad, R"({"version":3})"));
    pairs.push_back(key_pair(1, "ff"));

    const Fold f = fold_key_records(data, pairs, 2000);
    // Version 1 is as if the malformed records were absent (the second pair is still flagged).
    EXPECT_EQ(active_versions(f), std::vector<unsigned>{1});
    EXPECT_EQ(find(f, 1)->id_hex, "01");
    EXPECT_EQ(find(f, 1)->record.retired_ms, std::nullopt);
    EXPECT_EQ(find(f, 2), nullptr);
    EXPECT_EQ(f.highest.at(kName), 2u);
    const std::vector<std::string> expected = {
        created_bad + ": key record: created record is not a JSON object, ignored",
        retired_bad + ": key record: event record verify_until_ms: is missing, ignored",
        destroyed_bad + ": key record: event record at_ms: must be an integer, ignored",
        unknown_member + ": key record: event record: unknown member \"extra\", ignored",
        state_bad + ": unreadable, ignored",
        "licentra/product-a/v1 has a second key pair (CKA_ID ff) that is not the version; "
        "remove it with: pkcs11-tool --login --delete-object --type privkey --label "
        "'licentra/product-a/v1' --id ff (and --type pubkey)",
    };
    EXPECT_EQ(f.warnings, expected);
}

TEST(FoldKeyRecords, LegacyStateRecordForAnotherVersionIsUnreadable) {
    VersionRecord legacy;
    legacy.version = 2;
    legacy.state = KeyState::active;
    const Data data = {record(state_label(label_of(1)), legacy.to_json())};
    const Pairs pairs = {key_pair(1, "01")};
    const Fold f = fold_key_records(data, pairs, 2000);
    EXPECT_TRUE(versions_of(f).empty());
    EXPECT_EQ(f.warnings,
              std::vector<std::string>{"licentra/product-a/v1/state: unreadable, ignored"});
}

TEST(FoldKeyRecords, CreatedRecordsRoundTripAndRefuseUnknownMembers) {
    CreatedRecord c = created_at(1234, 55, crypto::Algorithm::PS256);
    c.request = std::string(32, '7');
    auto back = CreatedRecord::from_json(core::as_bytes(c.to_json()));
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(back->to_json(), c.to_json());
    EXPECT_EQ(back->algorithm, crypto::Algorithm::PS256);
    EXPECT_EQ(back->activate_at_ms, 1234);
    EXPECT_EQ(back->supersede_verify_ms, 55);
    EXPECT_EQ(back->request, c.request);

    std::string extra = c.to_json();
    extra.insert(extra.size() - 1, R"(,"x":1)");
    auto refused = CreatedRecord::from_json(core::as_bytes(extra));
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(refused.error().code, "keys.bad_record");

    CreatedRecord negative = c;
    negative.supersede_verify_ms = -1;
    EXPECT_FALSE(CreatedRecord::from_json(core::as_bytes(negative.to_json())).ok());
}

// JSON readers disagree on which of two equal member names counts: such a record is refused.
TEST(FoldKeyRecords, ARecordWithADuplicateMemberIsRefused) {
    auto created = CreatedRecord::from_json(core::as_bytes(std::string(
        R"({"algorithm":"EdDSA","created_ms":1,"activate_at_ms":1,"supersede_verify_ms":0,)"
        R"("by":"r","request":"","activate_at_ms":2})")));
    ASSERT_FALSE(created.ok());
    EXPECT_EQ(created.error().kind, core::ErrorKind::integrity);
    EXPECT_EQ(created.error().code, "keys.bad_record");
    EXPECT_EQ(created.error().message,
              "key record: created record: duplicate member \"activate_at_ms\"");
    auto event = EventRecord::from_json(
        core::as_bytes(std::string(R"({"at_ms":1,"by":"r","by":"s"})")), false);
    ASSERT_FALSE(event.ok());
    EXPECT_EQ(event.error().code, "keys.bad_record");
    auto state = VersionRecord::from_json(core::as_bytes(
        std::string(R"({"version":1,"algorithm":"EdDSA","state":"active","created_ms":1,)"
                    R"("state":"destroyed"})")));
    ASSERT_FALSE(state.ok());
    EXPECT_EQ(state.error().code, "keys.bad_state_record");
}

TEST(FoldKeyRecords, RecordTimesOutsideTheRecordRangeAreRefusedBeforeTheFoldAddsToThem) {
    const CreatedRecord c = created_at(1234, 55);
    for (std::int64_t t : {std::int64_t{-1}, core::kMaxRecordUnixMillis + 1,
                           std::numeric_limits<std::int64_t>::max()}) {
        CreatedRecord created = c;
        created.created_ms = t;
        EXPECT_FALSE(CreatedRecord::from_json(core::as_bytes(created.to_json())).ok()) << t;
        CreatedRecord activate = c;
        activate.activate_at_ms = t;
        EXPECT_FALSE(CreatedRecord::from_json(core::as_bytes(activate.to_json())).ok()) << t;
        const EventRecord at{t, std::nullopt, "r"};
        EXPECT_FALSE(EventRecord::from_json(core::as_bytes(at.to_json()), false).ok()) << t;
        const EventRecord until{1000, t, "r"};
        EXPECT_FALSE(EventRecord::from_json(core::as_bytes(until.to_json()), true).ok()) << t;
    }
    // 2^64 - 1 is read as -1 by the JSON reader: refused too.
    auto huge = EventRecord::from_json(
        core::as_bytes(std::string(R"({"at_ms":18446744073709551615,"by":"r"})")), false);
    ASSERT_FALSE(huge.ok());
    EXPECT_EQ(huge.error().code, "keys.bad_record");
    // The publication delay after a successor's activation is a duration: at most 36500 days.
    CreatedRecord delay = c;
    delay.supersede_verify_ms = core::kMaxDurationMillis + 1;
    EXPECT_FALSE(CreatedRecord::from_json(core::as_bytes(delay.to_json())).ok());
    delay.supersede_verify_ms = core::kMaxDurationMillis;
    EXPECT_TRUE(CreatedRecord::from_json(core::as_bytes(delay.to_json())).ok());
    const EventRecord latest{core::kMaxRecordUnixMillis, core::kMaxRecordUnixMillis, "r"};
    EXPECT_TRUE(EventRecord::from_json(core::as_bytes(latest.to_json()), true).ok());
}

// ---- determinism ----

Data mixed_records(Pairs& pairs) {
    Data data;
    add_version(data, pairs, 1, created_at(1000), "01");
    add_version(data, pairs, 2, created_at(2000, 300), "02");
    add_version(data, pairs, 2, created_at(2100, 300), "12");
    add_version(data, pairs, 3, created_at(9000), "03");
    add_retired(data, 1, 1500, 5000);
    add_destroyed(data, 1, 4000);
    data.push_back(record(claim_prefix(label_of(4)) + std::string(32, '4'), "{}"));
    data.push_back(record(created_label(label_of(6), "06"), "{}"));
    pairs.push_back(key_pair(8, "08"));
    return data;
}

TEST(FoldKeyRecords, SameRecordsAtTheSameTimeFoldIdentically) {
    Pairs pairs;
    const Data data = mixed_records(pairs);
    const Fold a = fold_key_records(data, pairs, 5000);
    const Fold b = fold_key_records(data, pairs, 5000);
    EXPECT_EQ(dump(a), dump(b));
    EXPECT_EQ(active_versions(a), std::vector<unsigned>{2});
    EXPECT_EQ(a.highest.at(kName), 8u);
}

TEST(FoldKeyRecords, ListingOrderDoesNotChangeTheKeyState) {
    Pairs pairs;
    const Data data = mixed_records(pairs);
    Data reversed_data(data.rbegin(), data.rend());
    Pairs reversed_pairs(pairs.rbegin(), pairs.rend());
    const Fold a = fold_key_records(data, pairs, 5000);
    const Fold b = fold_key_records(reversed_data, reversed_pairs, 5000);
    ASSERT_EQ(a.keys.size(), b.keys.size());
    for (const auto& [name, list] : a.keys) {
        const auto& other = b.keys.at(name);
        ASSERT_EQ(list.size(), other.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
            EXPECT_EQ(list[i].id_hex, other[i].id_hex);
            EXPECT_EQ(list[i].record.to_json(), other[i].record.to_json());
        }
    }
    EXPECT_EQ(a.highest, b.highest);
    auto sorted = [](std::vector<std::string> w) {
        std::sort(w.begin(), w.end());
        return w;
    };
    EXPECT_EQ(sorted(a.warnings), sorted(b.warnings));
}

TEST(UnreadableVersion, RefusedKeyPairIsATokenFaultThatNamesItsCause) {
    const auto e = unreadable_version(
        "licentra/one/v3", core::make_error(core::ErrorKind::integrity, "hsm.key_attributes",
                                            "public CKA_TOKEN is false"));
    EXPECT_EQ(e.kind, core::ErrorKind::hsm_unavailable);
    EXPECT_EQ(e.code, "keys.key_unreadable");
    EXPECT_EQ(e.message,
              "active version licentra/one/v3 cannot be loaded yet: hsm.key_attributes: public "
              "CKA_TOKEN is false");
}

TEST(UnreadableVersion, MissingPairIsATokenFaultToo) {
    const auto e = unreadable_version(
        "licentra/one/v3", core::make_error(core::ErrorKind::not_found, "hsm.key_not_found", "x"));
    EXPECT_EQ(e.kind, core::ErrorKind::hsm_unavailable);
    EXPECT_EQ(e.code, "keys.key_unreadable");
}

TEST(UnreadableVersion, DeviceFaultsAreReportedAsTheyAre) {
    const auto device =
        core::make_error(core::ErrorKind::hsm_unavailable, "hsm.device_unavailable", "x");
    EXPECT_EQ(unreadable_version("licentra/one/v3", device).code, "hsm.device_unavailable");
    const auto internal = core::make_error(core::ErrorKind::internal, "hsm.internal", "y");
    EXPECT_EQ(unreadable_version("licentra/one/v3", internal).code, "hsm.internal");
}

}  // namespace
}  // namespace licentra::keys
