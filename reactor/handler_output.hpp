#pragma once

// Internal to the reactor. HandlerOutput: with --log-format json, the pipe a child process (a handler, a
// template) has as its stdout and stderr, read on the loop and written to the reactor's stderr as JSON
// records (reactor/output_records.hpp cuts them; docs/operations.md, "Handler output"), so that the whole
// stream stays JSON. In text format no child has one: each inherits the reactor's stderr.
//
// The owner (HandlerProcess, HandlerTemplate) holds it as a member and closes its handles with its own
// (handles()). Reading is bounded: one read of at most kReadChunkBytes per loop turn, so a child that floods
// its output costs the loop no more than that, and waits in its write when the pipe is full (backpressure).
// A pending record is written once kQuietMs pass with no more of it (kTracebackQuietMs within a traceback
// that has not come to its exception line), or at once when what follows shows it complete.
//
// The read end is the reactor's alone (close-on-exec, non-blocking). It is read to the end when the child is
// gone (finish(): what it wrote is all in the pipe by then), and closed with the owner right after: a process
// the child left behind that still holds the write end gets EPIPE, and the reactor never waits for an EOF
// that such a process could hold off for ever.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <system_error>

#include "ipc/unique_fd.hpp"
#include "reactor/output_records.hpp"

namespace handoff::reactor {

class HandlerOutput {
 public:
  static constexpr size_t kReadChunkBytes = 64 * 1024;
  static constexpr uint64_t kQuietMs = 100;
  static constexpr uint64_t kTracebackQuietMs = 1000;

  // source names the kind of process in the records: "handler" or "template" (a string literal).
  HandlerOutput(uv_loop_t* loop, const char* source);
  HandlerOutput(const HandlerOutput&) = delete;
  HandlerOutput& operator=(const HandlerOutput&) = delete;

  // Makes the pipe; write_end gets its write end (close-on-exec), for the child's descriptors 1 and 2. The
  // failed call is logged. Nothing is read until start.
  std::error_code open(ipc::UniqueFd& write_end);
  bool opened() const { return read_end_.valid(); }
  // The child's pid is known (pid names it in the records): its output is read from now on. What it wrote
  // before waits in the pipe.
  void start(int pid);
  // The child is gone (reaped, or never forked): what is left in the pipe is read, up to the pipe's
  // largest size, and every record is written, a line not ended too. Nothing is read after this.
  void finish();

  // Its handles, for the owner's close; null when never opened.
  uv_handle_t* poll_handle() { return opened() ? reinterpret_cast<uv_handle_t*>(&poll_) : nullptr; }
  uv_handle_t* timer_handle() { return opened() ? reinterpret_cast<uv_handle_t*>(&quiet_timer_) : nullptr; }

 private:
  enum class Read { kMore, kDrained, kEnded };

  void on_readable();
  // One read(2) of at most kReadChunkBytes into the records: kMore when it filled the chunk, kDrained when
  // the pipe is empty for now, kEnded at EOF or after a failure (logged).
  Read read_once();
  // Reading is over (EOF, a failure, finish): every record is written and the handles are stopped.
  void end();
  void write(const OutputRecords::Record& record) const;
  // (Re)starts the quiet timer while a record is pending.
  void wait_for_quiet();

  uv_loop_t* loop_;
  const char* source_;
  int pid_ = 0;
  ipc::UniqueFd read_end_;
  uv_poll_t poll_{};
  uv_timer_t quiet_timer_{};
  OutputRecords records_;
  bool ended_ = false;
};

}  // namespace handoff::reactor
