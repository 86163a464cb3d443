#pragma once

// Internal to the reactor. Lifecycle and failure messages, and the access log, on stderr: one line each, as
// text or JSON (--log-format), filtered by --log-level. A failure is logged once, where it happens, naming
// the call that failed and why.

#include <cstdint>
#include <string>
#include <string_view>

namespace handoff::reactor {

enum class LogLevel { kError, kWarn, kInfo, kDebug };
enum class LogFormat { kText, kJson };

void configure_log(LogLevel level, LogFormat format);

[[gnu::format(printf, 2, 3)]] void log_at(LogLevel level, const char* format, ...);
// Whether a line at level is written (--log-level): what only such a line needs is not worth computing else.
bool log_enabled(LogLevel level);

// One request, whatever ended it, for the access log.
struct AccessRecord {
  std::string_view peer;      // The client: "127.0.0.1:53124", or the address its PROXY header named.
  std::string_view protocol;  // "line" or "http"
  std::string_view request;   // The request's first line, cut short; "-" when the reactor did not see it.
  int status;                 // What the client got, as an HTTP status (a line protocol's error maps to the
                              // same: "ERR busy" is 503); 499 when it left before any answer (nginx's).
  std::string_view reason;    // Why the reactor, not the handler, decided the answer; empty when the handler
                              // answered.
  double queue_ms;            // Waiting for a handler.
  double service_ms;          // With the handler.
  uint64_t bytes;             // Of the answer, sent to the client (as far as the sender knows).
  int handler_pid;            // 0 when no handler served it.
};
void log_access(const AccessRecord& record);

// One record of what a child process wrote on its stdout or stderr (reactor/handler_output.hpp), written
// whatever --log-level says, as the child's own lines are in text mode.
struct OutputRecord {
  LogLevel level;
  int pid;                  // The process that wrote it; 0 when not known (then the record names none).
  std::string_view source;  // "handler" or "template".
  std::string_view text;    // Its lines, joined by "\n".
  bool split;               // Cut at the size limit: the next record of the same pid goes on with it.
};
void log_output(const OutputRecord& record);

// The text of s as a JSON string, quotes included.
std::string json_string(std::string_view s);

}  // namespace handoff::reactor
