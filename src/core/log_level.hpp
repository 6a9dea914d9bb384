// Settings of the daemon's operational log (config `log.level` and `log.format`).
#pragma once

namespace licentra::core {

enum class LogLevel { debug, info, warning, error };
enum class LogFormat { json, text };

}  // namespace licentra::core
