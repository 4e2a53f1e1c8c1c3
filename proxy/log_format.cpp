#include "proxy/log_format.h"

#include <atomic>
#include <ctime>
#include <string>

#include <spdlog/formatter.h>

namespace mongogate::proxy {
namespace {

std::atomic<bool> jsonFormat{false};
// The fields of the line being logged on this thread (the logger formats synchronously
// on the calling thread).
thread_local std::span<const LogField> currentFields;

// Length of the valid UTF-8 sequence starting at text[i], 0 when invalid.
std::size_t utf8Length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  std::size_t n = 0;
  std::uint32_t min = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2, min = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3, min = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  std::uint32_t code = lead & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return n;
}

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

void appendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch >= 0x80) {
      const std::size_t n = utf8Length(text, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20 || ch == 0x7F) {
          out += "\\u00";
          out += kHex[ch >> 4];
          out += kHex[ch & 0xF];
        } else {
          out += static_cast<char>(ch);
        }
    }
    ++i;
  }
  out += '"';
}

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
