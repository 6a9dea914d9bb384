// Approval requests stored on the HSM token as CKO_DATA objects "licentra/request/<id>", so
// they survive restarts and every daemon sharing the token sees the same requests.
#pragma once

#include <memory>

#include "hsm/hsm.hpp"
#include "service/service.hpp"

namespace licentra::app::wiring {

inline constexpr std::string_view kRequestLabelPrefix = "licentra/request/";

class HsmRequestStore final : public service::RequestStore {
  public:
    explicit HsmRequestStore(std::shared_ptr<hsm::Token> token) : token_(std::move(token)) {}
    [[nodiscard]] core::Status put(const std::string& id, const std::string& json) override;
    [[nodiscard]] core::Result<std::optional<std::string>> get(const std::string& id) override;
    [[nodiscard]] core::Status remove(const std::string& id) override;
    [[nodiscard]] core::Result<std::vector<std::string>> all() override;

  private:
    std::shared_ptr<hsm::Token> token_;
};

}  // namespace licentra::app::wiring
