#include "policy/loader.hpp"

#include <algorithm>
#include <fstream>
#include <system_error>
#include <tuple>

#include "core/bytes.hpp"
#include "policy/compile.hpp"
#include "policy/document.hpp"
#include "policy/validate.hpp"
#include "yaml/document.hpp"

namespace licentra::policy {

std::string Diagnostic::to_string() const {
    std::string s = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    if (!path.empty()) s += path + ": ";
    return s + message;
}

core::Error PolicyLoad::error() const {
    std::string msg;
    for (const Diagnostic& d : diagnostics) {
        if (!msg.empty()) msg += "\n";
        msg += d.to_string();
    }
    if (msg.empty()) msg = "invalid policy";
    return core::make_error(core::ErrorKind::usage, "policy.invalid", std::move(msg));
}

PolicyLoad load_policy_text(std::string_view text, std::string_view file_label) {
    PolicyLoad out;
    try {
        ParsedPolicy parsed = parse_policy(text, file_label);
        out.diagnostics = std::move(parsed.diagnostics);
        if (!parsed.document) return out;
        Validation checked = validate(*parsed.document);
        out.diagnostics.insert(out.diagnostics.end(),
                               std::make_move_iterator(checked.diagnostics.begin()),
                               std::make_move_iterator(checked.diagnostics.end()));
        // Stable: problems at the same position keep the order of the stages and their checks.
        std::stable_sort(out.diagnostics.begin(), out.diagnostics.end(),
                         [](const Diagnostic& a, const Diagnostic& b) {
                             return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                         });
        if (out.diagnostics.empty() && checked.policy) {
            out.engine = compile(std::move(*checked.policy), crypto::sha256(core::as_bytes(text)));
        }
    } catch (const std::exception& e) {
        out.engine.reset();
        out.diagnostics.push_back(Diagnostic{std::string(file_label), 1, 1, "",
                                             std::string("internal error: ") + e.what()});
    }
    return out;
}

PolicyLoad load_policy_file(const std::filesystem::path& path) {
    PolicyLoad out;
    const std::string label = path.string();
    auto fail = [&](std::string message) {
        out.diagnostics.push_back(Diagnostic{label, 1, 1, "", std::move(message)});
        return std::move(out);
    };
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) return fail("cannot read the policy file: " + ec.message());
    if (size > yaml::kMaxFileBytes) {
        return fail("file of " + std::to_string(size) + " bytes exceeds the limit of " +
                    std::to_string(yaml::kMaxFileBytes) + " bytes");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open the policy file");
    std::string text;
    text.resize(yaml::kMaxFileBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (in.bad()) return fail("cannot read the policy file");
    return load_policy_text(text, label);
}

}  // namespace licentra::policy
