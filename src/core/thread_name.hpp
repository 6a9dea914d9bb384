// Names the calling thread for `top -H`, `ps -L`, perf and gdb.
#pragma once

#include <string>

namespace licentra::core {

// Sets the calling thread's name (Linux keeps the first 15 bytes): roles such as "io-0",
// "hsm-3", "audit-writer". Best effort: a failure changes nothing else.
void name_this_thread(const std::string& name) noexcept;

}  // namespace licentra::core
