#pragma once

// Internal to the reactor. --pid-file: the reactor's pid in a file, for scripts and init scripts that follow
// the server by a file rather than by $! (a takeover changes the pid). It is written once the reactor is
// ready, as a temporary file renamed over the path, so that a reader never sees it half written; a takeover's
// successor writes its own once it is ready; at exit the reactor removes it only if it still holds its own
// pid (a predecessor leaves its successor's).

#include <string>
#include <system_error>

namespace handoff::reactor {

// Whether the reactor, as it runs now (after dropping to --user), can write path: its folder must exist
// and let it create a file. Checked at start, so that a wrong path stops the reactor before it serves.
std::error_code check_pid_file(const std::string& path);
// Writes this process's pid, then a newline, to path.
std::error_code write_pid_file(const std::string& path);
// Removes path if it holds this process's pid.
void remove_pid_file_if_ours(const std::string& path);

}  // namespace handoff::reactor
