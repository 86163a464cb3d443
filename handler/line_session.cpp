#include "handler/line_session.hpp"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "handler/protocol_session.hpp"

namespace handoff::handler {
namespace {

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
              const Limits& limits, const AnsweredCallback& on_answered, SessionStart start,
              uint64_t first_id)
      : ProtocolSession(handler, client_fd, std::move(received), flags, limits, on_answered, start),
        first_id_(first_id) {}

  SessionOutcome run() {
    if (answer_complete_lines()) return stream_.close();
    if (yielded_) return stream_.flush() ? stream_.keep_open() : stream_.closed();
    const std::string_view partial = stream_.unused();
    if (stream_.input_closed() && partial.size() <= limits_.max_request_bytes) {
      // The client will send nothing more: a last line without its line end is still a request.
      if (!partial.empty()) {
        if (!stream_.flush()) return stream_.closed();
        // The answer before it is reported first: one report per answer.
        if (const ClientStream::Unreported answer = stream_.take_answer(); answer.status != 0)
          on_answered_(stream_.bytes_written(), answer.status, answer.route);
        const std::string line(partial);
        stream_.consume(partial.size());
        answer(line);
      }
      return stream_.close();
    }
    // The start of the next line (or one too long, which the reactor refuses) goes back to the reactor.
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
      const std::string_view whole = without_line_end(unused.substr(0, end));
      if (whole.size() > limits_.max_request_bytes) {
        yielded_ = true;  // The reactor, the judge of requests, refuses it: it goes back unanswered.
        return false;
      }
      const std::string line(whole);
      stream_.consume(end + 1);
      if (answer(line)) return true;
      // Each answer goes out before the next request runs, so a slow request never holds back an earlier
      // answer that is ready.
      if (!stream_.flush()) return true;
      if (stream_.unused().find('\n') != std::string_view::npos) {
        if (others_waiting()) {
          yielded_ = true;
          return false;
        }
        report_answered();
      }
    }
  }

  // Executes one line and queues its reply; true when the client asked to close.
  bool answer(std::string_view line) {
    const LineAnswer answer = answer_line(handler_, line,
                                          {.client_address = start_.client_address,
                                           .client_port = start_.client_port,
                                           .id = next_id(),
                                           .cancel_source = cancel_source()});
    stream_.queue(answer.text);
    if (answer.status != 0) stream_.answered(answer.status, answer.route);
    return answer.close;
  }

  // The record's line has the reactor's number; those after it, which the handler read itself, have none (0).
  uint64_t next_id() { return std::exchange(first_id_, 0); }

  uint64_t first_id_;
  bool yielded_ = false;  // Complete lines are left for a later hand-off: others wait.
};

}  // namespace

LineAnswer answer_line(const Handler& handler, std::string_view line, Request request) {
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
  request.command = command;
  request.arguments.assign(words.begin() + 1, words.end());
  request.protocol = Protocol::kLine;
  request.target = line;
  uint16_t route = 0;
  const Reply reply = handler.execute(std::move(request), route);
  if (reply.status >= 400) return {error_line(reply.body), false, reply.status, route};
  return {one_line(reply.body), false, reply.status, route};
}

SessionOutcome serve_lines(const Handler& handler, int client_fd, const ipc::RequestView* first,
                           std::string received, uint32_t flags, const Limits& limits,
                           const AnsweredCallback& on_answered, SessionStart start) {
  if (first != nullptr) {
    // The record's line, then the bytes after it: the session answers lines as it finds them.
    std::string lines;
    lines.reserve(first->target.size() + 1 + received.size());
    (lines += first->target) += '\n';
    lines += received;
    received = std::move(lines);
  }
  return LineSession(handler, client_fd, std::move(received), flags, limits, on_answered, start,
                     first != nullptr ? first->request_id : 0)
      .run();
}

}  // namespace handoff::handler
