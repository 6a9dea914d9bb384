// A small valid policy that negative tests mutate one rule at a time.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "policy/loader.hpp"

namespace licentra::policy::test {

inline constexpr const char* kSpkiA =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

inline const std::string kBasePolicy = R"(version: 1
roles:
  signer:
    - actions: [token.sign, keys.read]
      keys: ["product-*"]
    - actions: [jwks.read]
  officer:
    - actions: [key.rotate.request, key.retire.request, key.destroy.request, request.approve, request.reject]
      keys: ["*"]
  auditor:
    - actions: [audit.read]
  reader:
    - actions: [keys.read]
      keys: ["*"]
principals:
  - name: ls
    identity: {subject_cn: ls, issuer: "CN=Licentra Dev CA"}
    roles: [signer]
    signing_rate_limit: {per_second: 10, burst: 2}
  - name: off-a
    identity: {spki_sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}
    roles: [officer]
  - name: off-b
    identity: {san_uri: "spiffe://example.org/off-b"}
    roles: [officer]
  - name: off-c
    identity: {san_dns: off-c.example.org}
    roles: [officer]
  - name: aud
    identity: {subject_cn: aud, issuer: "CN=Licentra Dev CA"}
    roles: [auditor]
keys:
  product-a:
    algorithm: EdDSA
    issuer: https://lic.example/a
    max_validity: 30d
    claims:
      required: [sub]
      allowed: [seats, tier, features, trial]
      pseudonymize: [sub]
      rules:
        sub: {type: string, min_length: 2, max_length: 8}
        seats: {type: integer, min: 1, max: 10}
        tier: {type: string, one_of: [basic, pro]}
        features: {type: string_list, max_items: 2, max_length: 5}
        trial: {type: boolean}
    rotation: {period: 90d, publish_ahead: 7d, verify_grace: 30d}
    approvals:
      rotate: {quorum: 2, lifetime: 1h}
  other:
    issuer: x
    max_validity: 1d
)";

// Replaces the first occurrence of `from` (which must exist) in the base policy.
inline std::string mutate(const std::string& from, const std::string& to,
                          const std::string& base = kBasePolicy) {
    std::string s = base;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << "mutation anchor not found: " << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
}

inline std::shared_ptr<const Engine> load_ok(const std::string& text) {
    PolicyLoad l = load_policy_text(text, "test.yaml");
    EXPECT_TRUE(l.ok()) << l.error().message;
    return l.engine;
}

inline std::string all_errors(const PolicyLoad& l) {
    std::string s;
    for (const auto& d : l.diagnostics) s += d.to_string() + "\n";
    return s;
}

}  // namespace licentra::policy::test
