#include "net/signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <cerrno>

namespace licentra::net {
namespace {

sigset_t make_set(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals) sigaddset(&set, s);
    return set;
}

}  // namespace

bool block_signals(std::initializer_list<int> signals) {
    const sigset_t set = make_set(signals);
    return pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0;
}

int wait_for_signal(std::initializer_list<int> signals) {
    const sigset_t set = make_set(signals);
    int sig = 0;
    for (;;) {
        const int rc = sigwait(&set, &sig);
        if (rc == 0) return sig;
        if (rc != EINTR) return -1;
    }
}

}  // namespace licentra::net
