#include "reactor/forked_process.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "reactor/handler_template.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// By system call: glibc 2.36's <sys/pidfd.h> declares its wrappers without C linkage.
int pidfd_open(int pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int signal) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

}  // namespace

ForkedProcess::ForkedProcess(uv_loop_t* loop, std::function<void(int pid)> on_forked, ExitCallback on_exit)
    : loop_(loop), on_forked_(std::move(on_forked)), on_exit_(std::move(on_exit)) {
  pidfd_poll_.data = this;
}

ForkedProcess::~ForkedProcess() {
  if (template_ != nullptr) template_->forget(id_);
}

void ForkedProcess::fork_from(HandlerTemplate& from, uint64_t id, int channel, int record, int output) {
  template_ = &from;
  id_ = id;
  from.fork(*this, id, channel, record, output);
}

void ForkedProcess::on_forked(int pid) {
  pid_ = pid;
  // The template reaps it only after this report, so the pid is still this process's here.
  pidfd_ = ipc::UniqueFd(pidfd_open(pid));
  if (!pidfd_) {
    // ESRCH: it exited and was reaped already, and the template's report of that follows.
    if (errno != ESRCH)
      log_at(LogLevel::kWarn, "pidfd_open(%d) for a forked handler: %s", pid, std::strerror(errno));
  }
  if (pending_signal_ != 0) kill(std::exchange(pending_signal_, 0));
  on_forked_(pid);
}

void ForkedProcess::on_fork_failed(const std::string& why) {
  template_ = nullptr;
  failure_ = why;
  exit(1, 0);
}

void ForkedProcess::on_exit_reported(int64_t exit_status, int term_signal) {
  template_ = nullptr;
  exit(exit_status, term_signal);
}

void ForkedProcess::on_template_gone(const std::string& how) {
  template_ = nullptr;
  if (pid_ == 0) {
    on_fork_failed("its template " + how + " before it forked the handler");
    return;
  }
  if (!pidfd_) {  // Gone before the reactor could watch it (and killed with its template, if not before).
    exit(0, -1);
    return;
  }
  watch_pidfd();
}

void ForkedProcess::watch_pidfd() {
  uv_poll_init(loop_, &pidfd_poll_, pidfd_.get());
  polled_ = true;
  uv_poll_start(&pidfd_poll_, UV_READABLE, [](uv_poll_t* poll, int, int) {
    auto* self = static_cast<ForkedProcess*>(poll->data);
    uv_poll_stop(poll);
    self->exit(0, -1);
  });
}

void ForkedProcess::kill(int signal) {
  if (exited_) return;
  if (pid_ == 0) {
    if (pending_signal_ != SIGKILL) pending_signal_ = signal;
    return;
  }
  if (pidfd_ && pidfd_send_signal(pidfd_.get(), signal) != 0 && errno != ESRCH) {
    log_at(LogLevel::kWarn, "pidfd_send_signal to handler %d: %s", pid_, std::strerror(errno));
  }
}

void ForkedProcess::exit(int64_t exit_status, int term_signal) {
  if (exited_) return;
  exited_ = true;
  on_exit_(exit_status, term_signal);
}

}  // namespace handoff::reactor
