// Pseudonym epochs: which epoch an instant falls in, the names entries carry, and when an
// epoch's key is due for destruction. Times are given, never read from the clock.
#include "audit/pseudonym_epoch.hpp"

#include <gtest/gtest.h>

#include "audit/entry.hpp"

namespace licentra::audit {
namespace {

using namespace std::chrono_literals;

core::TimePoint at_s(std::int64_t s) { return core::TimePoint(std::chrono::seconds(s)); }

TEST(PseudonymEpoch, AnInstantBelongsToTheEpochThatStartsAtAMultipleOfItsLength) {
    const std::chrono::seconds quarter = 90 * 24h;  // 7,776,000 s
    const auto e = epoch_at(at_s(1'790'000'000), quarter);
    EXPECT_EQ(e.start_s, 1'788'480'000);  // 230 * 7,776,000
    EXPECT_EQ(e.length_s, 7'776'000);
    EXPECT_EQ(e.name(), "e1788480000-7776000");
    EXPECT_EQ(e.label(), "licentra/pseudonym/e1788480000-7776000");
    // The first and the last second of an epoch, and the next one's first.
    EXPECT_EQ(epoch_at(at_s(1'788'480'000), quarter), e);
    EXPECT_EQ(epoch_at(at_s(1'796'255'999) + 999ms, quarter), e);
    EXPECT_EQ(epoch_at(at_s(1'796'256'000), quarter), e.next());
    EXPECT_EQ(e.end(), at_s(1'796'256'000));
    EXPECT_EQ(e.destroy_at(730 * 24h), at_s(1'796'256'000 + 63'072'000));
    // Before 1970 the epoch still starts at or before the instant.
    EXPECT_EQ(epoch_at(at_s(-1), 10s), (PseudonymEpoch{-10, 10}));
}

TEST(PseudonymEpoch, NamesParseBackAndAnythingElseIsRefused) {
    const PseudonymEpoch e{1'788'480'000, 7'776'000};
    EXPECT_EQ(PseudonymEpoch::parse(e.name()), e);
    EXPECT_EQ(PseudonymEpoch::from_label(e.label()), e);
    EXPECT_EQ(PseudonymEpoch::from_label("licentra/pseudonym/v1"), std::nullopt);
    EXPECT_EQ(PseudonymEpoch::from_label("licentra/other/e10-10"), std::nullopt);
    for (const char* bad :
         {"", "e", "e10", "e10-", "e-10", "x10-10", "e10-0", "e10-3", "e010-10", "e10-010",
          "e1e3-10", "e10-10 ", "e+10-10", "e99999999990-10", "e4102444800-86400"}) {
        EXPECT_EQ(PseudonymEpoch::parse(bad), std::nullopt) << bad;
    }
}

TEST(PseudonymEpoch, AnEntryNamesItsEpochAndAMalformedNameIsRefused) {
    Entry e;
    e.seq = 7;
    e.time = at_s(1'790'000'000);
    e.principal = "license-server";
    e.action = "token.sign";
    e.result = Outcome::allowed;
    e.pseudonyms = std::map<std::string, std::string>{{"sub", std::string(64, 'a')}};
    e.pseudonym_epoch = "e1788480000-7776000";
    auto line = serialize_entry(e);
    ASSERT_TRUE(line.ok()) << line.error().to_string();
    EXPECT_NE(line->find(R"("pseudonym_epoch":"e1788480000-7776000")"), std::string::npos);
    auto back = parse_entry(*line);
    ASSERT_TRUE(back.ok()) << back.error().to_string();
    EXPECT_EQ(*back, e);
    e.pseudonym_epoch = "e1788480000-7776001";  // not a multiple: no epoch of this name
    auto bad = serialize_entry(e);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "audit.entry_invalid");
    EXPECT_NE(bad.error().message.find("pseudonym_epoch"), std::string::npos);
}

}  // namespace
}  // namespace licentra::audit
