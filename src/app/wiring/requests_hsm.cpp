#include "app/wiring/requests_hsm.hpp"

namespace licentra::app::wiring {

namespace {
std::string label_of(const std::string& id) { return std::string(kRequestLabelPrefix) + id; }
}  // namespace

core::Status HsmRequestStore::put(const std::string& id, const std::string& json) {
    return token_->write_data(label_of(id), core::as_bytes(json));
}

core::Result<std::optional<std::string>> HsmRequestStore::get(const std::string& id) {
    auto data = token_->read_data(label_of(id));
    if (!data) return data.error();
    if (!*data) return std::optional<std::string>{};
    return std::optional<std::string>{std::string(core::as_chars(**data))};
}

core::Status HsmRequestStore::remove(const std::string& id) {
    return token_->delete_data(label_of(id));
}

core::Result<std::vector<std::string>> HsmRequestStore::all() {
    auto listed = token_->list_data(std::string(kRequestLabelPrefix));
    if (!listed) return listed.error();
    std::vector<std::string> out;
    out.reserve(listed->size());
    for (const auto& [label, value] : *listed) out.emplace_back(core::as_chars(value));
    return out;
}

}  // namespace licentra::app::wiring
