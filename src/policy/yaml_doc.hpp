// A bounded, alias-free YAML document tree for the policy loader (internal to policy/).
//
// yaml-cpp's node API expands aliases, accepts duplicate keys and loses the distinction between
// plain and quoted scalars, so the loader builds its own tree from yaml-cpp's event stream
// instead. The builder refuses, before any policy rule is looked at: files over kMaxFileBytes,
// invalid UTF-8 or control characters, more than one document, anchors and aliases, explicit
// tags, complex (non-scalar) mapping keys, nesting deeper than kMaxDepth, scalars longer than
// kMaxScalarBytes and more than kMaxNodes nodes. Duplicate mapping keys are reported (all of
// them) without stopping. yaml-cpp is only included by yaml_doc.cpp.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace licentra::policy::detail {

inline constexpr std::size_t kMaxFileBytes = 1024 * 1024;
inline constexpr std::size_t kMaxDepth = 24;
inline constexpr std::size_t kMaxScalarBytes = 4096;
inline constexpr std::size_t kMaxNodes = 50000;

struct YamlNode {
    enum class Kind { null, scalar, sequence, mapping };
    Kind kind = Kind::null;
    bool plain = true;  // scalar written without quotes (numbers and booleans must be plain)
    std::string value;  // scalar text
    int line = 0;       // 1-based
    int column = 0;     // 1-based
    const YamlNode* parent = nullptr;
    std::string key;                     // key under which this node sits in a mapping parent
    std::size_t index = 0;               // position in a sequence parent
    std::vector<const YamlNode*> items;  // sequence
    std::vector<std::pair<const YamlNode*, const YamlNode*>> pairs;  // mapping: key, value

    // Key path from the document root: "principals[2].roles[0]".
    [[nodiscard]] std::string path() const;
    [[nodiscard]] bool is_scalar() const { return kind == Kind::scalar; }
    [[nodiscard]] bool is_map() const { return kind == Kind::mapping; }
    [[nodiscard]] bool is_seq() const { return kind == Kind::sequence; }
    [[nodiscard]] std::string_view kind_name() const;
};

struct YamlIssue {
    int line = 0;
    int column = 0;
    std::string path;
    std::string message;
};

struct YamlDocument {
    std::deque<YamlNode> nodes;  // stable addresses; nodes[0] is the root when parsed
    const YamlNode* root = nullptr;
    // Structural problems. If `fatal` is set the tree is incomplete and must not be interpreted.
    std::vector<YamlIssue> issues;
    bool fatal = false;
};

// Parses text under the limits above. Never throws.
[[nodiscard]] YamlDocument parse_yaml(std::string_view text) noexcept;

// True if text is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). On failure
// *offset is the byte offset of the first bad sequence.
[[nodiscard]] bool valid_utf8(std::string_view text, std::size_t* offset) noexcept;

}  // namespace licentra::policy::detail
