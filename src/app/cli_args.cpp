#include "app/cli.hpp"

namespace licentra::app {

Args::Args(std::vector<std::string> argv, std::set<std::string> value_options,
           std::set<std::string> flag_options) {
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a == "--") {
            positional_.insert(positional_.end(), argv.begin() + static_cast<long>(i) + 1,
                               argv.end());
            break;
        }
        if (a.size() > 2 && a.rfind("--", 0) == 0) {
            std::string name = a;
            std::optional<std::string> inline_value;
            if (auto eq = a.find('='); eq != std::string::npos) {
                name = a.substr(0, eq);
                inline_value = a.substr(eq + 1);
            }
            if (value_options.count(name)) {
                if (inline_value) {
                    values_[name] = *inline_value;
                } else if (i + 1 < argv.size()) {
                    values_[name] = argv[++i];
                } else {
                    error_ = "option " + name + " needs a value";
                    return;
                }
            } else if (flag_options.count(name) && !inline_value) {
                flags_.insert(name);
            } else {
                error_ = "unknown option " + name;
                return;
            }
        } else {
            positional_.push_back(a);
        }
    }
}

std::optional<std::string> Args::get(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) return std::nullopt;
    return it->second;
}

bool Args::has(const std::string& name) const { return flags_.count(name) > 0; }

}  // namespace licentra::app
