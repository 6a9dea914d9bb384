// Reading many objects in one pass: several attributes per call (detail::get_attributes), the
// key listing, and Token::public_keys against Token::public_key on a real SoftHSM token.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "hsm/internal.hpp"
#include "hsm/objects.hpp"
#include "hsm_test_util.hpp"
#include "support/key_capabilities.hpp"

using namespace licentra;
using hsm::testing::OpenToken;

namespace {

hsm::KeyRef generate(hsm::Token& token, const std::string& name, unsigned version,
                     crypto::Algorithm alg) {
    auto ref = token.generate_key(licentra::test::generate_capability(name), version, alg);
    EXPECT_TRUE(ref) << (ref ? "" : ref.error().to_string());
    return *ref;
}

// Handles of every object of class `cls` labelled `label`.
std::vector<CK_OBJECT_HANDLE> objects(hsm::Token& token, CK_OBJECT_CLASS cls,
                                      const std::string& label) {
    auto found = token.state().run<std::vector<CK_OBJECT_HANDLE>>(
        [&](hsm::detail::Attempt& a) { return hsm::detail::find_by_label(a, cls, label); });
    EXPECT_TRUE(found);
    return *found;
}

// A second public key object with the same label, CKA_ID and point as `key`'s.
void copy_public_object(hsm::Token& token, const hsm::KeyRef& key) {
    auto r = token.state().run<std::monostate>(
        [&](hsm::detail::Attempt& a) -> core::Result<std::monostate> {
            auto got = hsm::detail::get_attributes(
                a, key.handles->pub.load(), {CKA_KEY_TYPE, CKA_EC_PARAMS, CKA_EC_POINT, CKA_ID});
            if (!got) return std::move(got).error();
            CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
            auto& v = *got;
            CK_ATTRIBUTE tmpl[] = {
                {CKA_CLASS, &cls, sizeof cls},
                {CKA_TOKEN, hsm::ptr(&hsm::kTrue), sizeof hsm::kTrue},
                {CKA_KEY_TYPE, v[0]->data(), static_cast<CK_ULONG>(v[0]->size())},
                {CKA_EC_PARAMS, v[1]->data(), static_cast<CK_ULONG>(v[1]->size())},
                {CKA_EC_POINT, v[2]->data(), static_cast<CK_ULONG>(v[2]->size())},
                {CKA_ID, v[3]->data(), static_cast<CK_ULONG>(v[3]->size())},
                {CKA_LABEL, hsm::ptr(key.label.data()), static_cast<CK_ULONG>(key.label.size())},
            };
            CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
            const CK_RV rv = LICENTRA_P11(a.fl, C_CreateObject, a.session, tmpl,
                                          CK_ULONG{sizeof tmpl / sizeof tmpl[0]}, &h);
            if (rv != CKR_OK) return a.fail("C_CreateObject", rv, "copying a public key");
            return std::monostate{};
        });
    ASSERT_TRUE(r) << r.error().to_string();
}

}  // namespace

TEST(HsmAttributes, ReadsSeveralAttributesAtOnceAndAbsentOnesAsEmpty) {
    OpenToken t;
    ASSERT_TRUE(t.token->create_data("licentra/x/a", core::as_bytes(std::string("hello"))));
    auto handles = objects(*t.token, CKO_DATA, "licentra/x/a");
    ASSERT_EQ(handles.size(), 1u);
    auto got =
        t.token->state().run<std::vector<std::optional<core::Bytes>>>([&](hsm::detail::Attempt& a) {
            return hsm::detail::get_attributes(a, handles[0],
                                               {CKA_LABEL, CKA_ID, CKA_APPLICATION, CKA_CLASS});
        });
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_EQ(got->size(), 4u);
    ASSERT_TRUE((*got)[0]);
    EXPECT_EQ(std::string(core::as_chars(*(*got)[0])), "licentra/x/a");
    EXPECT_FALSE((*got)[1]);  // a data object has no CKA_ID
    ASSERT_TRUE((*got)[2]);
    EXPECT_EQ(std::string(core::as_chars(*(*got)[2])), "licentra");
    EXPECT_EQ(hsm::detail::ulong_value((*got)[3]), std::optional<CK_ULONG>(CKO_DATA));
    EXPECT_EQ(hsm::detail::ulong_value((*got)[0]), std::nullopt);  // not a CK_ULONG
}

TEST(HsmAttributes, AnObjectDestroyedBeforeTheReadIsGone) {
    OpenToken t;
    ASSERT_TRUE(t.token->create_data("licentra/x/gone", core::as_bytes(std::string("v"))));
    auto handles = objects(*t.token, CKO_DATA, "licentra/x/gone");
    ASSERT_EQ(handles.size(), 1u);
    ASSERT_TRUE(t.token->delete_data("licentra/x/gone"));
    auto got =
        t.token->state().run<std::vector<std::optional<core::Bytes>>>([&](hsm::detail::Attempt& a) {
            return hsm::detail::get_attributes(a, handles[0], {CKA_LABEL, CKA_VALUE});
        });
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code, "hsm.object_gone");
}

TEST(HsmListing, ListKeysNamesEveryPairWithItsAlgorithmAndObjects) {
    OpenToken t;
    auto a = generate(*t.token, "k", 1, crypto::Algorithm::EdDSA);
    auto b = generate(*t.token, "k", 2, crypto::Algorithm::ES256);
    auto c = generate(*t.token, "other", 1, crypto::Algorithm::ES384);
    ASSERT_TRUE(t.token->destroy_private_key(licentra::test::destroy_capability(b.name), b.label));
    auto keys = t.token->list_keys("licentra/k/");
    ASSERT_TRUE(keys) << keys.error().to_string();
    ASSERT_EQ(keys->size(), 2u);
    EXPECT_EQ((*keys)[0].label, "licentra/k/v1");
    EXPECT_EQ((*keys)[0].name, "k");
    EXPECT_EQ((*keys)[0].version, 1u);
    EXPECT_EQ((*keys)[0].algorithm, crypto::Algorithm::EdDSA);
    EXPECT_EQ((*keys)[0].id_hex, core::hex_encode(a.id));
    EXPECT_TRUE((*keys)[0].has_private);
    EXPECT_TRUE((*keys)[0].has_public);
    EXPECT_EQ((*keys)[1].label, "licentra/k/v2");
    EXPECT_EQ((*keys)[1].algorithm, crypto::Algorithm::ES256);
    EXPECT_EQ((*keys)[1].id_hex, core::hex_encode(b.id));
    EXPECT_FALSE((*keys)[1].has_private);
    EXPECT_TRUE((*keys)[1].has_public);
    auto all = t.token->list_keys();
    ASSERT_TRUE(all);
    ASSERT_EQ(all->size(), 3u);
    EXPECT_EQ((*all)[2].label, c.label);
    EXPECT_EQ((*all)[2].algorithm, crypto::Algorithm::ES384);
}

TEST(HsmListing, PublicKeysInOnePassAreThoseOfPublicKeyForEveryAlgorithm) {
    OpenToken t;
    std::vector<hsm::KeyRef> refs = {
        generate(*t.token, "k", 1, crypto::Algorithm::EdDSA),
        generate(*t.token, "k", 2, crypto::Algorithm::ES256),
        generate(*t.token, "k", 3, crypto::Algorithm::ES384),
        generate(*t.token, "k", 4, crypto::Algorithm::PS256),
    };
    // A version whose private object is destroyed stays exportable.
    ASSERT_TRUE(t.token->destroy_private_key(licentra::test::destroy_capability(refs[1].name),
                                             refs[1].label, &refs[1].id));
    std::vector<std::pair<std::string, core::Bytes>> asked;
    for (auto it = refs.rbegin(); it != refs.rend(); ++it) asked.emplace_back(it->label, it->id);
    auto got = t.token->public_keys(asked);
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_EQ(got->size(), 4u);
    for (std::size_t i = 0; i < asked.size(); ++i) {
        const auto& ref = refs[refs.size() - 1 - i];
        ASSERT_TRUE((*got)[i]) << ref.label << ": " << (*got)[i].error().to_string();
        auto one = t.token->public_key(ref.label, &ref.id);
        ASSERT_TRUE(one);
        EXPECT_EQ((*got)[i]->algorithm(), ref.algorithm) << ref.label;
        EXPECT_EQ((*got)[i]->spki_der(), one->spki_der()) << ref.label;
        EXPECT_EQ((*got)[i]->spki_der(), ref.public_key->spki_der()) << ref.label;
    }
}

TEST(HsmListing, PublicKeysAnswerEachPairAsPublicKeyDoesForMissingAndAmbiguousPairs) {
    OpenToken t;
    auto ok = generate(*t.token, "k", 1, crypto::Algorithm::EdDSA);
    auto doubled = generate(*t.token, "k", 2, crypto::Algorithm::EdDSA);
    copy_public_object(*t.token, doubled);
    const core::Bytes other_id(16, 0xab);
    std::vector<std::pair<std::string, core::Bytes>> asked = {
        {ok.label, ok.id},
        {ok.label, other_id},         // no pair with this CKA_ID
        {"licentra/k/v9", ok.id},     // no such label
        {doubled.label, doubled.id},  // two public objects
    };
    auto got = t.token->public_keys(asked);
    ASSERT_TRUE(got) << got.error().to_string();
    ASSERT_EQ(got->size(), 4u);
    ASSERT_TRUE((*got)[0]);
    EXPECT_EQ((*got)[0]->spki_der(), ok.public_key->spki_der());
    for (std::size_t i = 1; i < asked.size(); ++i) {
        ASSERT_FALSE((*got)[i]) << i;
        auto one = t.token->public_key(asked[i].first, &asked[i].second);
        ASSERT_FALSE(one) << i;
        EXPECT_EQ((*got)[i].error().code, one.error().code) << i;
        EXPECT_EQ((*got)[i].error().kind, one.error().kind) << i;
    }
    EXPECT_EQ((*got)[1].error().code, "hsm.key_not_found");
    EXPECT_EQ((*got)[2].error().code, "hsm.key_not_found");
    EXPECT_EQ((*got)[3].error().code, "hsm.key_ambiguous");
}

TEST(HsmListing, PublicKeysRefuseALabelThatIsNotAKeyLabel) {
    OpenToken t;
    auto got = t.token->public_keys({{"licentra/request/x", core::Bytes(16, 1)}});
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error().code, "hsm.key_label");
    auto none = t.token->public_keys({});
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
}
