#pragma once

// Serving one hand-off of a line-protocol connection: answer every complete line the handler has, read more
// from the socket only to finish a line whose head the reactor cut at its cap, and give the rest back.

#include <cstdint>
#include <string>

#include "handler/session.hpp"

namespace handoff::handler {

// received: the bytes the reactor read; flags: the kConnection frame's flags (ipc/wire.hpp).
SessionOutcome serve_lines(int client_fd, std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered);

}  // namespace handoff::handler
