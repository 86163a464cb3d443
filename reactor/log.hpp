#pragma once

// Internal to the reactor. Lifecycle and failure messages on stderr, one line each, prefixed "reactor: ".
// A failure is logged once, where it happens, naming the call that failed and why.

namespace handoff::reactor {

[[gnu::format(printf, 1, 2)]] void log_line(const char* format, ...);

}  // namespace handoff::reactor
