// Fuzz target: the handler library's HTTP session (handler/http_session.hpp), serve_http over a socketpair
// with the input as the client's bytes (fuzz/session_driver.hpp has the input's layout and the common
// checks): the request record, the parser for pipelined requests, routing, percent-decoding, the query and
// header lookups of the API, and the response writer. Checked besides:
// - the session answers exactly the requests it has whole, in order: the record's, then each one the
//   reactor's parser (http/request_parser.hpp, with the same limits) finds complete in the bytes after it,
//   up to one that closes the connection (or the first, when others wait for a handler); a request the parser
//   refuses, or one not complete, is never answered but handed back, from its first byte;
// - what it writes is one whole HTTP/1.1 response per answer, with the status it reported: a head of CRLF
//   lines, each header field a token name and a value without CR, LF or NUL, one Content-Length that gives
//   the body's size (none for 204 and 304, no body for HEAD), "Connection: close" exactly on the answer that
//   ends the connection.

#include <strings.h>

#include <vector>

#include "fuzz/session_driver.hpp"
#include "handler/http_session.hpp"

namespace handoff::fuzz {
namespace {

struct Served {
  std::string method;
  bool closes;  // Its answer ends the connection: no keep-alive, or the reactor drains.
  size_t end;   // Of the session's received bytes, how many lie up to its end (0: the record's).
};

// The requests the session has whole, in order.
std::vector<Served> servable(const SessionRun& run) {
  std::vector<Served> requests;
  if (run.first) {
    requests.push_back({std::string(run.first->method), !run.first->keep_alive || run.draining, 0});
  }
  http::RequestParser parser(
      {.max_head_bytes = run.limits.max_head_bytes, .max_body_bytes = run.limits.max_request_bytes});
  size_t unused_from = 0;
  for (;;) {
    parser.reset();
    const size_t taken = parser.feed(std::string_view(run.received).substr(unused_from));
    if (parser.state() != http::RequestParser::State::kComplete) break;
    FUZZ_CHECK(taken > 0);
    unused_from += taken;
    requests.push_back({parser.head().method, !parser.head().keep_alive || run.draining, unused_from});
  }
  return requests;
}

bool is_token(std::string_view name) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (const char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kSymbols.find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Takes one response to request from the front of written and checks it.
void take_response(std::string_view& written, const Served& request, int status) {
  FUZZ_CHECK(written.starts_with("HTTP/1.1 "));
  const size_t head_end = written.find("\r\n\r\n");
  FUZZ_CHECK(head_end != std::string_view::npos);
  std::string_view head = written.substr(0, head_end + 2);
  written.remove_prefix(head_end + 4);
  const size_t status_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, status_end);
  head.remove_prefix(status_end + 2);
  FUZZ_CHECK(status_line.size() > 13 && status_line[12] == ' ');
  FUZZ_CHECK(status_line.substr(9, 3) == std::to_string(status));
  int content_lengths = 0, connections = 0;
  size_t content_length = 0;
  bool close = false;
  while (!head.empty()) {
    const size_t line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end + 2);
    // One field per line: no CR, LF or NUL of a reply's making got into the head.
    FUZZ_CHECK(line.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
    const size_t colon = line.find(": ");
    FUZZ_CHECK(colon != std::string_view::npos);
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 2);
    FUZZ_CHECK(is_token(name));
    if (same_name(name, "Content-Length")) {
      ++content_lengths;
      FUZZ_CHECK(!value.empty() && value.size() < 10 &&
                 value.find_first_not_of("0123456789") == std::string_view::npos);
      content_length = std::stoul(std::string(value));
    } else if (same_name(name, "Connection")) {
      ++connections;
      close = value == "close";
    }
  }
  FUZZ_CHECK(connections <= 1);
  FUZZ_CHECK(close == request.closes);
  const bool no_content = status == 204 || status == 304;
  FUZZ_CHECK(content_lengths == (no_content ? 0 : 1));
  const size_t body = no_content || request.method == "HEAD" ? 0 : content_length;
  FUZZ_CHECK(written.size() >= body);
  written.remove_prefix(body);
}

void check(const SessionRun& run) {
  const std::vector<Served> requests = servable(run);
  // What the session should do: answer the requests in order, until one closes the connection, or after
  // the first when others wait; then hand back the bytes after the last one answered.
  size_t expected = 0;
  bool closes = false;
  for (const Served& request : requests) {
    ++expected;
    if ((closes = request.closes) || run.others_waiting) break;
  }
  FUZZ_CHECK(run.statuses.size() <= expected);
  if (run.outcome.write_timed_out) return;
  FUZZ_CHECK(run.statuses.size() == expected);
  FUZZ_CHECK(run.outcome.keep_open == !closes);
  if (run.outcome.keep_open) {
    // Handed back from the first byte of the first request not answered: a refused or incomplete one is the
    // reactor's to judge.
    const size_t from = expected == 0 ? 0 : requests[expected - 1].end;
    FUZZ_CHECK(run.outcome.unconsumed == std::string_view(run.received).substr(from));
  }
  std::string_view written = run.written;
  for (size_t i = 0; i < expected; ++i) take_response(written, requests[i], run.statuses[i]);
  FUZZ_CHECK(written.empty());
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::optional<SessionRun> run =
      run_session(data, size, handoff::handler::serve_http, handoff::reactor::Protocol::kHttp);
  if (run) check(*run);
  return 0;
}
