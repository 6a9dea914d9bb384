#include "core/thread_name.hpp"

#include <pthread.h>

namespace licentra::core {

void name_this_thread(const std::string& name) noexcept {
    // pthread_setname_np refuses names longer than 15 bytes (ERANGE): cut them there.
    const std::string cut = name.substr(0, 15);
    (void)::pthread_setname_np(::pthread_self(), cut.c_str());
}

}  // namespace licentra::core
