// libFuzzer target for the records the daemons keep on the HSM token, all read by
// core::JsonRecord: key version records (created, retired/destroyed events) and request outcome
// records. Whatever another process or a tampered token wrote is refused with an error, never
// a crash; what is accepted round-trips exactly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "keys/key_records.hpp"
#include "service/request_records.hpp"

namespace {

template <class Record, class... Args>
void round_trips(const Record& r, Args... args) {
    const std::string again = r.to_json();
    auto back = Record::from_json(licentra::core::as_bytes(again), args...);
    if (!back.ok() || back->to_json() != again) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace licentra;
    const core::ByteView bytes(data, size);
    if (auto c = keys::CreatedRecord::from_json(bytes); c.ok()) round_trips(*c);
    for (const bool retired : {false, true}) {
        if (auto e = keys::EventRecord::from_json(bytes, retired); e.ok()) round_trips(*e, retired);
    }
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto o = service::OutcomeRecord::from_json(text); o.ok()) {
        const std::string again = o->to_json();
        auto back = service::OutcomeRecord::from_json(again);
        if (!back.ok() || back->to_json() != again) __builtin_trap();
    }
    return 0;
}
