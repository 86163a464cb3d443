#include "handler/http_session.hpp"

#include <http_parser.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "handler/protocol_session.hpp"
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

// The request being parsed, filled in by the parser's callbacks.
struct ParsedRequest {
  std::string url;
  bool headers_complete = false;
  bool complete = false;
  std::string body;
  Response refusal;  // Set (status != 200) when a callback stopped the parser on purpose.
};

// GET /fib/30 -> the command fib with the argument 30; the same commands as the line protocol, but for quit.
Response route(const Handler& handler, const http_parser& parser, const ParsedRequest& request) {
  std::string_view path(request.url);
  path = path.substr(0, path.find_first_of("?#"));
  std::vector<std::string_view> segments;
  for (size_t start = 1; start <= path.size() && path.starts_with('/');) {
    const size_t end = std::min(path.find('/', start), path.size());
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (segments.empty() || !handler.has_command(segments[0])) return error_response(404, "not found", false);

  const auto method = static_cast<http_method>(parser.method);
  if (method != HTTP_GET && method != HTTP_HEAD && method != HTTP_POST) {
    Response refused = error_response(405, "method not allowed: use GET, HEAD or POST", false);
    refused.extra_headers = "Allow: GET, HEAD, POST\r\n";
    return refused;
  }
  const Reply reply = handler.execute({.command = segments[0],
                                       .arguments = std::vector(segments.begin() + 1, segments.end()),
                                       .body = request.body,
                                       .protocol = Protocol::kHttp});
  if (reply.status != 200) return error_response(reply.status, reply.body, false);
  return {.content_type = reply.content_type, .body = reply.body};
}

class HttpSession : ProtocolSession {
 public:
  HttpSession(const Handler& handler, int client_fd, std::string received, uint32_t flags,
              const Limits& limits, const AnsweredCallback& on_answered)
      : ProtocolSession(handler, client_fd, std::move(received), flags, limits, on_answered) {
    http_parser_settings_init(&settings_);
    settings_.on_url = [](http_parser* p, const char* at, size_t length) {
      self(p).request_.url.append(at, length);
      return 0;
    };
    settings_.on_headers_complete = [](http_parser* p) { return self(p).headers_complete(); };
    settings_.on_body = [](http_parser* p, const char* at, size_t length) {
      return self(p).body(at, length);
    };
    settings_.on_message_complete = [](http_parser* p) {
      self(p).request_.complete = true;
      http_parser_pause(p, 1);  // One request at a time: execute() returns right after it.
      return 0;
    };
  }

  SessionOutcome run() {
    for (bool first = true;; first = false) {
      http_parser_init(&parser_, HTTP_REQUEST);
      parser_.data = this;
      request_ = ParsedRequest();
      size_t message_bytes = 0;  // Of the unused bytes, how many this request has taken.

      while (!request_.complete) {
        const std::string_view input = stream_.unused().substr(message_bytes);
        const size_t parsed = http_parser_execute(&parser_, &settings_, input.data(), input.size());
        message_bytes += parsed;
        const http_errno error = HTTP_PARSER_ERRNO(&parser_);
        if (request_.complete) break;
        if (error != HPE_OK)
          return refuse(request_.refusal.status != 200 ? request_.refusal : parse_error(error));
        if (!request_.headers_complete && message_bytes > limits_.max_head_bytes) {
          return refuse(error_response(431, "request header fields too large", true));
        }
        // The request is not complete in what was received. Only the first request of a hand-off is read to
        // its end here; a later one goes back to the reactor, which waits for it without holding a handler.
        if (!first) return stream_.flush() ? stream_.keep_open() : stream_.closed();
        if (stream_.head_truncated() && !request_.headers_complete) {
          return refuse(error_response(431, "request header fields too large", true));
        }
        if (stream_.input_closed()) {
          if (message_bytes == 0) return stream_.close();
          return refuse(error_response(400, "incomplete request", true));
        }
        // The reactor read the head and answered any "Expect: 100-continue" itself; only a request too long
        // for it to hold whole is read on here.
        if (!stream_.flush()) return stream_.closed();
        switch (stream_.read_more(kReadChunkBytes)) {
          case ReadStatus::kData: break;
          case ReadStatus::kEndOfInput:
            http_parser_execute(&parser_, &settings_, nullptr, 0);  // Tells the parser the input ended.
            break;
          case ReadStatus::kTimedOut: return refuse(error_response(408, "request timeout", true));
          case ReadStatus::kFailed: return stream_.closed();
        }
      }

      stream_.consume(message_bytes);
      const bool keep_alive = http_should_keep_alive(&parser_) != 0;
      Response response = route(handler_, parser_, request_);
      if (!keep_alive) response.connection = ConnectionHeader::kClose;
      const bool close = response.connection == ConnectionHeader::kClose;
      write(std::move(response));
      if (!stream_.flush() || close) return stream_.closed();
      if (stream_.unused().empty() || others_waiting()) return stream_.keep_open();
      on_answered_(stream_.bytes_written(), stream_.take_status());  // A pipelined request follows.
    }
  }

 private:
  static HttpSession& self(http_parser* parser) { return *static_cast<HttpSession*>(parser->data); }

  int headers_complete() {
    request_.headers_complete = true;
    if (parser_.http_major != 1) {
      request_.refusal = error_response(505, "only HTTP/1.0 and HTTP/1.1 are supported", true);
      return -1;
    }
    if ((parser_.flags & F_CONTENTLENGTH) && parser_.content_length > limits_.max_request_bytes) {
      request_.refusal = error_response(413, "request body too large", true);
      return -1;
    }
    return 0;
  }

  int body(const char* at, size_t length) {
    if (request_.body.size() + length > limits_.max_request_bytes) {
      request_.refusal = error_response(413, "request body too large", true);
      return -1;
    }
    request_.body.append(at, length);
    return 0;
  }

  static Response parse_error(http_errno error) {
    if (error == HPE_HEADER_OVERFLOW) return error_response(431, "request header fields too large", true);
    if (error == HPE_INVALID_VERSION)
      return error_response(505, "only HTTP/1.0 and HTTP/1.1 are supported", true);
    return error_response(400, std::string("malformed request: ") + http_errno_description(error), true);
  }

  void write(Response response) {
    if (response.connection != ConnectionHeader::kClose && parser_.http_minor == 0) {
      response.connection = ConnectionHeader::kKeepAlive;  // HTTP/1.0 closes unless told otherwise.
    }
    stream_.queue(http::serialize(response, parser_.method == HTTP_HEAD));
    stream_.answered(response.status);
  }

  // Answers a request that cannot be served and ends the connection: the parser cannot find the next one.
  SessionOutcome refuse(const Response& response) {
    Response closing = response;
    closing.connection = ConnectionHeader::kClose;
    write(std::move(closing));
    return stream_.close();
  }

  http_parser_settings settings_;
  http_parser parser_;
  ParsedRequest request_;
};

}  // namespace

SessionOutcome serve_http(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                          const Limits& limits, const AnsweredCallback& on_answered) {
  return HttpSession(handler, client_fd, std::move(received), flags, limits, on_answered).run();
}

}  // namespace handoff::handler
