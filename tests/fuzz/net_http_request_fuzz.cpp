// Raw bytes into the server's HTTP request path: the Beast request parser with the server's
// limits (net::detail::configure_parser), the conversion to net::Request, and the query-string
// parser the handlers use. Must never crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "net/http.hpp"
#include "net/query.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    licentra::net::Limits limits;  // product defaults: 8 KiB header, 64 KiB body
    auto request = licentra::net::parse_request(bytes, limits);
    if (request.ok()) {
        auto query = licentra::net::QueryParams::parse(request->query);
        if (query.ok()) {
            (void)query->get_uint("start");
            (void)query->get("key");
        }
        (void)licentra::net::percent_decode(request->path);
    }
    // Tight limits exercise the limit errors on small inputs too.
    limits.header_limit = 64;
    limits.body_limit = 8;
    (void)licentra::net::parse_request(bytes, limits);
    return 0;
}
