#include "handler/line_session.hpp"

#include <algorithm>
#include <string_view>

#include "handler/client_stream.hpp"
#include "handler/commands.hpp"

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
      : stream_(client_fd, std::move(received), flags, limits),
        must_finish_first_line_(stream_.head_truncated()),
        limits_(limits),
        on_answered_(on_answered) {}

  SessionOutcome run() {
    for (;;) {
      if (answer_complete_lines()) return stream_.close();
      const std::string_view partial = stream_.unused();
      if (partial.size() > limits_.max_request_bytes) return fail("request too large");
      if (stream_.input_closed()) {
        // The client will send nothing more: a last line without its line end is still a request.
        if (!partial.empty()) answer(partial);
        return stream_.close();
      }
      if (!must_finish_first_line_ || partial.empty()) break;
      if (!stream_.flush()) return stream_.closed();
      const size_t room = limits_.max_request_bytes + 2 - partial.size();
      switch (stream_.read_more(std::min(kReadChunkBytes, room))) {
        case ReadStatus::kData:
        case ReadStatus::kEndOfInput:
          break;
        case ReadStatus::kTimedOut:
          return fail("read timeout");
        case ReadStatus::kFailed:
          return stream_.closed();
      }
    }
    if (!stream_.flush()) return stream_.closed();
    return stream_.keep_open();
  }

 private:
  // Answers every complete line received; true when the connection must close (quit, a line too long, or a
  // client that is gone).
  bool answer_complete_lines() {
    for (;;) {
      const std::string_view unused = stream_.unused();
      const size_t end = unused.find('\n');
      if (end == std::string_view::npos) return false;
      const std::string line(without_line_end(unused.substr(0, end)));
      stream_.consume(end + 1);
      must_finish_first_line_ = false;
      if (line.size() > limits_.max_request_bytes) {
        stream_.queue("ERR request too large\n");
        return true;
      }
      if (answer(line)) return true;
      // Each answer goes out before the next request runs, so a slow request never holds back an earlier
      // answer that is ready.
      if (!stream_.flush()) return true;
      if (stream_.unused().find('\n') != std::string_view::npos) on_answered_(stream_.bytes_written());
    }
  }

  // Executes one line and queues its reply; true when the client asked to close.
  bool answer(std::string_view line) {
    const Reply reply = execute_line(line);
    if (!reply.line.empty()) {
      stream_.queue(reply.line);
      stream_.queue("\n");
    }
    return reply.close;
  }

  SessionOutcome fail(std::string_view what) {
    stream_.queue("ERR ");
    stream_.queue(what);
    stream_.queue("\n");
    return stream_.close();
  }

  ClientStream stream_;
  bool must_finish_first_line_;
  const Limits& limits_;
  const AnsweredCallback& on_answered_;
};

}  // namespace

SessionOutcome serve_lines(int client_fd, std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered) {
  return LineSession(client_fd, std::move(received), flags, limits, on_answered).run();
}

}  // namespace handoff::handler
