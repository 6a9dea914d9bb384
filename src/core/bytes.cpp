#include "core/bytes.hpp"

#include <array>

namespace licentra::core {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kB64Url =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

using DecodeTable = std::array<std::int8_t, 256>;

constexpr DecodeTable make_table(std::string_view alphabet) {
    DecodeTable t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < alphabet.size(); ++i) {
        t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
}

constexpr DecodeTable kB64Table = make_table(kB64);
constexpr DecodeTable kB64UrlTable = make_table(kB64Url);

std::string encode(ByteView data, std::string_view alphabet, bool pad) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                          std::uint32_t{data[i + 2]};
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    std::size_t rest = data.size() - i;
    if (rest == 1) {
        std::uint32_t n = std::uint32_t{data[i]} << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        std::uint32_t n = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

Result<Bytes> decode(std::string_view text, const DecodeTable& table, bool padded,
                     std::string_view what) {
    auto bad = [&](std::string msg) {
        return make_error(ErrorKind::usage, "core.bad_encoding", std::string(what) + ": " + msg);
    };
    if (padded) {
        if (text.size() % 4 != 0) return bad("length is not a multiple of 4");
        std::size_t pads = 0;
        while (pads < 2 && pads < text.size() && text[text.size() - 1 - pads] == '=') ++pads;
        text.remove_suffix(pads);
    } else if (text.size() % 4 == 1) {
        return bad("impossible length");
    }
    Bytes out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : text) {
        auto v = table[static_cast<unsigned char>(c)];
        if (v < 0) return bad("invalid character");
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
        }
    }
    // RFC 4648 §3.5: the unused low bits of the last character must be zero (canonical form).
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return bad("non-canonical trailing bits");
    return out;
}

}  // namespace

std::string hex_encode(ByteView data) {
    std::string out;
    out.reserve(data.size() * 2);
    for (auto b : data) {
        out += kHexDigits[b >> 4];
        out += kHexDigits[b & 15];
    }
    return out;
}

Result<Bytes> hex_decode(std::string_view text) {
    if (text.size() % 2 != 0) {
        return make_error(ErrorKind::usage, "core.bad_encoding", "hex: odd length");
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    Bytes out(text.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = nibble(text[2 * i]);
        int lo = nibble(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return make_error(ErrorKind::usage, "core.bad_encoding", "hex: invalid character");
        }
        out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    return out;
}

std::string base64_encode(ByteView data) { return encode(data, kB64, true); }
Result<Bytes> base64_decode(std::string_view text) {
    return decode(text, kB64Table, true, "base64");
}
std::string base64url_encode(ByteView data) { return encode(data, kB64Url, false); }
Result<Bytes> base64url_decode(std::string_view text) {
    return decode(text, kB64UrlTable, false, "base64url");
}

}  // namespace licentra::core
