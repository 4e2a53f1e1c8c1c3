// proxy/request_log.h — what the proxy reports about a finished request beyond its
// counters: the slow-operation log line, and whether the upstream answered ok: 0.
//
// Promise: cheap on the data path. A request under log.slow_operation_ms costs one
// comparison; a slow one logs duration, command, logical and physical namespace,
// upstream and client address — names only, never a document, a filter or a value.
// replyIsCommandError() reads only the top-level keys of the reply body, without copying.
#pragma once

#include <chrono>
#include <string_view>

#include "config/proxy_config.h"
#include "proxy/admin_glue.h"
#include "proxy/session_status.h"
#include "wire/message.h"

namespace mongogate::proxy {

// Logs the request at warn level when it took longer than log.slowOperationMs (0: never).
void logIfSlow(const config::LogConfig& log, std::chrono::nanoseconds took, const RequestLabels& labels,
               SessionStatus status, std::string_view client);

// True when `frame` is a complete OP_MSG reply whose body's top-level "ok" is false/0.
bool replyIsCommandError(wire::Bytes frame);

}  // namespace mongogate::proxy
