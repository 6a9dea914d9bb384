// Object helpers used inside src/hsm: attribute reads (two-call idiom), finds by label.
#pragma once

#include "hsm/internal.hpp"

namespace licentra::hsm::detail {

// Finds objects matching the template. On failure records the rv in a and returns the error.
core::Result<std::vector<CK_OBJECT_HANDLE>> find_objects(Attempt& a, CK_ATTRIBUTE* tmpl,
                                                         CK_ULONG count, std::string_view context);
core::Result<std::vector<CK_OBJECT_HANDLE>> find_by_label(Attempt& a, CK_OBJECT_CLASS cls,
                                                          const std::string& label);
// Reads a variable-length attribute; nullopt if the attribute does not exist for the object.
core::Result<std::optional<core::Bytes>> get_bytes(Attempt& a, CK_OBJECT_HANDLE obj,
                                                   CK_ATTRIBUTE_TYPE type);
// Reads several attributes of one object in two C_GetAttributeValue calls (lengths, then
// values) instead of two per attribute; each is nullopt if the object does not have it.
// hsm.object_gone if the object vanished or changed while it was read.
core::Result<std::vector<std::optional<core::Bytes>>> get_attributes(
    Attempt& a, CK_OBJECT_HANDLE obj, const std::vector<CK_ATTRIBUTE_TYPE>& types);
// A CK_ULONG attribute value read as bytes by get_attributes; nullopt if absent or not one.
std::optional<CK_ULONG> ulong_value(const std::optional<core::Bytes>& bytes);
core::Result<std::optional<CK_ULONG>> get_ulong(Attempt& a, CK_OBJECT_HANDLE obj,
                                                CK_ATTRIBUTE_TYPE type);
// Reads several CK_BBOOL attributes in one call; an unavailable one is nullopt.
core::Result<std::vector<std::optional<bool>>> get_bools(
    Attempt& a, CK_OBJECT_HANDLE obj, const std::vector<CK_ATTRIBUTE_TYPE>& types);

}  // namespace licentra::hsm::detail
