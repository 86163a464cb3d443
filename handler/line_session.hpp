#pragma once

// Serving one hand-off of a line-protocol connection: answer every complete line the handler has, read more
// from the socket only to finish a line whose head the reactor cut at its cap, and give the rest back.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace handoff::handler {

struct Limits {
  size_t max_request_bytes = 2u << 20;  // The longest request line, without its line end.
  std::chrono::milliseconds io_timeout{10000};  // How long a read or write may wait for the client.
};

struct SessionOutcome {
  bool keep_open = false;  // The reactor should watch the connection for the next request.
  std::string unconsumed;  // Bytes of an incomplete next line, handed back to the reactor.
};

// Called between two requests of one hand-off, once the first one's answer is written, with the bytes written
// to the client so far (the reactor's kAnswered report: it tells a cut answer from a finished one).
using AnsweredCallback = std::function<void(uint64_t bytes_written)>;

// received: the bytes the reactor read; flags: the kConnection frame's flags (ipc/wire.hpp).
SessionOutcome serve_lines(int client_fd, std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered);

}  // namespace handoff::handler
