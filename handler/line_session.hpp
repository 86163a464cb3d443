#pragma once

// Serving one hand-off of a line-protocol connection: answer every complete line the handler has, read more
// from the socket only to finish a line whose head the reactor cut at its cap, and give the rest back.

#include <cstdint>
#include <string>
#include <string_view>

#include "handler/session.hpp"
#include "handoff/handler.hpp"

namespace handoff::handler {

// Answers one request line (without its line end) with the handler's commands; quit is the protocol's own.
struct LineAnswer {
  std::string text;    // The reply, ending in a newline; empty for quit.
  bool close = false;  // The client said quit.
  int status = 200;    // 200, or the error's status (as HTTP would say it); 0 for quit.
};
LineAnswer answer_line(const Handler& handler, std::string_view line);

// received: the bytes the reactor read; flags: the kConnection frame's flags (ipc/wire.hpp).
SessionOutcome serve_lines(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                           const Limits& limits, const AnsweredCallback& on_answered,
                           SessionStart start = {});

}  // namespace handoff::handler
