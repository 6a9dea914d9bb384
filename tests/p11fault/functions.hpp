// The CK_FUNCTION_LIST of PKCS#11 v2.40 (§5.1), in struct order, as one X-macro: the forwarding
// table, the function names and the rule parser are all generated from this one list.
#pragma once

#include <p11-kit/pkcs11.h>

#include <cstddef>

// clang-format off
#define P11FAULT_FUNCTIONS(X)                                                                    \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList)             \
    X(C_GetSlotInfo) X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo)              \
    X(C_InitToken) X(C_InitPIN) X(C_SetPIN) X(C_OpenSession) X(C_CloseSession)                  \
    X(C_CloseAllSessions) X(C_GetSessionInfo) X(C_GetOperationState) X(C_SetOperationState)     \
    X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject)                 \
    X(C_GetObjectSize) X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit)       \
    X(C_FindObjects) X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate)     \
    X(C_EncryptFinal) X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal)        \
    X(C_DigestInit) X(C_Digest) X(C_DigestUpdate) X(C_DigestKey) X(C_DigestFinal)               \
    X(C_SignInit) X(C_Sign) X(C_SignUpdate) X(C_SignFinal) X(C_SignRecoverInit)                 \
    X(C_SignRecover) X(C_VerifyInit) X(C_Verify) X(C_VerifyUpdate) X(C_VerifyFinal)             \
    X(C_VerifyRecoverInit) X(C_VerifyRecover) X(C_DigestEncryptUpdate)                          \
    X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey)   \
    X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom)             \
    X(C_GenerateRandom) X(C_GetFunctionStatus) X(C_CancelFunction) X(C_WaitForSlotEvent)
// clang-format on

namespace licentra::p11fault {

enum class Fn : std::size_t {
#define P11FAULT_ENUM(name) name,
    P11FAULT_FUNCTIONS(P11FAULT_ENUM)
#undef P11FAULT_ENUM
};

inline constexpr std::size_t kFunctionCount = 0
#define P11FAULT_COUNT(name) +1
    P11FAULT_FUNCTIONS(P11FAULT_COUNT)
#undef P11FAULT_COUNT
    ;

inline constexpr const char* kFunctionNames[kFunctionCount] = {
#define P11FAULT_NAME(name) #name,
    P11FAULT_FUNCTIONS(P11FAULT_NAME)
#undef P11FAULT_NAME
};

// The list covers the whole v2.40 struct: a version field followed by one pointer per entry.
static_assert(kFunctionCount == 68);
static_assert(sizeof(CK_FUNCTION_LIST) ==
              offsetof(CK_FUNCTION_LIST, C_Initialize) + kFunctionCount * sizeof(void (*)()));

}  // namespace licentra::p11fault
