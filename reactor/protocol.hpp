#pragma once

// Internal to the reactor. What the reactor knows of the protocols it serves on one port: which one a
// connection speaks, judged from its first bytes, and how the reactor's own answers (refusals) look in each.
// Where a request ends is RequestFraming's (reactor/request_framing.hpp).

#include <string>
#include <string_view>

namespace handoff::reactor {

enum class Protocol { kUnknown, kLine, kHttp };

// HTTP when the connection's first line (after any empty lines) has the shape of a request line: it begins
// with an upper-case method and a space ("GET /fib/30 HTTP/1.1"), or it ends in " HTTP/1.1" (any digits)
// whatever its method token, or it is a run of upper-case letters longer than any method. Anything else is
// the line protocol, whose commands are lower case. kUnknown until the bytes received decide it.
Protocol detect_protocol(std::string_view bytes);

// The answers the reactor gives itself, when no handler can.
enum class Refusal {
  kBusy,            // The queue is full, or the request waited too long in it.
  kReadTimeout,     // The client did not finish its request in time.
  kHandlerCrashed,  // The handler serving the request died before it began to answer.
  kTimeout,         // The request ran longer than --request-timeout; its handler was killed.
  kShuttingDown,    // The server stopped while the request ran.
};

// The refusal as the client's protocol says it: "ERR busy\n", or an HTTP response that closes the connection
// (503 with Retry-After, 408, 502, 504).
std::string refusal_message(Protocol protocol, Refusal refusal);
// Its HTTP status (503, 408, 502, 504), which the access log gives for both protocols, and its reason as the
// line protocol says it ("busy", "read timeout", ...).
int refusal_status(Refusal refusal);
const char* refusal_reason(Refusal refusal);

}  // namespace handoff::reactor
