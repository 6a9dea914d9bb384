#include "app/wiring/requests_hsm.hpp"

namespace licentra::app::wiring {

namespace {
std::string label_of(const std::string& name) { return std::string(kRequestLabelPrefix) + name; }
}  // namespace

core::Status HsmRequestStore::create(const std::string& name, const std::string& json) {
    return token_->create_data(label_of(name), core::as_bytes(json));
}

core::Result<std::vector<std::pair<std::string, std::string>>> HsmRequestStore::list(
    const std::string& prefix) {
    auto listed = token_->list_data(label_of(prefix));
    if (!listed) return listed.error();
    std::vector<std::pair<std::string, std::string>> out;
    out.reserve(listed->size());
    for (const auto& [label, value] : *listed) {
        out.emplace_back(label.substr(kRequestLabelPrefix.size()),
                         std::string(core::as_chars(value)));
    }
    return out;
}

core::Status HsmRequestStore::remove(const std::string& name) {
    return token_->delete_data(label_of(name));
}

void HsmRequestStore::reload_view(std::string_view why) { token_->reload_view(why); }

}  // namespace licentra::app::wiring
