#include "token/strict_json.hpp"

#include <set>
#include <vector>

namespace licentra::token {

namespace {

struct JsonAbort {
    JsonProblem problem;
    std::string detail;
};

}  // namespace

ParsedJson parse_strict_json(std::string_view text, std::size_t max_depth) {
    ParsedJson out;
    if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
        static_cast<unsigned char>(text[1]) == 0xBB &&
        static_cast<unsigned char>(text[2]) == 0xBF) {
        out.problem = JsonProblem::syntax;
        out.detail = "byte order mark";
        return out;
    }
    std::vector<std::set<std::string>> names;  // one set per open object
    std::size_t depth = 0;
    auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event,
                        nlohmann::json& parsed) -> bool {
        using Ev = nlohmann::json::parse_event_t;
        switch (event) {
            case Ev::object_start:
            case Ev::array_start:
                if (++depth > max_depth) {
                    throw JsonAbort{JsonProblem::too_deep,
                                    "nested deeper than " + std::to_string(max_depth)};
                }
                if (event == Ev::object_start) names.emplace_back();
                break;
            case Ev::object_end:
            case Ev::array_end:
                --depth;
                if (event == Ev::object_end && !names.empty()) names.pop_back();
                break;
            case Ev::key:
                if (!names.empty() && !names.back().insert(parsed.get<std::string>()).second) {
                    throw JsonAbort{JsonProblem::duplicate,
                                    "duplicate member \"" + parsed.get<std::string>() + "\""};
                }
                break;
            case Ev::value:
            default:
                break;
        }
        return true;
    };
    try {
        out.value = nlohmann::json::parse(text.begin(), text.end(), callback, true, false);
    } catch (const JsonAbort& abort) {
        out.problem = abort.problem;
        out.detail = abort.detail;
        out.value = nullptr;
    } catch (const nlohmann::json::exception&) {
        out.problem = JsonProblem::syntax;
        out.detail = "not valid JSON";
        out.value = nullptr;
    }
    return out;
}

}  // namespace licentra::token
