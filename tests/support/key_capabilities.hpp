// Key capabilities for tests and benchmarks that drive a token of their own, which no daemon
// and no policy governs: the key ceremony's mint (keys::Capabilities::ceremony).
#pragma once

#include <string>

#include "hsm/hsm.hpp"
#include "keys/capabilities.hpp"

namespace licentra::test {

[[nodiscard]] inline hsm::GenerateCapability generate_capability(std::string key) {
    return keys::Capabilities::ceremony<hsm::KeyOp::generate>(std::move(key));
}
[[nodiscard]] inline hsm::SignCapability sign_capability(std::string key) {
    return keys::Capabilities::ceremony<hsm::KeyOp::sign>(std::move(key));
}
[[nodiscard]] inline hsm::DestroyCapability destroy_capability(std::string key) {
    return keys::Capabilities::ceremony<hsm::KeyOp::destroy>(std::move(key));
}

}  // namespace licentra::test
