#include "core/time.hpp"

#include <cstdio>

namespace licentra::core {

std::int64_t unix_seconds(TimePoint t) noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t unix_millis(TimePoint t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint from_unix_millis(std::int64_t ms) noexcept {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

Result<std::int64_t> checked_unix_millis(std::int64_t ms) {
    if (ms < kMinRecordUnixMillis || ms > kMaxRecordUnixMillis) {
        return make_error(ErrorKind::integrity, "core.time_out_of_range",
                          "time " + std::to_string(ms) +
                              " ms since the epoch is outside 1970-01-01T00:00:00.000Z.." +
                              "2099-12-31T23:59:59.999Z");
    }
    return ms;
}

Result<TimePoint> from_unix_millis_checked(std::int64_t ms) {
    auto checked = checked_unix_millis(ms);
    if (!checked) return checked.error();
    return from_unix_millis(*checked);
}

std::string format_rfc3339_ms(TimePoint t) {
    using namespace std::chrono;
    auto ms = floor<milliseconds>(t);
    auto days = floor<std::chrono::days>(ms);
    year_month_day ymd{days};
    hh_mm_ss hms{ms - days};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", int(ymd.year()),
                  unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                  int(hms.minutes().count()), int(hms.seconds().count()),
                  int(hms.subseconds().count()));
    return buf;
}

Result<TimePoint> parse_rfc3339_ms(std::string_view text) {
    using namespace std::chrono;
    auto bad = [&] {
        return make_error(ErrorKind::usage, "core.bad_time",
                          "expected RFC 3339 UTC time YYYY-MM-DDThh:mm:ss.sssZ");
    };
    if (text.size() != 24) return bad();
    auto digits = [&](std::size_t pos, std::size_t n, int& out) {
        out = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (text[i] < '0' || text[i] > '9') return false;
            out = out * 10 + (text[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, s, ms;
    if (!digits(0, 4, y) || text[4] != '-' || !digits(5, 2, mo) || text[7] != '-' ||
        !digits(8, 2, d) || text[10] != 'T' || !digits(11, 2, h) || text[13] != ':' ||
        !digits(14, 2, mi) || text[16] != ':' || !digits(17, 2, s) || text[19] != '.' ||
        !digits(20, 3, ms) || text[23] != 'Z') {
        return bad();
    }
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || s > 59) return bad();
    // Milliseconds hold every year 0000-9999; Clock::duration (nanoseconds) only 1677-2262, so
    // the range is checked before the conversion (the record-time bounds).
    const auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} + milliseconds{ms};
    auto checked = checked_unix_millis(tp.time_since_epoch().count());
    if (!checked) return make_error(ErrorKind::usage, "core.bad_time", checked.error().message);
    return from_unix_millis(*checked);
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
    constexpr std::int64_t kMaxMs = kMaxDurationMillis;
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || (digits > 1 && text[0] == '0')) return std::nullopt;
    const std::string_view unit = text.substr(digits);
    std::int64_t ms_per_unit = 0;
    if (unit == "ms") {
        ms_per_unit = 1;
    } else if (unit == "s") {
        ms_per_unit = 1000;
    } else if (unit == "m") {
        ms_per_unit = 60'000;
    } else if (unit == "h") {
        ms_per_unit = 3'600'000;
    } else if (unit == "d") {
        ms_per_unit = 86'400'000;
    } else {
        return std::nullopt;
    }
    std::int64_t n = 0;
    for (std::size_t i = 0; i < digits; ++i) {
        n = n * 10 + (text[i] - '0');
        if (n > kMaxMs) return std::nullopt;  // before it can overflow
    }
    if (n > kMaxMs / ms_per_unit) return std::nullopt;
    return std::chrono::milliseconds(n * ms_per_unit);
}

}  // namespace licentra::core
