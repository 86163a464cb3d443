#include "reactor/log.hpp"

#include <sys/time.h>
#include <unistd.h>

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

namespace {

// The length of the well-formed UTF-8 sequence at the start of s (RFC 3629 section 4: no overlong forms, no
// surrogates, nothing above U+10FFFF); 0 when it is not one.
size_t utf8_sequence_length(std::string_view s) {
  const auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const auto continuation = [&](size_t i, unsigned low = 0x80, unsigned high = 0xbf) {
    return byte(i) >= low && byte(i) <= high;
  };
  const unsigned lead = byte(0);
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead == 0xe0) return continuation(1, 0xa0) && continuation(2) ? 3 : 0;
  if (lead == 0xed) return continuation(1, 0x80, 0x9f) && continuation(2) ? 3 : 0;
  if (lead >= 0xe1 && lead <= 0xef) return continuation(1) && continuation(2) ? 3 : 0;
  if (lead == 0xf0) return continuation(1, 0x90) && continuation(2) && continuation(3) ? 4 : 0;
  if (lead >= 0xf1 && lead <= 0xf3) return continuation(1) && continuation(2) && continuation(3) ? 4 : 0;
  if (lead == 0xf4) return continuation(1, 0x80, 0x8f) && continuation(2) && continuation(3) ? 4 : 0;
  return 0;
}

}  // namespace

// Bytes from clients are not always UTF-8; a byte that does not begin a well-formed sequence becomes U+FFFD,
// so that every line is valid JSON for strict parsers.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      const size_t length = utf8_sequence_length(s.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, length));
        i += length;
      }
      continue;
    }
    ++i;
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

bool log_enabled(LogLevel level) {
  return level <= g_level;
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
         "\",\"pid\":" + std::to_string(::getpid()) + ",\"message\":" + json_string(message) + "}\n");
  } else {
    // The pid tells the two reactors of a takeover apart, as the handlers' "handler[PID]" does them.
    emit(now_text() + " reactor[" + std::to_string(::getpid()) + "] " + level_name(level) + ": " + message +
         "\n");
  }
}

void log_access(const AccessRecord& r) {
  char figures[160];
  if (g_format == LogFormat::kJson) {
    std::snprintf(figures, sizeof(figures),
                  "\"status\":%d,\"queue_ms\":%.3f,\"service_ms\":%.3f,\"bytes\":%llu,\"handler_pid\":%d",
                  r.status, r.queue_ms, r.service_ms, static_cast<unsigned long long>(r.bytes),
                  r.handler_pid);
    emit("{\"time\":\"" + now_text() +
         "\",\"level\":\"info\",\"type\":\"access\",\"peer\":" + json_string(r.peer) +
         ",\"protocol\":" + json_string(r.protocol) + ",\"request\":" + json_string(r.request) + "," +
         figures + (r.reason.empty() ? std::string() : ",\"reason\":" + json_string(r.reason)) + "}\n");
  } else {
    std::snprintf(figures, sizeof(figures), "%d queue_ms=%.3f service_ms=%.3f bytes=%llu pid=%d", r.status,
                  r.queue_ms, r.service_ms, static_cast<unsigned long long>(r.bytes), r.handler_pid);
    emit(now_text() + " access " + std::string(r.peer) + " " + std::string(r.protocol) + " " +
         json_string(r.request) + " " + figures +
         (r.reason.empty() ? std::string() : " reason=" + json_string(r.reason)) + "\n");
  }
}

void log_output(const OutputRecord& r) {
  const std::string pid = r.pid != 0 ? std::to_string(r.pid) : std::string();
  if (g_format == LogFormat::kJson) {
    emit("{\"time\":\"" + now_text() + "\",\"level\":\"" + level_name(r.level) + "\"" +
         (pid.empty() ? "" : ",\"pid\":" + pid) + ",\"source\":" + json_string(r.source) +
         ",\"message\":" + json_string(r.text) + (r.split ? ",\"split\":true" : "") + "}\n");
  } else {
    emit(now_text() + " " + std::string(r.source) + "[" + pid + "] " + level_name(r.level) + ": " +
         std::string(r.text) + (r.split ? " (split)" : "") + "\n");
  }
}

}  // namespace handoff::reactor
