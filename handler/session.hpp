#pragma once

// What every protocol session of the handler shares: the limits it works within, what it reports back to the
// reactor at the end of a hand-off, and the progress report between two requests of one hand-off.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "ipc/answer_record.hpp"
#include "ipc/shared_state.hpp"

namespace handoff::handler {

struct Limits {
  // The page the reactor shares (ipc/shared_state.hpp): while other connections wait for a handler, a session
  // serves one request of a pipeline and hands the rest back. Null: serve the whole pipeline.
  const ipc::SharedState* reactor_state = nullptr;
  // This handler's answer record (ipc/answer_record.hpp): each answer is noted there before it is written, so
  // that the reactor can tell a whole answer from a cut one if the handler dies. Null: nothing is noted.
  ipc::AnswerRecord* answer_record = nullptr;
  // For the requests a handler reads itself (pipelined behind the first, or while lingering): the longest it
  // serves; a longer one goes back to the reactor, which refuses it.
  size_t max_request_bytes = 2u << 20;            // The longest request (a line; an HTTP body).
  size_t max_head_bytes = 64u << 10;              // The longest HTTP request head.
  std::chrono::milliseconds write_timeout{5000};  // How long a client may take none of an answer.
};

// Where a session starts within its hand-off.
struct SessionStart {
  uint64_t bytes_written = 0;  // Written to the client earlier in the hand-off: reports and notes count on.
  // The client, as the hand-off's request record gave it: the requests the handler reads itself come from it.
  std::string_view client_address;
  uint16_t client_port = 0;
  // The reactor's number for the connection: whether its client left is read by it (Request::cancelled()).
  uint64_t connection_id = 0;
};

struct SessionOutcome {
  bool keep_open = false;        // The reactor should watch the connection for the next request.
  std::string unconsumed;        // Bytes of an incomplete next request, handed back to the reactor.
  uint64_t bytes_written = 0;    // Bytes written to the client in this hand-off.
  int status = 0;                // Of the request answered last, if not reported yet (ipc Progress).
  uint16_t route = 0;            // The route or command that made that answer (Handler::execute).
  bool write_timed_out = false;  // The client took none of an answer for the write timeout.
};

// Called between two requests of one hand-off, once the first one's answer is written, with the bytes written
// to the client so far, that answer's status and the number of the route or command that made it (the
// reactor's kAnswered report: it tells a cut answer from a finished one, and counts the request by route).
using AnsweredCallback = std::function<void(uint64_t bytes_written, int status, uint16_t route)>;

}  // namespace handoff::handler
