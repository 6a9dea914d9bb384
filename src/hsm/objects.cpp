#include "hsm/objects.hpp"

#include <cstring>

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
    auto got = get_attributes(a, obj, {type});
    if (!got) return std::move(got).error();
    return std::move(got->front());
}

namespace {

// An object another thread or process is writing or removing at this instant: SoftHSM's file
// store then reports lengths past anything we store, or CKR_ATTRIBUTE_VALUE_INVALID for a read
// whose template (ours, fixed) cannot be wrong. Gone for now; the caller looks again.
core::Error object_in_flux() {
    return core::make_error(core::ErrorKind::not_found, "hsm.object_gone",
                            "an object changed while it was read");
}

}  // namespace

core::Result<std::vector<std::optional<core::Bytes>>> get_attributes(
    Attempt& a, CK_OBJECT_HANDLE obj, const std::vector<CK_ATTRIBUTE_TYPE>& types) {
    std::vector<CK_ATTRIBUTE> tmpl(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) tmpl[i] = CK_ATTRIBUTE{types[i], nullptr, 0};
    // PKCS#11 v2.40 §5.7: an attribute the object does not have gets CK_UNAVAILABLE_INFORMATION
    // (and the call CKR_ATTRIBUTE_TYPE_INVALID) while the others still get their lengths.
    CK_RV rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, tmpl.data(),
                            static_cast<CK_ULONG>(tmpl.size()));
    if (rv == CKR_ATTRIBUTE_VALUE_INVALID) return object_in_flux();
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        return a.fail("C_GetAttributeValue", rv, "reading an attribute");
    }
    // No attribute of ours comes near 1 MiB; a length beyond it is an object another process
    // is still writing (SoftHSM lists it before its attributes are on disk): gone for now.
    constexpr CK_ULONG kMaxAttribute = 1u << 20;
    std::vector<std::optional<core::Bytes>> out(types.size());
    std::vector<CK_ATTRIBUTE> present;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < types.size(); ++i) {
        if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) continue;
        if (tmpl[i].ulValueLen > kMaxAttribute) return object_in_flux();
        out[i].emplace(tmpl[i].ulValueLen);
        present.push_back(CK_ATTRIBUTE{types[i], out[i]->data(), tmpl[i].ulValueLen});
        index.push_back(i);
    }
    if (present.empty()) return out;
    rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, present.data(),
                      static_cast<CK_ULONG>(present.size()));
    if (rv == CKR_ATTRIBUTE_VALUE_INVALID) return object_in_flux();
    if (rv != CKR_OK) return a.fail("C_GetAttributeValue", rv, "reading an attribute");
    for (std::size_t k = 0; k < present.size(); ++k) {
        auto& value = *out[index[k]];
        if (present[k].ulValueLen > value.size()) return object_in_flux();
        value.resize(present[k].ulValueLen);
    }
    return out;
}

std::optional<CK_ULONG> ulong_value(const std::optional<core::Bytes>& bytes) {
    if (!bytes || bytes->size() != sizeof(CK_ULONG)) return std::nullopt;
    CK_ULONG v = 0;
    std::memcpy(&v, bytes->data(), sizeof v);
    return v;
}

core::Result<std::optional<CK_ULONG>> get_ulong(Attempt& a, CK_OBJECT_HANDLE obj,
                                                CK_ATTRIBUTE_TYPE type) {
    CK_ULONG v = 0;
    CK_ATTRIBUTE attr{type, &v, sizeof v};
    const CK_RV rv = LICENTRA_P11(a.fl, C_GetAttributeValue, a.session, obj, &attr, CK_ULONG{1});
    if (rv == CKR_ATTRIBUTE_TYPE_INVALID) return std::optional<CK_ULONG>{};
    if (rv == CKR_ATTRIBUTE_VALUE_INVALID) return object_in_flux();
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
    if (rv == CKR_ATTRIBUTE_VALUE_INVALID) return object_in_flux();
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
