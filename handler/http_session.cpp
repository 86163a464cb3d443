#include "handler/http_session.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <vector>

#include "handler/protocol_session.hpp"
#include "http/percent_decode.hpp"
#include "http/request_parser.hpp"
#include "http/response.hpp"

namespace handoff::handler {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;

using http::ConnectionHeader;
using Response = http::Response;

Response error_response(int status, std::string_view what, bool close) {
  return {.status = status,
          .body = std::string(what) + "\n",
          .connection = close ? ConnectionHeader::kClose : ConnectionHeader::kNone};
}

// The methods a route takes; any other known method gets 405 (an unknown one was refused by the parser: 501).
bool route_takes(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "POST";
}

// GET /fib/30?x=1 -> the command fib with the argument 30 and the query x=1; the same commands as the line
// protocol, but for quit. Path segments are percent-decoded; an empty last segment (a trailing slash) is no
// argument.
Response route(const Handler& handler, const http::RequestHead& head, const std::string& body) {
  std::string_view target(head.target);
  if (const size_t scheme = target.find("://");
      scheme != std::string_view::npos && !target.starts_with('/')) {
    // The absolute form, http://host/path?query: the authority ends at the first '/', '?' or '#' (RFC 3986
    // section 3.2).
    const size_t authority_end = target.find_first_of("/?#", scheme + 3);
    target = authority_end == std::string_view::npos ? "/" : target.substr(authority_end);
  }
  const size_t question = target.find('?');
  const std::string_view path = target.substr(0, std::min(question, target.find('#')));
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::vector<std::string> segments;
  for (size_t start = 1; start <= path.size() && path.starts_with('/');) {
    const size_t end = std::min(path.find('/', start), path.size());
    std::optional<std::string> segment = http::percent_decode(path.substr(start, end - start));
    if (!segment) return error_response(400, "malformed request: bad percent-encoding in the path", false);
    segments.push_back(std::move(*segment));
    start = end + 1;
  }
  if (segments.size() > 1 && segments.back().empty()) segments.pop_back();
  if (segments.empty() || !handler.has_command(segments[0])) return error_response(404, "not found", false);
  if (!route_takes(head.method)) {
    Response refused = error_response(405, "method not allowed: use GET, HEAD or POST", false);
    refused.extra_headers = "Allow: GET, HEAD, POST\r\n";
    return refused;
  }

  Request request{.command = segments[0], .body = body, .protocol = Protocol::kHttp};
  for (size_t i = 1; i < segments.size(); ++i) request.arguments.push_back(segments[i]);
  request.method = head.method;
  request.query = query;
  for (const http::HeaderField& field : head.headers) request.headers.emplace_back(field.name, field.value);
  Reply reply = handler.execute(request);
  if (reply.status >= 400 && (reply.body.empty() || reply.body.back() != '\n')) reply.body += '\n';
  return {
      .status = reply.status, .content_type = std::move(reply.content_type), .body = std::move(reply.body)};
}

class HttpSession : ProtocolSession {
 public:
  HttpSession(const Handler& handler, int client_fd, std::string received, uint32_t flags,
              const Limits& limits, const AnsweredCallback& on_answered, SessionStart start)
      : ProtocolSession(handler, client_fd, std::move(received), flags, limits, on_answered, start),
        parser_({.max_head_bytes = limits.max_head_bytes, .max_body_bytes = limits.max_request_bytes}) {}

  SessionOutcome run() {
    for (bool first = !start_.lingered;; first = false) {
      parser_.reset();
      size_t message_bytes = 0;  // Of the unused bytes, how many this request has taken.
      while (parser_.state() != http::RequestParser::State::kComplete) {
        message_bytes += parser_.feed(stream_.unused().substr(message_bytes));
        if (parser_.state() == http::RequestParser::State::kComplete) break;
        if (parser_.state() == http::RequestParser::State::kRefused) {
          return refuse(error_response(parser_.refusal_status(), parser_.refusal_reason(), true));
        }
        // The request is not complete in what was received, and the client sends nothing more.
        if (stream_.input_closed()) {
          if (message_bytes == 0) return stream_.close();
          return refuse(error_response(400, "incomplete request", true));
        }
        // Only the first request of a hand-off is read to its end here; a later one goes back to the
        // reactor, which waits for it without holding a handler.
        if (!first) return stream_.flush() ? stream_.keep_open() : stream_.closed();
        if (stream_.head_truncated() && !parser_.head_complete()) {
          return refuse(error_response(431, "request header fields too large", true));
        }
        // The reactor read the head and answered any "Expect: 100-continue" itself; only a request too long
        // for it to hold whole is read on here.
        if (!stream_.flush()) return stream_.closed();
        switch (stream_.read_more(kReadChunkBytes)) {
          case ReadStatus::kData:
          case ReadStatus::kEndOfInput: break;
          case ReadStatus::kTimedOut: return refuse(error_response(408, "request timeout", true));
          case ReadStatus::kFailed: return stream_.closed();
        }
      }

      stream_.consume(message_bytes);
      const http::RequestHead& head = parser_.head();
      Response response = route(handler_, head, parser_.body());
      if (!head.keep_alive || reactor_draining()) response.connection = ConnectionHeader::kClose;
      const bool close = response.connection == ConnectionHeader::kClose;
      write(std::move(response));
      if (close) return stream_.close();
      if (!stream_.flush()) return stream_.closed();
      if (stream_.unused().empty() || others_waiting()) return stream_.keep_open();
      on_answered_(stream_.bytes_written(), stream_.take_status());  // A pipelined request follows.
    }
  }

 private:
  void write(Response response) {
    const http::RequestHead& head = parser_.head();
    if (response.connection != ConnectionHeader::kClose && head.version_minor == 0) {
      response.connection = ConnectionHeader::kKeepAlive;  // HTTP/1.0 closes unless told otherwise.
    }
    stream_.queue(http::serialize(response, head.method == "HEAD"));
    stream_.answered(response.status);
  }

  // Answers a request that cannot be served and ends the connection: the parser cannot find the next one.
  SessionOutcome refuse(const Response& response) {
    Response closing = response;
    closing.connection = ConnectionHeader::kClose;
    write(std::move(closing));
    return stream_.close();
  }

  http::RequestParser parser_;
};

}  // namespace

SessionOutcome serve_http(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                          const Limits& limits, const AnsweredCallback& on_answered, SessionStart start) {
  return HttpSession(handler, client_fd, std::move(received), flags, limits, on_answered, start).run();
}

}  // namespace handoff::handler
