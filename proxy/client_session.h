// proxy/client_session.h — one client connection, served by one coroutine.
//
// Data flows one way: frame → parse → (answer locally | forward over the pool) →
// reply back to the client. The session owns its socket and buffers; an idle session
// holds no buffer at all.
#pragma once

#include "proxy/asio.h"
#include "proxy/worker.h"

namespace mongogate::proxy {

awaitable<void> runClientSession(tcp::socket socket, Worker& worker);

}  // namespace mongogate::proxy
