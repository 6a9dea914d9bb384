#include "yaml/document.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <exception>
#include <sstream>
#include <unordered_set>

namespace licentra::yaml {
namespace {

// Thrown by the event handler to stop yaml-cpp early; never leaves this file.
struct Abort {
    Issue issue;
};

class TreeBuilder final : public YAML::EventHandler {
  public:
    TreeBuilder(Document& doc, std::string_view text, std::string_view noun)
        : doc_(doc), text_(text), noun_(noun) {}

    void OnDocumentStart(const YAML::Mark& mark) override {
        // yaml-cpp reports a token that cannot start a node ("," or "]" first, as in ",[ a:!")
        // as an empty document and starts the next document at that same token, forever:
        // YAML::LoadAll never returns. A document that starts where the previous one started
        // is that token.
        if (documents_ > 0 && mark.pos == last_start_) {
            const auto at = static_cast<std::size_t>(mark.pos);
            fail(mark, "",
                 at < text_.size() && text_[at] > ' ' && text_[at] < 0x7f
                     ? "YAML syntax error: unexpected \"" + std::string(1, text_[at]) + "\""
                     : std::string("YAML syntax error: unexpected token"));
        }
        last_start_ = mark.pos;
        if (++documents_ > 1) {
            fail(mark, "",
                 "the file contains more than one YAML document; a " + noun_ + " is one document");
        }
    }
    void OnDocumentEnd() override {}

    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
        Node& n = add(mark, anchor, "?");
        n.kind = Node::Kind::null;
        attach(n);
    }
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t /*anchor*/) override {
        fail(mark, current_path(), "YAML aliases (*name) are not allowed in a " + noun_);
    }
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override {
        if (value.size() > kMaxScalarBytes) {
            fail(mark, current_path(),
                 "scalar of " + std::to_string(value.size()) + " bytes exceeds the limit of " +
                     std::to_string(kMaxScalarBytes));
        }
        Node& n = add(mark, anchor, tag);
        n.kind = Node::Kind::scalar;
        n.plain = tag == "?";
        n.value = value;
        attach(n);
    }
    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value /*style*/) override {
        Node& n = add(mark, anchor, tag);
        n.kind = Node::Kind::sequence;
        attach(n);
        push(n, mark);
    }
    void OnSequenceEnd() override { stack_.pop_back(); }
    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value /*style*/) override {
        Node& n = add(mark, anchor, tag);
        n.kind = Node::Kind::mapping;
        attach(n);
        push(n, mark);
    }
    void OnMapEnd() override {
        if (stack_.back().pending_key != nullptr) {
            // Cannot happen with yaml-cpp (a key always gets a value, possibly null).
            fail_at(*stack_.back().pending_key, "mapping key without a value");
        }
        stack_.pop_back();
    }
    void OnAnchor(const YAML::Mark& mark, const std::string& /*name*/) override {
        fail(mark, current_path(), "YAML anchors (&name) are not allowed in a " + noun_);
    }

  private:
    struct Frame {
        Node* node;
        const Node* pending_key = nullptr;     // mappings: key waiting for its value
        std::unordered_set<std::string> keys;  // mappings: keys seen, to report duplicates
    };

    [[noreturn]] void fail(const YAML::Mark& mark, std::string path, std::string message) {
        throw Abort{Issue{mark.line + 1, mark.column + 1, std::move(path), std::move(message)}};
    }
    [[noreturn]] void fail_at(const Node& n, std::string message) {
        throw Abort{Issue{n.line, n.column, n.path(), std::move(message)}};
    }

    std::string current_path() const {
        if (stack_.empty()) return {};
        const Frame& f = stack_.back();
        if (f.node->is_map() && f.pending_key != nullptr) {
            std::string p = f.node->path();
            return p.empty() ? f.pending_key->value : p + "." + f.pending_key->value;
        }
        return f.node->path();
    }

    Node& add(const YAML::Mark& mark, YAML::anchor_t anchor, const std::string& tag) {
        if (anchor != YAML::NullAnchor) {
            fail(mark, current_path(), "YAML anchors (&name) are not allowed in a " + noun_);
        }
        // "?" is the non-specific tag of plain nodes, "!" that of quoted scalars; anything else
        // is an explicit tag (!!str, !custom), which neither a policy nor a configuration needs.
        if (!tag.empty() && tag != "?" && tag != "!") {
            fail(mark, current_path(), "explicit YAML tags are not allowed in a " + noun_);
        }
        if (doc_.nodes.size() >= kMaxNodes) {
            fail(mark, current_path(),
                 "more than " + std::to_string(kMaxNodes) + " YAML nodes; the file is too complex");
        }
        Node& n = doc_.nodes.emplace_back();
        n.line = mark.line + 1;
        n.column = mark.column + 1;
        return n;
    }

    void attach(Node& n) {
        if (stack_.empty()) {
            if (doc_.root != nullptr) fail_at(n, "more than one root node");
            doc_.root = &n;
            return;
        }
        Frame& f = stack_.back();
        n.parent = f.node;
        if (f.node->is_seq()) {
            n.index = f.node->items.size();
            f.node->items.push_back(&n);
            return;
        }
        if (f.pending_key == nullptr) {
            if (!n.is_scalar()) {
                // A null key (`? : x` or `: x`) or a collection used as key.
                fail_at(n, n.kind == Node::Kind::null ? "empty mapping key"
                                                      : "mapping keys must be plain strings");
            }
            n.parent = f.node;  // a key's path is the path of the value it introduces
            n.key = n.value;
            // YAML 1.1 merge key (yaml.org/type/merge.html): "<<" copies another mapping's
            // entries in, which hides where a value was written; quoted, it is an ordinary key.
            if (n.plain && n.value == "<<") {
                fail_at(n, "YAML merge keys (<<) are not allowed in a " + noun_);
            }
            f.pending_key = &n;
            if (!f.keys.insert(n.value).second) {
                std::string p = f.node->path();
                doc_.issues.push_back(Issue{n.line, n.column,
                                            p.empty() ? n.value : p + "." + n.value,
                                            "duplicate key \"" + n.value + "\""});
            }
            return;
        }
        n.key = f.pending_key->value;
        f.node->pairs.emplace_back(f.pending_key, &n);
        f.pending_key = nullptr;
    }

    void push(Node& n, const YAML::Mark& mark) {
        if (stack_.size() + 1 > kMaxDepth) {
            fail(mark, n.path(),
                 "nesting deeper than " + std::to_string(kMaxDepth) + " levels is not allowed");
        }
        stack_.push_back(Frame{&n, nullptr, {}});
    }

    Document& doc_;
    std::string_view text_;
    std::string noun_;
    std::vector<Frame> stack_;
    int documents_ = 0;
    int last_start_ = -1;  // mark.pos where the last document started
};

void position_of(std::string_view text, std::size_t offset, int* line, int* column) {
    int l = 1;
    int c = 1;
    for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
        if (text[i] == '\n') {
            ++l;
            c = 1;
        } else {
            ++c;
        }
    }
    *line = l;
    *column = c;
}

}  // namespace

std::string Node::path() const {
    if (parent == nullptr) return {};
    std::string base = parent->path();
    if (parent->is_seq()) return base + "[" + std::to_string(index) + "]";
    return base.empty() ? key : base + "." + key;
}

std::string_view Node::kind_name() const {
    switch (kind) {
        case Kind::null:
            return "null";
        case Kind::scalar:
            return "scalar";
        case Kind::sequence:
            return "list";
        case Kind::mapping:
            return "mapping";
        default:
            return "unknown";
    }
}

bool valid_utf8(std::string_view text, std::size_t* offset) noexcept {
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            if (offset) *offset = i;
            return false;
        }
        if (i + len > n) {
            if (offset) *offset = i;
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                if (offset) *offset = i;
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        // Overlong forms, UTF-16 surrogates and code points past U+10FFFF (RFC 3629 §3).
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            if (offset) *offset = i;
            return false;
        }
        i += len;
    }
    return true;
}

Document parse(std::string_view text, const Options& options) noexcept {
    Document doc;
    auto fatal = [&doc](int line, int column, std::string message) {
        doc.issues.push_back(Issue{line, column, "", std::move(message)});
        doc.fatal = true;
        return std::move(doc);
    };
    try {
        if (text.size() > options.max_bytes) {
            return fatal(1, 1,
                         "file of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                             std::to_string(options.max_bytes) + " bytes");
        }
        std::size_t bad = 0;
        if (!valid_utf8(text, &bad)) {
            int line = 0;
            int column = 0;
            position_of(text, bad, &line, &column);
            return fatal(line, column, "invalid UTF-8");
        }
        for (std::size_t i = 0; i < text.size(); ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
                int line = 0;
                int column = 0;
                position_of(text, i, &line, &column);
                return fatal(line, column,
                             "control character U+00" + std::string(1, "0123456789ABCDEF"[c >> 4]) +
                                 std::string(1, "0123456789ABCDEF"[c & 15]) + " is not allowed");
            }
        }
        std::istringstream in{std::string(text)};
        YAML::Parser parser(in);
        TreeBuilder builder(doc, text, options.noun);
        // The builder aborts on a second document, so this loop reads at most the first one
        // plus the start of the next.
        while (parser.HandleNextDocument(builder)) {
        }
        if (doc.root == nullptr) {
            doc.empty = true;
            return fatal(1, 1,
                         "the file is empty; expected a " + std::string(options.noun) + " mapping");
        }
    } catch (const Abort& a) {
        doc.issues.push_back(a.issue);
        doc.fatal = true;
    } catch (const YAML::Exception& e) {
        const bool known = !e.mark.is_null();
        // yaml-cpp looks an alias's anchor up before it reports the alias: an alias whose
        // anchor was never written (one that was is refused at the anchor) ends up here.
        std::string message = e.msg == YAML::ErrorMsg::UNKNOWN_ANCHOR
                                  ? "YAML aliases (*name) are not allowed in a " +
                                        std::string(options.noun) + "; this one names no anchor"
                                  : "YAML syntax error: " + e.msg;
        doc.issues.push_back(Issue{known ? e.mark.line + 1 : 1, known ? e.mark.column + 1 : 1, "",
                                   std::move(message)});
        doc.fatal = true;
    } catch (const std::exception& e) {
        doc.issues.push_back(Issue{1, 1, "", std::string("cannot parse YAML: ") + e.what()});
        doc.fatal = true;
    } catch (...) {
        doc.issues.push_back(Issue{1, 1, "", "cannot parse YAML"});
        doc.fatal = true;
    }
    return doc;
}

}  // namespace licentra::yaml
