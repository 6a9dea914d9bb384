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
core::Result<std::optional<CK_ULONG>> get_ulong(Attempt& a, CK_OBJECT_HANDLE obj,
                                                CK_ATTRIBUTE_TYPE type);
// Reads several CK_BBOOL attributes in one call; an unavailable one is nullopt.
core::Result<std::vector<std::optional<bool>>> get_bools(
    Attempt& a, CK_OBJECT_HANDLE obj, const std::vector<CK_ATTRIBUTE_TYPE>& types);

}  // namespace licentra::hsm::detail
