// proxy/log_format.h — how mongogate's log lines look: spdlog's text pattern, or one JSON
// object per line ({"ts", "level", "msg", ...fields}) for log collectors.
//
// Promise: every line of the process (mongogate's own, libmongoc's forwarded ones) uses
// the configured format; a JSON line is always valid JSON (control characters escaped,
// invalid UTF-8 replaced by U+FFFD). Structured fields are only added where a caller
// passes them (logWithFields); the text format shows them as key=value after the message.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <spdlog/spdlog.h>

#include "config/proxy_config.h"

namespace mongogate::proxy {

// Installs the format on the default logger (call once, after the logger exists).
void configureLogFormat(config::LogConfig::Format format);

struct LogField {
  std::string_view key;
  std::string_view text;      // used when !isNumber
  std::int64_t number = 0;
  bool isNumber = false;
};

// One log line with structured fields.
void logWithFields(spdlog::level::level_enum level, std::string_view message, std::span<const LogField> fields);

}  // namespace mongogate::proxy
