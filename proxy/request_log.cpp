#include "proxy/request_log.h"

#include <bson/bson.h>

#include <string>

#include "proxy/log_format.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {

void logIfSlow(const config::LogConfig& log, std::chrono::nanoseconds took, const RequestLabels& labels,
               SessionStatus status, std::string_view client) {
  if (log.slowOperationMs == 0 || took < std::chrono::milliseconds(log.slowOperationMs)) return;
  const router::RoutedCommand* route = labels.route;
  std::string_view command = admin::kCommandLabels[labels.command];
  std::string logical;
  std::string physical;
  std::string_view upstream;
  if (route) {
    command = route->commandName;
    upstream = route->upstream;
    if (!route->mappings.empty()) {
      const router::NamespaceMapping& m = route->mappings.front();
      logical = m.logicalDatabase + (m.logicalCollection.empty() ? "" : "." + m.logicalCollection);
      physical = m.physicalDatabase + (m.physicalCollection.empty() ? "" : "." + m.physicalCollection);
    } else {
      logical = route->logicalDatabase;
    }
    if (route->replyHandling != router::ReplyHandling::kForward) {
      upstream = "fan_out";
      physical = std::to_string(route->fanOut.size()) + " databases";
    }
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  const LogField fields[] = {
      {"duration_ms", {}, ms, true},
      {"command", command},
      {"ns", logical},
      {"physical_ns", physical},
      {"upstream", upstream},
      {"client", client},
      {"result", admin::kResultLabels[static_cast<std::size_t>(requestResultOf(status, labels))]},
  };
  logWithFields(spdlog::level::warn, "slow operation", fields);
}

bool replyIsCommandError(wire::Bytes frame) {
  // header (16) + flagBits (4) + section kind (1) + body length (4)
  constexpr std::size_t kBodyOffset = wire::kHeaderSize + 5;
  if (frame.size() < kBodyOffset + 5) return false;
  if (wire::loadInt32LE(frame.data() + 12) != static_cast<std::int32_t>(wire::OpCode::kMsg)) return false;
  if (frame[wire::kHeaderSize + 4] != 0) return false;  // the body is not the first section
  const std::int32_t length = wire::loadInt32LE(frame.data() + kBodyOffset);
  if (length < 5 || static_cast<std::size_t>(length) > frame.size() - kBodyOffset) return false;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, frame.data() + kBodyOffset, static_cast<std::size_t>(length))) return false;
  if (!bson_iter_find(&it, "ok")) return false;
  return !bson_iter_as_bool(&it);
}

}  // namespace mongogate::proxy
