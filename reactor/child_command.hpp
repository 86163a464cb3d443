#pragma once

// Internal to the reactor. ChildCommand: what uv_spawn needs to start one of the reactor's processes — a
// handler, or at a takeover its successor: the arguments, the reactor's environment with some variables set,
// and the descriptors the child gets at 0, 1, 2, ... It owns the strings the options point into, so it must
// outlive the uv_spawn call that uses them.

#include <uv.h>

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "ipc/unique_fd.hpp"

namespace handoff::reactor {

class ChildCommand {
 public:
  // settings ("NAME=value") replace those variables of the reactor's environment, or add them. The child's
  // descriptor i is inherited[i] of the reactor's; -1 leaves it closed. libuv opens every other descriptor
  // close-on-exec, and so does handoff.
  ChildCommand(std::vector<std::string> argv, const std::vector<std::string>& settings,
               const std::vector<int>& inherited);
  ChildCommand(const ChildCommand&) = delete;
  ChildCommand& operator=(const ChildCommand&) = delete;

  uv_process_options_t options(uv_exit_cb on_exit);

 private:
  std::vector<std::string> arguments_;
  std::vector<std::string> variables_;
  std::vector<char*> c_arguments_;
  std::vector<char*> c_variables_;
  std::vector<uv_stdio_container_t> stdio_;
};

// A channel for a child (a handler's, a template's): a Unix stream socket pair, both ends close-on-exec (the
// child gets its end through ChildCommand's inherited, or in a fork frame). The failed call is logged, for
// whose channel it was.
std::error_code open_channel_pair(ipc::UniqueFd& reactor_end, ipc::UniqueFd& child_end, const char* whose);

// How a child ended, for a log line: "exited with status 1", "was killed by signal 9 (Killed)".
std::string how_it_ended(int64_t exit_status, int term_signal);

}  // namespace handoff::reactor
