#include "core/thread_name.hpp"

#include <gtest/gtest.h>
#include <pthread.h>

#include <string>
#include <thread>

namespace licentra::core {
namespace {

std::string name_in_thread(const std::string& wanted) {
    std::string seen;
    std::thread t([&] {
        name_this_thread(wanted);
        char buf[64] = {};
        if (::pthread_getname_np(::pthread_self(), buf, sizeof buf) == 0) seen = buf;
    });
    t.join();
    return seen;
}

TEST(ThreadName, ThreadCarriesItsRoleName) { EXPECT_EQ(name_in_thread("hsm-3"), "hsm-3"); }

TEST(ThreadName, NameLongerThanTheKernelKeepsIsCutAtFifteenBytes) {
    EXPECT_EQ(name_in_thread("checkpoint-retry-thread"), "checkpoint-retr");
}

}  // namespace
}  // namespace licentra::core
