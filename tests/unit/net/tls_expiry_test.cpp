// earliest_certificate_expiry: the notAfter /metrics exports for the server chain and client CA.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "net/tls.hpp"
#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

namespace licentra::net {
namespace {

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

TEST(CertificateExpiry, IsTheEarliestNotAfterInTheFile) {
    test::TempDir dir;
    const auto before = now_s();
    test::TestPki pki(dir.path());  // CA valid 30 days, issued certificates 7 days
    const auto server = pki.server();
    const auto after = now_s();
    constexpr std::int64_t kDay = 86400;

    auto ca = earliest_certificate_expiry(pki.ca_file());
    ASSERT_TRUE(ca.ok()) << ca.error().to_string();
    EXPECT_GE(*ca, before + 30 * kDay);
    EXPECT_LE(*ca, after + 30 * kDay);

    // A chain: the server certificate expires first.
    const auto chain = dir.path() / "chain.pem";
    test::write_file(chain, test::read_file(server.cert) + test::read_file(pki.ca_file()));
    auto first = earliest_certificate_expiry(chain);
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    EXPECT_GE(*first, before + 7 * kDay);
    EXPECT_LE(*first, after + 7 * kDay);

    const auto expired = pki.client("old", "old", {}, true);
    auto gone = earliest_certificate_expiry(expired.cert);
    ASSERT_TRUE(gone.ok());
    EXPECT_LE(*gone, after - kDay);
}

TEST(CertificateExpiry, AFileWithoutACertificateIsAnError) {
    test::TempDir dir;
    const auto empty = dir.path() / "empty.pem";
    test::write_file(empty, "not a certificate\n");
    auto r = earliest_certificate_expiry(empty);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "net.tls_config");
    auto missing = earliest_certificate_expiry(dir.path() / "missing.pem");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, "net.tls_config");
}

}  // namespace
}  // namespace licentra::net
