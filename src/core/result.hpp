// Result<T> and error kinds shared by every module.
//
// Nothing in Licentra throws across a module boundary: functions that can fail return
// Result<T>, which holds either a value or an Error. The Error's kind decides how the failure
// is reported (HTTP status and problem type at the edge); its code is a stable, machine-readable
// reason ("hsm.pin_incorrect"); its message is for humans and never contains secrets.
#pragma once

#include <cassert>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace licentra::core {

enum class ErrorKind {
    usage,            // the caller asked for something malformed or impossible
    denied,           // policy said no
    not_found,        // the named thing does not exist
    conflict,         // the request contradicts current state (label exists, wrong state)
    hsm_unavailable,  // the HSM cannot be reached or keeps failing
    unavailable,      // a local dependency is down (audit log failed, not ready)
    integrity,        // stored data failed verification (tamper, corruption)
    limit,            // the caller hit a size, rate or count limit (its own doing: 429/413)
    overloaded,       // the service is out of capacity right now (a queue or pool is full)
    internal,         // a bug or an unexpected state
};

std::string_view to_string(ErrorKind kind) noexcept;

// One broken rule of a request's input (a token claim): which claim (empty for the whole
// object), a stable code ("policy.claim_missing", docs/policy.md) and a value-free message.
struct Violation {
    std::string claim;
    std::string code;
    std::string message;
};

struct Error {
    ErrorKind kind = ErrorKind::internal;
    std::string code;     // stable reason code, "<module>.<reason>"
    std::string message;  // human-readable; never contains secrets
    // When trying again can succeed (a rate limit refills): HTTP answers carry it as
    // Retry-After (RFC 9110 §10.2.3).
    std::optional<std::chrono::seconds> retry_after;
    // Every rule the input broke, when the error is a validation failure
    // ("service.claims_invalid"); empty otherwise.
    std::vector<Violation> violations;

    [[nodiscard]] std::string to_string() const;
};

[[nodiscard]] inline Error make_error(ErrorKind kind, std::string code, std::string message = {}) {
    return Error{kind, std::move(code), std::move(message), std::nullopt, {}};
}

template <typename T>
class [[nodiscard]] Result {
  public:
    using value_type = T;

    Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}      // NOLINT implicit
    Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}  // NOLINT implicit

    [[nodiscard]] bool ok() const noexcept { return data_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(data_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(data_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(data_));
    }
    const Error& error() const& {
        assert(!ok());
        return std::get<1>(data_);
    }
    Error&& error() && {
        assert(!ok());
        return std::get<1>(std::move(data_));
    }

    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

  private:
    std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT implicit

    [[nodiscard]] bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const Error& error() const& {
        assert(!ok_);
        return error_;
    }
    Error&& error() && {
        assert(!ok_);
        return std::move(error_);
    }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

[[nodiscard]] inline Status ok_status() { return {}; }

}  // namespace licentra::core
