// router/command_table.h — what mongogate does with each command, by name.
//
// Promise: a pure lookup over the command name (the first key of an OP_MSG body).
// mongogate answers the handshake itself (SPEC §6: it behaves as a mongos would),
// answers ping locally, refuses authentication while client auth is off, and forwards
// everything else.
#pragma once

#include <string_view>

namespace mongogate::router {

enum class CommandDisposition {
  kForward,     // send to the upstream, reply goes back to the client
  kHandshake,   // hello / isMaster / ismaster: answered by mongogate
  kPing,        // answered by mongogate: {ok: 1}
  kAuth,        // saslStart / saslContinue / authenticate / logout: client auth
};

CommandDisposition classifyCommand(std::string_view name);

// hello, isMaster, ismaster (the spellings servers accept).
bool isHelloCommand(std::string_view name);

}  // namespace mongogate::router
