// Module loading: dlopen, C_GetFunctionList, C_Initialize(CKF_OS_LOCKING_OK), C_Finalize.
#include <dlfcn.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <mutex>

#include "hsm/internal.hpp"

namespace licentra::hsm {

using core::ErrorKind;
using core::make_error;

namespace detail {

ModuleState::~ModuleState() {
    // C_Finalize only here, once, and only in the process that initialized the module.
    if (initialized && fl != nullptr && ::getpid() == pid) {
        (void)LICENTRA_P11(fl, C_Finalize, nullptr);
    }
    // The library stays mapped (no dlclose): modules register thread-local destructors and
    // atexit handlers that would run against unmapped code, and leak checkers can then still
    // name the module in their reports.
}

}  // namespace detail

namespace {

std::mutex g_registry_mu;
std::map<std::string, std::weak_ptr<Module>>& registry() {
    static std::map<std::string, std::weak_ptr<Module>> r;
    return r;
}

}  // namespace

Module::Module(std::unique_ptr<detail::ModuleState> state) : state_(std::move(state)) {}
Module::~Module() = default;

const std::filesystem::path& Module::path() const noexcept { return state_->path; }

core::Result<std::shared_ptr<Module>> Module::load(const std::filesystem::path& path) {
    std::error_code ec;
    auto canonical = std::filesystem::canonical(path, ec);
    if (ec) {
        return make_error(ErrorKind::usage, "hsm.module_missing",
                          "PKCS#11 module " + path.string() + " not found: " + ec.message());
    }
    std::lock_guard lock(g_registry_mu);
    if (auto existing = registry()[canonical.string()].lock()) return existing;

    auto state = std::make_unique<detail::ModuleState>();
    state->path = canonical;
    // RTLD_LOCAL: the module's symbols stay out of the global namespace.
    state->dl = ::dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (state->dl == nullptr) {
        const char* why = ::dlerror();
        return make_error(ErrorKind::usage, "hsm.module_load",
                          "cannot load PKCS#11 module " + canonical.string() + ": " +
                              (why != nullptr ? why : "unknown error"));
    }
    void* sym = ::dlsym(state->dl, "C_GetFunctionList");
    if (sym == nullptr) {
        return make_error(ErrorKind::usage, "hsm.module_load",
                          canonical.string() + " is not a PKCS#11 module (no C_GetFunctionList)");
    }
    CK_C_GetFunctionList get_list = nullptr;
    static_assert(sizeof get_list == sizeof sym);
    std::memcpy(&get_list, &sym, sizeof sym);
    CK_RV rv = detail::call("C_GetFunctionList", get_list, &state->fl);
    if (rv != CKR_OK || state->fl == nullptr) {
        return p11_error("C_GetFunctionList", rv, "loading " + canonical.string());
    }
    // PKCS#11 v2.40 §5.4: CKF_OS_LOCKING_OK lets the library use native locking; SoftHSM
    // disables its own locking without it.
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    rv = LICENTRA_P11(state->fl, C_Initialize, &args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        return make_error(ErrorKind::conflict, "hsm.module_initialized",
                          canonical.string() +
                              " is already initialized in this process by another component "
                              "(or this process was forked after initializing it)");
    }
    if (rv != CKR_OK) return p11_error("C_Initialize", rv, "initializing " + canonical.string());
    state->initialized = true;
    state->pid = ::getpid();

    std::shared_ptr<Module> module(new Module(std::move(state)));
    registry()[canonical.string()] = module;
    return module;
}

}  // namespace licentra::hsm
