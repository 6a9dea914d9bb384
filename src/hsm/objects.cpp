#include "hsm/objects.hpp"

namespace licentra::hsm::detail {

core::Result<std::vector<CK_OBJECT_HANDLE>> find_objects(Attempt& a, CK_ATTRIBUTE* tmpl,
                                                         CK_ULONG count, std::string_view context) {
    std::vector<CK_OBJECT_HANDLE> out;
    FindOperation op(a.fl, a.session);
    const char* failed = "C_FindObjects";
    const CK_RV rv = op.run(tmpl, count, out, &failed);
    if (rv != CKR_OK) return a.fail(failed, rv, context);
    return out;
}

core::Result<std::vector<CK_OBJECT_HANDLE>> find_by_label(Attempt& a, CK_OBJECT_CLASS cls,
                                                          const std::string& label) {
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, const_cast<char*>(label.data()), static_cast<CK_ULONG>(label.size())},
    };
    return find_objects(a, tmpl, 2, "finding " + label);
}

core::Result<std::optional<core::Bytes>> get_bytes(Attempt& a, CK_OBJECT_HANDLE obj,
                                                   CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE attr{type, nullptr, 0};
    CK_RV rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, &attr, CK_ULONG{1});
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return std::optional<core::Bytes>{};
    if (rv != CKR_OK) return a.fail("C_GetAttributeValue", rv, "reading an attribute");
    if (attr.ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::optional<core::Bytes>{};
    // No attribute of ours comes near 1 MiB; a length beyond it is an object another process
    // is still writing (SoftHSM lists it before its attributes are on disk): gone for now.
    constexpr CK_ULONG kMaxAttribute = 1u << 20;
    auto in_flux = [] {
        return core::make_error(core::ErrorKind::not_found, "hsm.object_gone",
                                "an object changed while it was read");
    };
    if (attr.ulValueLen > kMaxAttribute) return in_flux();
    const CK_ULONG asked = attr.ulValueLen;
    core::Bytes value(asked);
    attr.pValue = value.data();
    rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, &attr, CK_ULONG{1});
    if (rv != CKR_OK) return a.fail("C_GetAttributeValue", rv, "reading an attribute");
    if (attr.ulValueLen > asked) return in_flux();
    value.resize(attr.ulValueLen);
    return std::optional<core::Bytes>(std::move(value));
}

core::Result<std::optional<CK_ULONG>> get_ulong(Attempt& a, CK_OBJECT_HANDLE obj,
                                                CK_ATTRIBUTE_TYPE type) {
    CK_ULONG v = 0;
    CK_ATTRIBUTE attr{type, &v, sizeof v};
    const CK_RV rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, &attr, CK_ULONG{1});
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return std::optional<CK_ULONG>{};
    if (rv != CKR_OK) return a.fail("C_GetAttributeValue", rv, "reading an attribute");
    if (attr.ulValueLen != sizeof v) return std::optional<CK_ULONG>{};
    return std::optional<CK_ULONG>(v);
}

core::Result<std::vector<std::optional<bool>>> get_bools(
    Attempt& a, CK_OBJECT_HANDLE obj, const std::vector<CK_ATTRIBUTE_TYPE>& types) {
    std::vector<CK_BBOOL> values(types.size(), CK_FALSE);
    std::vector<CK_ATTRIBUTE> tmpl(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
        tmpl[i] = CK_ATTRIBUTE{types[i], &values[i], sizeof(CK_BBOOL)};
    }
    // PKCS#11 v2.40 §5.7 C_GetAttributeValue: attributes that are invalid or sensitive get
    // CK_UNAVAILABLE_INFORMATION while the others are still returned.
    const CK_RV rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, tmpl.data(),
                                  static_cast<CK_ULONG>(tmpl.size()));
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
        return a.fail("C_GetAttributeValue", rv, "reading key attributes");
    }
    std::vector<std::optional<bool>> out(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
        if (tmpl[i].ulValueLen == sizeof(CK_BBOOL)) out[i] = values[i] != CK_FALSE;
    }
    return out;
}

}  // namespace licentra::hsm::detail
