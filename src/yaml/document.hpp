// A bounded, alias-free YAML document tree: the one YAML reader of the configuration and the
// policy loaders.
//
// yaml-cpp's node API expands aliases, accepts duplicate keys, loses the distinction between
// plain and quoted scalars, and (YAML::LoadAll) loops forever on some malformed inputs, so the
// tree is built from yaml-cpp's event stream instead. parse() refuses, before any rule of the
// caller is looked at: files over Options::max_bytes, invalid UTF-8 or control characters, more
// than one document, anchors, aliases and merge keys, explicit tags, complex (non-scalar)
// mapping keys, nesting deeper than kMaxDepth, scalars longer than kMaxScalarBytes and more than
// kMaxNodes nodes. Duplicate mapping keys are reported (all of them) without stopping.
// yaml-cpp is included only by document.cpp; linking licentra::yaml is what brings it in.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace licentra::yaml {

inline constexpr std::size_t kMaxFileBytes = 1024 * 1024;
inline constexpr std::size_t kMaxDepth = 24;
inline constexpr std::size_t kMaxScalarBytes = 4096;
inline constexpr std::size_t kMaxNodes = 50000;

struct Node {
    enum class Kind { null, scalar, sequence, mapping };
    Kind kind = Kind::null;
    bool plain = true;  // scalar written without quotes (numbers and booleans must be plain)
    std::string value;  // scalar text
    int line = 0;       // 1-based
    int column = 0;     // 1-based
    const Node* parent = nullptr;
    std::string key;                                         // key in a mapping parent
    std::size_t index = 0;                                   // position in a sequence parent
    std::vector<const Node*> items;                          // sequence
    std::vector<std::pair<const Node*, const Node*>> pairs;  // mapping: key, value

    // Key path from the document root: "principals[2].roles[0]".
    [[nodiscard]] std::string path() const;
    [[nodiscard]] bool is_null() const { return kind == Kind::null; }
    [[nodiscard]] bool is_scalar() const { return kind == Kind::scalar; }
    [[nodiscard]] bool is_map() const { return kind == Kind::mapping; }
    [[nodiscard]] bool is_seq() const { return kind == Kind::sequence; }
    [[nodiscard]] std::string_view kind_name() const;
};

struct Issue {
    int line = 0;
    int column = 0;
    std::string path;
    std::string message;
};

struct Document {
    std::deque<Node> nodes;  // stable addresses; nodes[0] is the root when parsed
    const Node* root = nullptr;
    // Structural problems. If `fatal` is set the tree is incomplete and must not be interpreted.
    std::vector<Issue> issues;
    bool fatal = false;
    bool empty = false;  // no document at all (nothing but comments or blanks): also fatal
};

struct Options {
    // What the file holds, for messages: "YAML aliases (*name) are not allowed in a <noun>".
    std::string_view noun = "document";
    std::size_t max_bytes = kMaxFileBytes;
};

// Parses text under the limits above. Never throws; every problem is an Issue with a 1-based
// line and column. Thread-safe (no shared state).
[[nodiscard]] Document parse(std::string_view text, const Options& options = {}) noexcept;

// True if text is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). On failure
// *offset is the byte offset of the first bad sequence.
[[nodiscard]] bool valid_utf8(std::string_view text, std::size_t* offset) noexcept;

}  // namespace licentra::yaml
