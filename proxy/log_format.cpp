#include "proxy/log_format.h"

#include <atomic>
#include <ctime>
#include <string>

#include <spdlog/formatter.h>

#include "proxy/json_string.h"

namespace mongogate::proxy {
namespace {

std::atomic<bool> jsonFormat{false};
// The fields of the line being logged on this thread (the logger formats synchronously
// on the calling thread).
thread_local std::span<const LogField> currentFields;

const char* levelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    line.reserve(128 + msg.payload.size());
    const auto time = msg.time.time_since_epoch();
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(time);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(time - seconds).count();
    const std::time_t t = seconds.count();
    std::tm utc{};
    gmtime_r(&t, &utc);
    char stamp[96];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
    line += "{\"ts\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line += levelName(msg.level);
    line += "\",\"msg\":";
    appendJsonString(line, std::string_view(msg.payload.data(), msg.payload.size()));
    for (const LogField& field : currentFields) {
      line += ',';
      appendJsonString(line, field.key);
      line += ':';
      if (field.isNumber) {
        line += std::to_string(field.number);
      } else {
        appendJsonString(line, field.text);
      }
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

}  // namespace

void configureLogFormat(config::LogConfig::Format format) {
  if (format == config::LogConfig::Format::kJson) {
    jsonFormat = true;
    spdlog::set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    jsonFormat = false;
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  }
}

void logWithFields(spdlog::level::level_enum level, std::string_view message, std::span<const LogField> fields) {
  spdlog::logger* logger = spdlog::default_logger_raw();
  if (!logger->should_log(level)) return;
  if (jsonFormat) {
    currentFields = fields;
    logger->log(level, "{}", message);
    currentFields = {};
    return;
  }
  std::string line(message);
  for (const LogField& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    if (field.isNumber) {
      line += std::to_string(field.number);
    } else if (field.text.empty() || field.text.find_first_of(" \"=") != std::string_view::npos) {
      appendJsonString(line, field.text);
    } else {
      line += field.text;
    }
  }
  logger->log(level, "{}", line);
}

}  // namespace mongogate::proxy
