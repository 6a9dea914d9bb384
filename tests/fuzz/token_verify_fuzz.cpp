// Fuzzes include/licentra/verify.hpp: the whole input is the token, checked against a fixed
// JWKS holding one key of each supported type (the JWK parser is fuzzed by token_jwks).
// Invariants: no crash, and a result is either ok with an object of claims or an error with a
// message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "licentra/verify.hpp"

namespace {

// Public keys only, one per algorithm (kids "ed", "p256", "p384", "rsa"), generated once for the
// corpus; the valid_* corpus files are tokens signed by their (discarded) private keys.
constexpr std::string_view kJwks =
    R"({"keys":[{"crv":"Ed25519","kid":"ed","kty":"OKP","x":"YQf8C8ebv6BQguo6hsjhXtkz63mcKmjRzTJl7GUUBiQ"},{"crv":"P-256","kid":"p256","kty":"EC","x":"JCBjS-tnIKjLyEGp5ef3jE9FuWWjT6V-wyjzWl7IPHI","y":"RLJUBiGtWc35lSNpfFLJjApoWqB2i6GRFzPleFUzCXo"},{"crv":"P-384","kid":"p384","kty":"EC","x":"7G-3_cwX7WUHYvZWAJT5WJIfSitqcL4rPWY2nmcYCG5QOxHzvhBwgpbZPfM9C8Vh","y":"rLTxd5mOCt0zTHXapnQ8GKEmAL8oPUm3iMDlEhsHUGeNxvdHjli5a7dN1_UJVwE1"},{"e":"AQAB","kid":"rsa","kty":"RSA","n":"ssVrx8nb_g0adMXvtAHFVyeW2e5AIPUOX7Alt7-gVW1wk8z_m6-o60e-09qSxLk7KU_5N4VVLlCc6Nwh_TnDjUvJphf5n_58zWkHTKUTuj7gDynFOtAKlrochL8j23eZfqZehH6ajxnta7EVC4TWfpydeP4kBEp07iRglLaEii2pSGe16EKjyD8ff8eskGbaC4xCserxpOrPq02MwitSSoOMBXWxfT_rn5HKapnqBTU51BXJ71MJ1DA5sl1crffIynpJ0HOv4Dtl0XnqoS0rf7aqk5o9lWbJuaOMmqdt54Zaenknd1Jjy5SAb7hsYaj7_hU7TP86YLZ1XqzIB8HDvjGPsgy5903sGAWM0qHp_8n2txdWb8HksrasMwJxjdK2ujoIXIlQJfpNUOS4RPsPltLNAvtGohulzv_Ov1woErk5Dh3yd1SRS6xX1rJML1JBTZNQORbPre4h6HNUGIaHZ_UMCC0vCGNjURpSLUxb83FGDnemUJdO6r2RqdRI1AWx"}]})";

const licentra::Verifier& verifier() {
    static const auto v = licentra::Verifier::from_jwks(kJwks);
    if (!v) std::abort();
    return *v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view token(reinterpret_cast<const char*>(data), size);
    licentra::VerifyOptions options;
    options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    auto r = licentra::verify_token(kJwks, token, options);
    auto r2 = verifier().verify(token, options);
    if (r.error != r2.error) std::abort();
    if (r.ok() && (!r.claims.is_object() || r.kid.empty())) std::abort();
    if (!r.ok() && r.message.empty()) std::abort();
    return 0;
}
