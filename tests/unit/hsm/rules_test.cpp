#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "hsm/hsm.hpp"
#include "hsm/internal.hpp"

namespace licentra::hsm {
namespace {

using core::ErrorKind;

TEST(TokenUri, PinSourceIsDecodedByP11Kit) {
    auto u = check_token_uri("pkcs11:token=a?pin-source=file:%2Fx&module-name=m");
    ASSERT_TRUE(u.ok()) << u.error().to_string();
    EXPECT_EQ(u->pin_source, "file:/x");
    auto none = check_token_uri("pkcs11:token=a");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->pin_source.has_value());
}

TEST(TokenUri, WhatTheTokenWouldRefuseIsRefused) {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"token=a", "hsm.uri_malformed"},                             // no scheme
        {"pkcs11:token=a?pin-value=1234", "hsm.uri_pin_value"},       // PIN in the URI
        {"pkcs11:token=a;object=k", "hsm.uri_malformed"},             // selects an object
        {"pkcs11:token=a;colour=red", "hsm.uri_malformed"},           // unknown attribute
        {"pkcs11:token=a?pin-source=file:%zz", "hsm.uri_malformed"},  // bad percent-encoding
    };
    for (const auto& [uri, code] : bad) {
        auto u = check_token_uri(uri);
        ASSERT_FALSE(u.ok()) << uri;
        EXPECT_EQ(u.error().code, code) << uri;
        EXPECT_EQ(u.error().kind, ErrorKind::usage) << uri;
        EXPECT_EQ(u.error().message.find("1234"), std::string::npos) << uri;
    }
}

TEST(Classify, BrokenSessionsAreEvictedAndRetried) {
    for (CK_RV rv : {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_USER_NOT_LOGGED_IN}) {
        EXPECT_EQ(classify(rv), Fault::session) << rv_name(rv);
        EXPECT_TRUE(evicts_session(classify(rv)));
        EXPECT_EQ(error_kind(classify(rv)), ErrorKind::hsm_unavailable);
    }
}

TEST(Classify, DeviceFaultsAreHsmUnavailable) {
    for (CK_RV rv : {CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_ERROR}) {
        EXPECT_EQ(classify(rv), Fault::device) << rv_name(rv);
        EXPECT_TRUE(evicts_session(classify(rv)));
        EXPECT_EQ(error_kind(classify(rv)), ErrorKind::hsm_unavailable);
    }
}

TEST(Classify, RequestErrorsAreUsageAndNotRetried) {
    for (CK_RV rv : {CKR_ARGUMENTS_BAD, CKR_MECHANISM_INVALID, CKR_TEMPLATE_INCONSISTENT,
                     CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_DATA_LEN_RANGE, CKR_ATTRIBUTE_SENSITIVE}) {
        EXPECT_EQ(classify(rv), Fault::request) << rv_name(rv);
        EXPECT_FALSE(evicts_session(classify(rv)));
        EXPECT_EQ(error_kind(classify(rv)), ErrorKind::usage);
    }
}

TEST(Classify, StateConflictsAreConflict) {
    EXPECT_EQ(error_kind(classify(CKR_TOKEN_WRITE_PROTECTED)), ErrorKind::conflict);
    EXPECT_EQ(error_kind(classify(CKR_SESSION_READ_ONLY)), ErrorKind::conflict);
}

TEST(Classify, PinErrorsAreNeverRetried) {
    for (CK_RV rv : {CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_PIN_EXPIRED}) {
        EXPECT_EQ(classify(rv), Fault::auth);
        EXPECT_FALSE(evicts_session(classify(rv)));
    }
}

TEST(Classify, AlreadyLoggedInIsSuccess) {
    EXPECT_EQ(classify(CKR_USER_ALREADY_LOGGED_IN), Fault::none);
    EXPECT_EQ(classify(CKR_OK), Fault::none);
}

TEST(Classify, StaleHandlesAreFoundAgain) {
    EXPECT_EQ(classify(CKR_KEY_HANDLE_INVALID), Fault::stale_handle);
    EXPECT_EQ(classify(CKR_OBJECT_HANDLE_INVALID), Fault::stale_handle);
}

TEST(Classify, AGeneralErrorIsADeviceFault) {
    EXPECT_EQ(classify(CKR_GENERAL_ERROR), Fault::device);
}

TEST(Classify, UnknownValuesAreInternal) {
    EXPECT_EQ(classify(0x8000abcdUL), Fault::internal);
    EXPECT_EQ(rv_name(0x8000abcdUL), "CKR_0x8000ABCD");
}

TEST(P11Error, NamesFunctionAndReturnValue) {
    const auto e = p11_error("C_Sign", CKR_SESSION_CLOSED, "signing with licentra/a/v1");
    EXPECT_EQ(e.kind, ErrorKind::hsm_unavailable);
    EXPECT_EQ(e.code, "hsm.session_broken");
    EXPECT_NE(e.message.find("C_Sign returned CKR_SESSION_CLOSED"), std::string::npos);
}

TEST(KeyLabel, FormatsAndParses) {
    EXPECT_EQ(*key_label("license", 3), "licentra/license/v3");
    auto p = parse_key_label("licentra/license-2024.a/v12");
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->first, "license-2024.a");
    EXPECT_EQ(p->second, 12U);
}

TEST(KeyLabel, RejectsMalformedLabels) {
    for (const char* l :
         {"licentra/x/v0", "licentra/x/v01", "licentra/x/3", "licentra//v1", "other/x/v1",
          "licentra/x/y/v1", "licentra/x/v", "licentra/x/v1a", "licentra/x/v99999999999"}) {
        EXPECT_FALSE(parse_key_label(l).ok()) << l;
    }
    EXPECT_FALSE(key_label("a/b", 1).ok());
    EXPECT_FALSE(key_label("", 1).ok());
    EXPECT_FALSE(key_label("a", 0).ok());
}

detail::KeyAttributes good() {
    detail::KeyAttributes k;
    k.token = k.priv = k.sensitive = k.always_sensitive = k.never_extractable = k.local = k.sign =
        true;
    k.extractable = k.decrypt = k.unwrap = k.derive = k.sign_recover = false;
    k.pub_verify = k.pub_token = true;
    k.pub_encrypt = k.pub_wrap = k.pub_derive = false;
    return k;
}

TEST(KeyAttributePolicy, AcceptsSensitiveSignOnlyKey) {
    EXPECT_TRUE(detail::key_attribute_violations(good()).empty());
    auto k = good();
    k.decrypt.reset();  // not applicable to EC keys on some modules
    EXPECT_TRUE(detail::key_attribute_violations(k).empty());
}

TEST(KeyAttributePolicy, RefusesEveryWeakening) {
    std::vector<std::pair<const char*, std::optional<bool> detail::KeyAttributes::*>> rules = {
        {"private CKA_EXTRACTABLE", &detail::KeyAttributes::extractable},
        {"private CKA_SENSITIVE", &detail::KeyAttributes::sensitive},
        {"private CKA_ALWAYS_SENSITIVE", &detail::KeyAttributes::always_sensitive},
        {"private CKA_NEVER_EXTRACTABLE", &detail::KeyAttributes::never_extractable},
        {"private CKA_LOCAL", &detail::KeyAttributes::local},
        {"private CKA_DECRYPT", &detail::KeyAttributes::decrypt},
        {"private CKA_UNWRAP", &detail::KeyAttributes::unwrap},
        {"private CKA_DERIVE", &detail::KeyAttributes::derive},
        {"private CKA_TOKEN", &detail::KeyAttributes::token},
        {"private CKA_PRIVATE", &detail::KeyAttributes::priv},
        {"public CKA_ENCRYPT", &detail::KeyAttributes::pub_encrypt},
        {"public CKA_WRAP", &detail::KeyAttributes::pub_wrap},
        {"public CKA_DERIVE", &detail::KeyAttributes::pub_derive},
    };
    for (const auto& [name, member] : rules) {
        auto k = good();
        k.*member = !*(k.*member);
        const auto v = detail::key_attribute_violations(k);
        ASSERT_EQ(v.size(), 1U) << name;
        EXPECT_NE(v[0].find(name), std::string::npos) << v[0];
    }
    auto k = good();
    k.extractable.reset();  // cannot prove non-extractable: refuse
    EXPECT_EQ(detail::key_attribute_violations(k).size(), 1U);
}

}  // namespace
}  // namespace licentra::hsm
