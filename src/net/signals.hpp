// Signal hooks for the daemon's main thread: block the lifecycle signals before any thread is
// started (threads inherit the mask), then wait for them synchronously. SIGTERM/SIGINT lead to
// Server::stop(drain); SIGHUP to Server::reload_tls and the application's own reloads.
#pragma once

#include <csignal>
#include <initializer_list>

namespace licentra::net {

inline constexpr std::initializer_list<int> kLifecycleSignals = {SIGHUP, SIGINT, SIGTERM};

// Blocks `signals` in the calling thread. Call before creating the Server, WorkPool or any
// other thread so that only wait_for_signal() receives them. Returns false on failure.
[[nodiscard]] bool block_signals(std::initializer_list<int> signals = kLifecycleSignals);

// Blocks until one of `signals` (already blocked) is pending and returns its number, or -1 on
// error. Thread-safety: call from one thread.
[[nodiscard]] int wait_for_signal(std::initializer_list<int> signals = kLifecycleSignals);

}  // namespace licentra::net
