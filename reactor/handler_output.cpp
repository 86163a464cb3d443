#include "reactor/handler_output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// What finish() reads at most: the largest a pipe can be made by an unprivileged process
// (/proc/sys/fs/pipe-max-size, 1 MiB by default; pipe(7)). A child gone has written all it will; only a
// process it left behind could write more, and that is not waited for.
constexpr size_t kMostReadAtFinish = 1 << 20;

}  // namespace

HandlerOutput::HandlerOutput(uv_loop_t* loop, const char* source)
    : loop_(loop),
      source_(source),
      records_([this](const OutputRecords::Record& record) { write(record); }) {}

std::error_code HandlerOutput::open(ipc::UniqueFd& write_end) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) {
    const int error = errno;
    log_at(LogLevel::kError, "pipe2 for a %s's output: %s", source_, std::strerror(error));
    return {error, std::system_category()};
  }
  ipc::UniqueFd read_end(ends[0]);
  write_end = ipc::UniqueFd(ends[1]);
  // Only the reactor's end is non-blocking: a child whose pipe is full waits in its write.
  if (::fcntl(read_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    const int error = errno;
    log_at(LogLevel::kError, "fcntl(O_NONBLOCK) on a %s's output pipe: %s", source_, std::strerror(error));
    write_end.reset();
    return {error, std::system_category()};
  }
  if (const int error = uv_poll_init(loop_, &poll_, read_end.get()); error < 0) {
    log_at(LogLevel::kError, "uv_poll_init on a %s's output pipe: %s", source_, uv_strerror(error));
    write_end.reset();
    return {-error, std::system_category()};
  }
  uv_timer_init(loop_, &quiet_timer_);
  poll_.data = quiet_timer_.data = this;
  read_end_ = std::move(read_end);
  return {};
}

void HandlerOutput::start(int pid) {
  pid_ = pid;
  if (!opened() || ended_) return;
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<HandlerOutput*>(poll->data)->on_readable(); });
}

void HandlerOutput::on_readable() {
  // One chunk a turn: what is left is read on the next turn, after the loop's other work.
  if (read_once() == Read::kEnded) {
    end();
    return;
  }
  wait_for_quiet();
}

HandlerOutput::Read HandlerOutput::read_once() {
  char chunk[kReadChunkBytes];
  ssize_t count;
  do {
    count = ::read(read_end_.get(), chunk, sizeof(chunk));
  } while (count < 0 && errno == EINTR);
  if (count < 0) {
    if (errno == EAGAIN) return Read::kDrained;
    log_at(LogLevel::kError, "read from the output pipe of %s %d: %s", source_, pid_, std::strerror(errno));
    return Read::kEnded;
  }
  if (count == 0) return Read::kEnded;  // Every write end is closed.
  records_.add({chunk, static_cast<size_t>(count)});
  return static_cast<size_t>(count) == sizeof(chunk) ? Read::kMore : Read::kDrained;
}

void HandlerOutput::finish() {
  if (!opened() || ended_) return;
  for (size_t read = 0; read < kMostReadAtFinish; read += kReadChunkBytes) {
    if (read_once() != Read::kMore) break;
  }
  end();
}

void HandlerOutput::end() {
  ended_ = true;
  records_.finish();
  uv_poll_stop(&poll_);
  uv_timer_stop(&quiet_timer_);
}

void HandlerOutput::wait_for_quiet() {
  if (!records_.pending()) {
    uv_timer_stop(&quiet_timer_);
    return;
  }
  uv_timer_start(
      &quiet_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<HandlerOutput*>(timer->data);
        self->records_.end_pending();
      },
      records_.awaits_exception_line() ? kTracebackQuietMs : kQuietMs, 0);
}

// A traceback is an error whatever wrote it; anything else a child says is information (docs/operations.md).
void HandlerOutput::write(const OutputRecords::Record& record) const {
  log_output({.level = record.traceback ? LogLevel::kError : LogLevel::kInfo,
              .pid = pid_,
              .source = source_,
              .text = record.text,
              .split = record.split});
}

}  // namespace handoff::reactor
