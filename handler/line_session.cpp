#include "handler/line_session.hpp"

#include <algorithm>
#include <string_view>

#include "handler/client_io.hpp"
#include "handler/commands.hpp"
#include "ipc/wire.hpp"

namespace handoff::handler {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;

std::string_view without_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

class LineSession {
 public:
  LineSession(int client_fd, std::string received, uint32_t flags, const Limits& limits,
              const AnsweredCallback& on_answered)
      : client_fd_(client_fd),
        buffer_(std::move(received)),
        must_finish_first_line_((flags & ipc::kFlagHeadTruncated) != 0),
        input_closed_((flags & ipc::kFlagInputClosed) != 0),
        limits_(limits),
        on_answered_(on_answered) {}

  SessionOutcome run() {
    for (;;) {
      if (answer_complete_lines()) return close();
      const std::string_view partial = std::string_view(buffer_).substr(consumed_);
      if (partial.size() > limits_.max_request_bytes) return fail("request too large");
      if (input_closed_) {
        // The client will send nothing more: a last line without its line end is still a request.
        if (!partial.empty()) answer(partial);
        return close();
      }
      if (!must_finish_first_line_ || partial.empty()) break;
      if (!flush()) return {};
      if (!read_more()) return {};
    }
    if (!flush()) return {};
    return {.keep_open = true, .unconsumed = buffer_.substr(consumed_)};
  }

 private:
  // Answers every complete line in the buffer; true when the connection must close (quit, a line too long,
  // or a client that is gone).
  bool answer_complete_lines() {
    for (;;) {
      const size_t end = buffer_.find('\n', consumed_);
      if (end == std::string::npos) return false;
      const std::string_view line = without_line_end(std::string_view(buffer_).substr(consumed_, end - consumed_));
      consumed_ = end + 1;
      must_finish_first_line_ = false;
      if (line.size() > limits_.max_request_bytes) {
        pending_output_ += "ERR request too large\n";
        return true;
      }
      if (answer(line)) return true;
      // Each answer goes out before the next request runs, so a slow request never holds back an earlier
      // answer that is ready.
      if (!flush()) return true;
      if (buffer_.find('\n', consumed_) != std::string::npos) on_answered_(bytes_written_);
    }
  }

  // Executes one line and queues its reply; true when the client asked to close.
  bool answer(std::string_view line) {
    const Reply reply = execute_line(line);
    if (!reply.line.empty()) {
      pending_output_ += reply.line;
      pending_output_ += '\n';
    }
    return reply.close;
  }

  bool read_more() {
    const size_t room = limits_.max_request_bytes + 2 - (buffer_.size() - consumed_);
    switch (read_some(client_fd_, buffer_, std::min(kReadChunkBytes, room), limits_.io_timeout)) {
      case ReadStatus::kData:
        return true;
      case ReadStatus::kEndOfInput:
        input_closed_ = true;
        return true;
      case ReadStatus::kTimedOut:
        fail("read timeout");
        return false;
      case ReadStatus::kFailed:
        return false;
    }
    return false;
  }

  // Sends the queued replies; false when the client is gone or stopped reading.
  bool flush() {
    if (pending_output_.empty()) return true;
    const bool sent = !write_all(client_fd_, pending_output_, limits_.io_timeout);
    bytes_written_ += pending_output_.size();
    pending_output_.clear();
    return sent;
  }

  SessionOutcome fail(std::string_view what) {
    pending_output_ += "ERR ";
    pending_output_ += what;
    pending_output_ += '\n';
    return close();
  }

  SessionOutcome close() {
    flush();
    return {};
  }

  const int client_fd_;
  std::string buffer_;
  size_t consumed_ = 0;
  bool must_finish_first_line_;
  bool input_closed_;
  const Limits& limits_;
  const AnsweredCallback& on_answered_;
  std::string pending_output_;
  uint64_t bytes_written_ = 0;
};

}  // namespace

SessionOutcome serve_lines(int client_fd, std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered) {
  return LineSession(client_fd, std::move(received), flags, limits, on_answered).run();
}

}  // namespace handoff::handler
