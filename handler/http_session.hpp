#pragma once

// Serving one hand-off of an HTTP/1.1 connection: parse each request with handoff's strict parser
// (http/request_parser.hpp, the reactor's too), route it to the handler's commands (GET /fib/30 is the line
// `fib 30`), answer, and hand the connection back between requests so that keep-alive costs no handler.

#include <cstdint>
#include <string>

#include "handler/session.hpp"
#include "handoff/handler.hpp"

namespace handoff::handler {

// received: the bytes the reactor read; flags: the kConnection frame's flags (ipc/wire.hpp).
SessionOutcome serve_http(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                          const Limits& limits, const AnsweredCallback& on_answered, SessionStart start = {});

}  // namespace handoff::handler
