#include "handler/line_session.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

#include "handler/protocol_session.hpp"

namespace handoff::handler {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;

constexpr size_t kMaxEchoedCommandBytes = 40;

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !is_blank(line[i])) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// The command name as the client sent it, cut short and with control bytes replaced, fit to echo back.
std::string printable(std::string_view word) {
  std::string out;
  for (char c : word.substr(0, kMaxEchoedCommandBytes)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (word.size() > kMaxEchoedCommandBytes) out += "...";
  return out;
}

// An answer as the one line it must be: a client reads one answer per line, and a pipelining one would take a
// second line for the answer to its next request. The line end the text may end in ("\n" or "\r\n") goes,
// each CR, LF and NUL left becomes a space, and "\n" ends the line. Redis does the same to the text of an
// error reply (addReplyErrorFormat in networking.c); RFC 9110 section 5.5 lets a recipient do it in a field
// value.
std::string one_line(std::string_view text) {
  if (text.ends_with('\n')) text.remove_suffix(text.ends_with("\r\n") ? 2 : 1);
  std::string line(text);
  std::replace_if(
      line.begin(), line.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }, ' ');
  return line + '\n';
}

std::string error_line(std::string_view reason) {
  return one_line("ERR " + std::string(reason));
}

std::string_view without_line_end(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

class LineSession : ProtocolSession {
 public:
  LineSession(const Handler& handler, int client_fd, std::string received, uint32_t flags,
              const Limits& limits, const AnsweredCallback& on_answered, SessionStart start)
      : ProtocolSession(handler, client_fd, std::move(received), flags, limits, on_answered, start),
        must_finish_first_line_(stream_.head_truncated()) {}

  SessionOutcome run() {
    for (;;) {
      if (answer_complete_lines()) return stream_.close();
      if (yielded_) return stream_.flush() ? stream_.keep_open() : stream_.closed();
      const std::string_view partial = stream_.unused();
      if (partial.size() > limits_.max_request_bytes) return fail("request too large", 413);
      if (stream_.input_closed()) {
        // The client will send nothing more: a last line without its line end is still a request.
        if (!partial.empty()) {
          const std::string line(partial);
          stream_.consume(partial.size());
          answer(line);
        }
        return stream_.close();
      }
      if (!must_finish_first_line_ || partial.empty()) break;
      if (!stream_.flush()) return stream_.closed();
      const size_t room = limits_.max_request_bytes + 2 - partial.size();
      switch (stream_.read_more(std::min(kReadChunkBytes, room))) {
        case ReadStatus::kData:
        case ReadStatus::kEndOfInput: break;
        case ReadStatus::kTimedOut: return fail("read timeout", 408);
        case ReadStatus::kFailed: return stream_.closed();
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
        stream_.answered(413);
        return true;
      }
      if (answer(line)) return true;
      // Each answer goes out before the next request runs, so a slow request never holds back an earlier
      // answer that is ready.
      if (!stream_.flush()) return true;
      if (stream_.unused().find('\n') != std::string_view::npos) {
        if (others_waiting()) {
          yielded_ = true;
          return false;
        }
        on_answered_(stream_.bytes_written(), stream_.take_status());
      }
    }
  }

  // Executes one line and queues its reply; true when the client asked to close.
  bool answer(std::string_view line) {
    const LineAnswer answer = answer_line(handler_, line);
    stream_.queue(answer.text);
    if (answer.status != 0) stream_.answered(answer.status);
    return answer.close;
  }

  SessionOutcome fail(std::string_view what, int status) {
    stream_.queue("ERR ");
    stream_.queue(what);
    stream_.queue("\n");
    stream_.answered(status);
    return stream_.close();
  }

  bool must_finish_first_line_;
  bool yielded_ = false;  // Complete lines are left for a later hand-off: others wait.
};

}  // namespace

LineAnswer answer_line(const Handler& handler, std::string_view line) {
  const std::vector<std::string_view> words = split_words(line);
  if (words.empty()) return {error_line("empty request"), false, 400};
  const std::string_view command = words[0];
  if (command == "quit") {
    if (words.size() > 1) return {error_line("quit takes no argument"), false, 400};
    return {.close = true, .status = 0};
  }
  if (!handler.has_command(command)) {
    return {error_line("unknown command '" + printable(command) + "' (commands: " + handler.command_names() +
                       ", quit)"),
            false, 404};
  }
  const Reply reply = handler.execute({.command = command,
                                       .arguments = std::vector(words.begin() + 1, words.end()),
                                       .protocol = Protocol::kLine});
  if (reply.status >= 400) return {error_line(reply.body), false, reply.status};
  return {one_line(reply.body), false, reply.status};
}

SessionOutcome serve_lines(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                           const Limits& limits, const AnsweredCallback& on_answered, SessionStart start) {
  return LineSession(handler, client_fd, std::move(received), flags, limits, on_answered, start).run();
}

}  // namespace handoff::handler
