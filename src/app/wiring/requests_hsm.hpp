// Approval requests stored on the HSM token as append-only CKO_DATA objects under
// "licentra/request/" (service/request_records.hpp), so they survive restarts and every
// replica sharing the token sees the same requests.
#pragma once

#include <memory>

#include "hsm/hsm.hpp"
#include "service/service.hpp"

namespace licentra::app::wiring {

inline constexpr std::string_view kRequestLabelPrefix = "licentra/request/";

class HsmRequestStore final : public service::RequestStore {
  public:
    explicit HsmRequestStore(std::shared_ptr<hsm::Token> token) : token_(std::move(token)) {}
    [[nodiscard]] core::Status create(const std::string& name, const std::string& json) override;
    [[nodiscard]] core::Result<std::vector<std::pair<std::string, std::string>>> list(
        const std::string& prefix) override;
    [[nodiscard]] core::Status remove(const std::string& name) override;
    void reload_view(std::string_view why) override;

  private:
    std::shared_ptr<hsm::Token> token_;
};

}  // namespace licentra::app::wiring
