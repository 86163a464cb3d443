#pragma once

// Serving one hand-off of a line-protocol connection: answer the record's line and every complete line the
// handler has after it, and give the rest back.

#include <cstdint>
#include <string>
#include <string_view>

#include "handler/session.hpp"
#include "handoff/handler.hpp"
#include "ipc/request_record.hpp"

namespace handoff::handler {

// Answers one request line (without its line end) with the handler's commands; quit is the protocol's own.
struct LineAnswer {
  std::string text;    // The reply, ending in a newline; empty for quit.
  bool close = false;  // The client said quit.
  int status = 200;    // 200, or the error's status (as HTTP would say it); 0 for quit.
  uint16_t route = 0;  // The number of the command that answered (Handler::execute); 0 for none.
};
// request: what is known of it beside the line (client, id).
LineAnswer answer_line(const Handler& handler, std::string_view line, Request request = {});

// first: the hand-off's request record (its target is the line), or null when the session serves bytes read
// while lingering; received: the bytes after it; flags: the kConnection frame's flags (ipc/wire.hpp).
SessionOutcome serve_lines(const Handler& handler, int client_fd, const ipc::RequestView* first,
                           std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered, SessionStart start = {});

}  // namespace handoff::handler
