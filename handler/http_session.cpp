#include "handler/http_session.hpp"

#include <string_view>
#include <vector>

#include "handler/http_reply.hpp"
#include "handler/protocol_session.hpp"
#include "http/request_parser.hpp"
#include "http/response.hpp"

namespace handoff::handler {
namespace {

using http::ConnectionHeader;

std::string_view version_text(int minor) {
  return minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
}

class HttpSession : ProtocolSession {
 public:
  HttpSession(const Handler& handler, int client_fd, const ipc::RequestView* first, std::string received,
              uint32_t flags, const Limits& limits, const AnsweredCallback& on_answered, SessionStart start)
      : ProtocolSession(handler, client_fd, std::move(received), flags, limits, on_answered, start),
        first_(first),
        parser_({.max_head_bytes = limits.max_head_bytes, .max_body_bytes = limits.max_request_bytes}) {}

  SessionOutcome run() {
    for (bool from_record = first_ != nullptr;; from_record = false) {
      Request request{.protocol = Protocol::kHttp,
                      .client_address = start_.client_address,
                      .client_port = start_.client_port,
                      .cancel_source = cancel_source()};
      bool keep_alive = true;
      int minor = 1;
      if (from_record) {
        take_record(request);
        keep_alive = first_->keep_alive;
        minor = first_->http_minor;
      } else {
        // Only a request the handler has whole is served here; one incomplete, or one the parser refuses,
        // goes back to the reactor, which waits for the rest without holding a handler, or refuses it.
        parser_.reset();
        const size_t taken = parser_.feed(stream_.unused());
        if (parser_.state() != http::RequestParser::State::kComplete) {
          return stream_.flush() ? stream_.keep_open() : stream_.closed();
        }
        stream_.consume(taken);
        take_parsed(request);
        keep_alive = parser_.head().keep_alive;
        minor = parser_.head().version_minor;
      }
      // Whether the reactor drains is read once the answer is made: a stop that came while it was computed
      // ends the connection with it.
      const bool head_request = request.method == "HEAD";
      uint16_t route = 0;
      http::Response response = make_response(std::move(request), route);
      const bool close = !keep_alive || reactor_draining();
      write(std::move(response), route, head_request, close, minor);
      if (close) return stream_.close();
      if (!stream_.flush()) return stream_.closed();
      if (stream_.unused().empty() || others_waiting()) return stream_.keep_open();
      report_answered();  // A pipelined request follows.
    }
  }

 private:
  void take_record(Request& request) const {
    request.method = first_->method;
    request.target = first_->target;
    request.path = first_->path;
    request.query = first_->query;
    request.headers = first_->headers;
    request.body = first_->body;
    request.version = version_text(first_->http_minor);
    request.id = first_->request_id;
  }

  // A request the handler read itself has no number of the reactor's: its id is 0.
  void take_parsed(Request& request) const {
    const http::RequestHead& head = parser_.head();
    request.method = head.method;
    request.target = head.target;
    std::tie(request.path, request.query) = ipc::split_target(head.target);
    request.headers.reserve(head.headers.size());
    for (const http::HeaderField& field : head.headers) request.headers.emplace_back(field.name, field.value);
    request.body = parser_.body();
    request.version = version_text(head.version_minor);
  }

  // route: set to the number of the route or command that answered (0: none).
  http::Response make_response(Request request, uint16_t& route) const {
    http::Response response = http_response(handler_.execute(std::move(request), route));
    if (response.status >= 400 && (response.body.empty() || response.body.back() != '\n')) {
      response.body += '\n';
    }
    return response;
  }

  void write(http::Response response, uint16_t route, bool head_request, bool close, int minor) {
    // HTTP/1.0 closes unless told otherwise.
    response.connection = close        ? ConnectionHeader::kClose
                          : minor == 0 ? ConnectionHeader::kKeepAlive
                                       : ConnectionHeader::kNone;
    stream_.queue(http::serialize(response, head_request));
    stream_.answered(response.status, route);
  }

  const ipc::RequestView* first_;
  http::RequestParser parser_;
};

}  // namespace

SessionOutcome serve_http(const Handler& handler, int client_fd, const ipc::RequestView* first,
                          std::string received, uint32_t flags, const Limits& limits,
                          const AnsweredCallback& on_answered, SessionStart start) {
  return HttpSession(handler, client_fd, first, std::move(received), flags, limits, on_answered, start).run();
}

}  // namespace handoff::handler
