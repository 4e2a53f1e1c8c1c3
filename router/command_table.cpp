#include "router/command_table.h"

namespace mongogate::router {

bool isHelloCommand(std::string_view name) {
  return name == "hello" || name == "isMaster" || name == "ismaster";
}

CommandDisposition classifyCommand(std::string_view name) {
  if (isHelloCommand(name)) return CommandDisposition::kHandshake;
  if (name == "ping") return CommandDisposition::kPing;
  if (name == "saslStart" || name == "saslContinue" || name == "authenticate" ||
      name == "logout") {
    return CommandDisposition::kAuth;
  }
  return CommandDisposition::kForward;
}

}  // namespace mongogate::router
