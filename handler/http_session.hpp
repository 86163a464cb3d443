#pragma once

// Serving one hand-off of an HTTP/1.1 connection: answer the request the reactor parsed (its record), then
// any further request the handler already has whole (pipelined behind it, or read while lingering), parsed by
// the reactor's own parser (http/request_parser.hpp); anything else goes back to the reactor, the one judge
// of requests. Between requests the connection goes back to the reactor, so keep-alive costs no handler.

#include <cstdint>
#include <string>

#include "handler/session.hpp"
#include "handoff/handler.hpp"
#include "ipc/request_record.hpp"

namespace handoff::handler {

// first: the hand-off's request record, or null when the session serves bytes read while lingering;
// received: the bytes after it (the record's rest, or what lingering read); flags: the kConnection frame's.
SessionOutcome serve_http(const Handler& handler, int client_fd, const ipc::RequestView* first,
                          std::string received, uint32_t flags, const Limits& limits,
                          const AnsweredCallback& on_answered, SessionStart start = {});

}  // namespace handoff::handler
