#include "reactor/log.hpp"

#include <cstdarg>
#include <cstdio>

namespace handoff::reactor {

void log_line(const char* format, ...) {
  char line[1024];
  va_list arguments;
  va_start(arguments, format);
  std::vsnprintf(line, sizeof(line), format, arguments);
  va_end(arguments);
  // One write of the whole line: stderr is unbuffered and shared with the handlers.
  std::fprintf(stderr, "reactor: %s\n", line);
}

}  // namespace handoff::reactor
