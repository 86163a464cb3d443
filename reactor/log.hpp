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

// One finished request, for the access log.
struct AccessRecord {
  std::string_view peer;      // "127.0.0.1:53124"
  std::string_view protocol;  // "line" or "http"
  std::string_view request;   // The request's first line, cut short; "-" when the reactor did not see it.
  std::string_view outcome;   // The status ("200", "404") or the reactor's refusal ("ERR busy").
  double queue_ms;            // Waiting for a handler.
  double service_ms;          // With the handler.
  int handler_pid;            // 0 when no handler served it.
};
void log_access(const AccessRecord& record);

// The text of s as a JSON string, quotes included.
std::string json_string(std::string_view s);

}  // namespace handoff::reactor
