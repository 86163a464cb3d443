#include "reactor/log.hpp"

#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace handoff::reactor {
namespace {

LogLevel g_level = LogLevel::kInfo;
LogFormat g_format = LogFormat::kText;

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

// The wall-clock time, RFC 3339 in UTC with milliseconds.
std::string now_text() {
  timeval now;
  gettimeofday(&now, nullptr);
  tm utc;
  gmtime_r(&now.tv_sec, &utc);
  char text[40];
  const size_t length = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + length, sizeof(text) - length, ".%03dZ", static_cast<int>(now.tv_usec / 1000));
  return text;
}

// One write of the whole line: stderr is unbuffered and shared with the handlers.
void emit(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace

void configure_log(LogLevel level, LogFormat format) {
  g_level = level;
  g_format = format;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

void log_at(LogLevel level, const char* format, ...) {
  if (level > g_level) return;
  char message[1024];
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(message, sizeof(message), format, arguments);
  va_end(arguments);
  if (g_format == LogFormat::kJson) {
    emit("{\"time\":\"" + now_text() + "\",\"level\":\"" + level_name(level) +
         "\",\"message\":" + json_string(message) + "}\n");
  } else {
    emit(now_text() + " reactor " + level_name(level) + ": " + message + "\n");
  }
}

void log_access(const AccessRecord& r) {
  char timing[96];
  if (g_format == LogFormat::kJson) {
    std::snprintf(timing, sizeof(timing), "\"queue_ms\":%.3f,\"service_ms\":%.3f,\"handler_pid\":%d",
                  r.queue_ms, r.service_ms, r.handler_pid);
    emit("{\"time\":\"" + now_text() +
         "\",\"level\":\"info\",\"type\":\"access\",\"peer\":" + json_string(r.peer) +
         ",\"protocol\":" + json_string(r.protocol) + ",\"request\":" + json_string(r.request) +
         ",\"outcome\":" + json_string(r.outcome) + "," + timing + "}\n");
  } else {
    std::snprintf(timing, sizeof(timing), "queue_ms=%.3f service_ms=%.3f pid=%d", r.queue_ms, r.service_ms,
                  r.handler_pid);
    emit(now_text() + " access " + std::string(r.peer) + " " + std::string(r.protocol) + " " +
         json_string(r.request) + " " + std::string(r.outcome) + " " + timing + "\n");
  }
}

}  // namespace handoff::reactor
