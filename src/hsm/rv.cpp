// CK_RV names and classification, and the trace side of the logged call wrapper.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hsm/internal.hpp"

namespace licentra::hsm {

using core::ErrorKind;

Fault classify(CK_RV rv) noexcept {
    switch (rv) {
        case CKR_OK:
        case CKR_USER_ALREADY_LOGGED_IN:  // PKCS#11 v2.40 §5.6: login state is per application
            return Fault::none;
        // The session is gone or has lost its login; another session may be fine.
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_SESSION_CLOSED:
        case CKR_USER_NOT_LOGGED_IN:
            return Fault::session;
        // The token or device is gone or failing; reopening may succeed after a while.
        case CKR_DEVICE_REMOVED:
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_DEVICE_ERROR:
        case CKR_DEVICE_MEMORY:
        case CKR_TOKEN_NOT_RECOGNIZED:
        case CKR_SESSION_COUNT:
        // PKCS#11 v2.40 §5.1.1: "Some horrible, unrecoverable error has occurred ... the token
        // is in an inconsistent state" — for the caller, a failing device: retry elsewhere or
        // later (SoftHSM also answers it for a token whose files vanished, and for
        // C_CreateObject racing another process).
        case CKR_GENERAL_ERROR:
            return Fault::device;
        case CKR_OBJECT_HANDLE_INVALID:
        case CKR_KEY_HANDLE_INVALID:
            return Fault::stale_handle;
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
        case CKR_PIN_EXPIRED:
        case CKR_PIN_LOCKED:
        case CKR_USER_PIN_NOT_INITIALIZED:
            return Fault::auth;
        case CKR_ARGUMENTS_BAD:
        case CKR_ATTRIBUTE_READ_ONLY:
        case CKR_ATTRIBUTE_SENSITIVE:
        case CKR_ATTRIBUTE_TYPE_INVALID:
        case CKR_ATTRIBUTE_VALUE_INVALID:
        case CKR_DATA_INVALID:
        case CKR_DATA_LEN_RANGE:
        case CKR_DOMAIN_PARAMS_INVALID:
        case CKR_CURVE_NOT_SUPPORTED:
        case CKR_KEY_SIZE_RANGE:
        case CKR_KEY_TYPE_INCONSISTENT:
        case CKR_KEY_FUNCTION_NOT_PERMITTED:
        case CKR_KEY_NOT_NEEDED:
        case CKR_MECHANISM_INVALID:
        case CKR_MECHANISM_PARAM_INVALID:
        case CKR_TEMPLATE_INCOMPLETE:
        case CKR_TEMPLATE_INCONSISTENT:
        case CKR_BUFFER_TOO_SMALL:
        case CKR_RANDOM_NO_RNG:
        case CKR_FUNCTION_NOT_SUPPORTED:
            return Fault::request;
        case CKR_TOKEN_WRITE_PROTECTED:
        case CKR_SESSION_READ_ONLY:
        case CKR_SESSION_READ_ONLY_EXISTS:
        case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
        case CKR_USER_TYPE_INVALID:
        case CKR_ACTION_PROHIBITED:
            return Fault::conflict;
        default:
            return Fault::internal;
    }
}

ErrorKind error_kind(Fault fault) noexcept {
    switch (fault) {
        case Fault::request:
            return ErrorKind::usage;
        case Fault::conflict:
            return ErrorKind::conflict;
        case Fault::stale_handle:
            return ErrorKind::not_found;
        case Fault::session:
        case Fault::device:
        case Fault::auth:
            return ErrorKind::hsm_unavailable;
        case Fault::none:
        case Fault::internal:
        default:
            return ErrorKind::internal;
    }
}

std::string_view fault_code(Fault fault) noexcept {
    switch (fault) {
        case Fault::none:
            return "hsm.ok";
        case Fault::request:
            return "hsm.request_rejected";
        case Fault::conflict:
            return "hsm.conflict";
        case Fault::stale_handle:
            return "hsm.object_gone";
        case Fault::session:
            return "hsm.session_broken";
        case Fault::device:
            return "hsm.device_unavailable";
        case Fault::auth:
            return "hsm.login_failed";
        case Fault::internal:
        default:
            return "hsm.internal";
    }
}

std::string rv_name(CK_RV rv) {
#define LICENTRA_RV(x) \
    case x:            \
        return #x;
    switch (rv) {
        LICENTRA_RV(CKR_OK)
        LICENTRA_RV(CKR_CANCEL)
        LICENTRA_RV(CKR_HOST_MEMORY)
        LICENTRA_RV(CKR_SLOT_ID_INVALID)
        LICENTRA_RV(CKR_GENERAL_ERROR)
        LICENTRA_RV(CKR_FUNCTION_FAILED)
        LICENTRA_RV(CKR_ARGUMENTS_BAD)
        LICENTRA_RV(CKR_ATTRIBUTE_READ_ONLY)
        LICENTRA_RV(CKR_ATTRIBUTE_SENSITIVE)
        LICENTRA_RV(CKR_ATTRIBUTE_TYPE_INVALID)
        LICENTRA_RV(CKR_ATTRIBUTE_VALUE_INVALID)
        LICENTRA_RV(CKR_ACTION_PROHIBITED)
        LICENTRA_RV(CKR_DATA_INVALID)
        LICENTRA_RV(CKR_DATA_LEN_RANGE)
        LICENTRA_RV(CKR_DEVICE_ERROR)
        LICENTRA_RV(CKR_DEVICE_MEMORY)
        LICENTRA_RV(CKR_DEVICE_REMOVED)
        LICENTRA_RV(CKR_FUNCTION_CANCELED)
        LICENTRA_RV(CKR_FUNCTION_NOT_SUPPORTED)
        LICENTRA_RV(CKR_KEY_HANDLE_INVALID)
        LICENTRA_RV(CKR_KEY_SIZE_RANGE)
        LICENTRA_RV(CKR_KEY_TYPE_INCONSISTENT)
        LICENTRA_RV(CKR_KEY_NOT_NEEDED)
        LICENTRA_RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
        LICENTRA_RV(CKR_MECHANISM_INVALID)
        LICENTRA_RV(CKR_MECHANISM_PARAM_INVALID)
        LICENTRA_RV(CKR_OBJECT_HANDLE_INVALID)
        LICENTRA_RV(CKR_OPERATION_ACTIVE)
        LICENTRA_RV(CKR_OPERATION_NOT_INITIALIZED)
        LICENTRA_RV(CKR_PIN_INCORRECT)
        LICENTRA_RV(CKR_PIN_INVALID)
        LICENTRA_RV(CKR_PIN_LEN_RANGE)
        LICENTRA_RV(CKR_PIN_EXPIRED)
        LICENTRA_RV(CKR_PIN_LOCKED)
        LICENTRA_RV(CKR_SESSION_CLOSED)
        LICENTRA_RV(CKR_SESSION_COUNT)
        LICENTRA_RV(CKR_SESSION_HANDLE_INVALID)
        LICENTRA_RV(CKR_SESSION_READ_ONLY)
        LICENTRA_RV(CKR_SESSION_EXISTS)
        LICENTRA_RV(CKR_SESSION_READ_ONLY_EXISTS)
        LICENTRA_RV(CKR_SIGNATURE_INVALID)
        LICENTRA_RV(CKR_SIGNATURE_LEN_RANGE)
        LICENTRA_RV(CKR_TEMPLATE_INCOMPLETE)
        LICENTRA_RV(CKR_TEMPLATE_INCONSISTENT)
        LICENTRA_RV(CKR_TOKEN_NOT_PRESENT)
        LICENTRA_RV(CKR_TOKEN_NOT_RECOGNIZED)
        LICENTRA_RV(CKR_TOKEN_WRITE_PROTECTED)
        LICENTRA_RV(CKR_USER_ALREADY_LOGGED_IN)
        LICENTRA_RV(CKR_USER_NOT_LOGGED_IN)
        LICENTRA_RV(CKR_USER_PIN_NOT_INITIALIZED)
        LICENTRA_RV(CKR_USER_TYPE_INVALID)
        LICENTRA_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
        LICENTRA_RV(CKR_DOMAIN_PARAMS_INVALID)
        LICENTRA_RV(CKR_CURVE_NOT_SUPPORTED)
        LICENTRA_RV(CKR_BUFFER_TOO_SMALL)
        LICENTRA_RV(CKR_RANDOM_NO_RNG)
        LICENTRA_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
        LICENTRA_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        default:
            break;
    }
#undef LICENTRA_RV
    char buf[32];
    std::snprintf(buf, sizeof buf, "CKR_0x%08lX", static_cast<unsigned long>(rv));
    return buf;
}

core::Error p11_error(const char* function, CK_RV rv, std::string_view context) {
    const Fault f = classify(rv);
    std::string message(context);
    if (!message.empty()) message += ": ";
    message += std::string(function) + " returned " + rv_name(rv);
    return core::make_error(error_kind(f), std::string(fault_code(f)), std::move(message));
}

Metrics& metrics() noexcept {
    static Metrics m;
    return m;
}

namespace detail {

namespace {
std::atomic<std::uint64_t> g_login_calls{0};
}

bool trace_enabled() noexcept {
    static const bool enabled = [] {
        const char* v = std::getenv("LICENTRA_HSM_TRACE");
        return v != nullptr && std::strcmp(v, "1") == 0;
    }();
    return enabled;
}

void trace(const char* function, CK_RV rv) {
    std::fprintf(stderr, "licentra-hsm: %s -> %s\n", function, rv_name(rv).c_str());
}

std::uint64_t login_calls() noexcept { return g_login_calls.load(); }

void count_call(const char* function, CK_RV rv) noexcept {
    std::string_view result = "ok";
    switch (classify(rv)) {
        case Fault::none:
            break;
        case Fault::request:
            result = "request";
            break;
        case Fault::conflict:
            result = "conflict";
            break;
        case Fault::stale_handle:
            result = "stale_handle";
            break;
        case Fault::session:
            result = "session";
            break;
        case Fault::device:
            result = "device";
            break;
        case Fault::auth:
            result = "auth";
            break;
        case Fault::internal:
            result = "internal";
            break;
    }
    try {
        auto& m = metrics();
        m.operations.at({function, result}).inc();
        if (rv != CKR_OK) m.errors.at({rv_name(rv)}).inc();
    } catch (...) {
        // Out of memory for a new label set: the call is not counted.
    }
}
void count_login() noexcept { g_login_calls.fetch_add(1); }

}  // namespace detail
}  // namespace licentra::hsm
