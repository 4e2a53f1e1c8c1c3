#include "proxy/request_log.h"

#include <bson/bson.h>

#include <cstring>
#include <string>

#include "proxy/log_format.h"
#include "wire/bson_walk.h"
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
  wire::BsonElement ok;
  if (!wire::findElement(frame.subspan(kBodyOffset, static_cast<std::size_t>(length)), "ok", ok)) return false;
  // ok's truth as servers and drivers read it: a number, or a boolean.
  const wire::Bytes v = ok.value();
  switch (ok.type) {
    case wire::bsontype::kDouble: {
      double d = 0;
      std::memcpy(&d, v.data(), sizeof d);
      return d == 0.0;
    }
    case wire::bsontype::kInt32: return wire::loadInt32LE(v.data()) == 0;
    case wire::bsontype::kInt64: return wire::loadInt32LE(v.data()) == 0 && wire::loadInt32LE(v.data() + 4) == 0;
    case wire::bsontype::kBool: return v[0] == 0;
    case wire::bsontype::kNull:
    case wire::bsontype::kUndefined: return true;
    default: return false;
  }
}

}  // namespace mongogate::proxy
