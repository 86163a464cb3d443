#pragma once

// Internal to the reactor. ForkedProcess: a handler forked by a template (--preload,
// reactor/handler_template.hpp) rather than started with uv_spawn. Its pid comes in the template's report
// (kHandlerForked); signals go through a pidfd, which no other process can take over as a pid could be
// reused. The template is the handler's parent: it reaps it and reports its exit (kHandlerExited). A template
// that dies leaves its handlers serving: from then on the pidfd, readable once the process is gone, tells the
// exit, with no status to give.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "ipc/unique_fd.hpp"

namespace handoff::reactor {

class HandlerTemplate;

class ForkedProcess {
 public:
  // on_exit is called once, when the process is gone or could not be forked; then it needs only closing.
  // term_signal is -1 when the exit status is not known (its template died before it could say).
  using ExitCallback = std::function<void(int64_t exit_status, int term_signal)>;
  // on_forked is called with the pid once it is known.
  ForkedProcess(uv_loop_t* loop, std::function<void(int pid)> on_forked, ExitCallback on_exit);
  ForkedProcess(const ForkedProcess&) = delete;
  ForkedProcess& operator=(const ForkedProcess&) = delete;
  ~ForkedProcess();

  // Asks from to fork it, with channel and record (borrowed; sent before the call returns or copied) at the
  // handler's descriptors, and output (the same; -1 for none) as its stdout and stderr. id names it in the
  // template's reports.
  void fork_from(HandlerTemplate& from, uint64_t id, int channel, int record, int output);

  // From the template.
  void on_forked(int pid);
  void on_fork_failed(const std::string& why);
  void on_exit_reported(int64_t exit_status, int term_signal);
  // The template exited (as how says): an ask it never forked fails.
  void on_template_gone(const std::string& how);

  bool started() const { return template_ != nullptr || pid_ != 0 || exited_; }
  int pid() const { return pid_; }
  // Why the fork failed; empty when it did not.
  const std::string& failure() const { return failure_; }
  // Sent now, or once the pid is known; nothing once it exited.
  void kill(int signal);

  // The poll handle, for the owner's close (null when never initialised).
  uv_handle_t* handle() { return polled_ ? reinterpret_cast<uv_handle_t*>(&pidfd_poll_) : nullptr; }

 private:
  void exit(int64_t exit_status, int term_signal);
  void watch_pidfd();

  uv_loop_t* loop_;
  std::function<void(int pid)> on_forked_;
  ExitCallback on_exit_;
  HandlerTemplate* template_ = nullptr;  // Until it reported the exit, or is gone.
  uint64_t id_ = 0;
  int pid_ = 0;
  ipc::UniqueFd pidfd_;
  uv_poll_t pidfd_poll_{};
  bool polled_ = false;
  int pending_signal_ = 0;  // Asked for before the pid was known; SIGKILL wins over any other.
  bool exited_ = false;
  std::string failure_;
};

}  // namespace handoff::reactor
