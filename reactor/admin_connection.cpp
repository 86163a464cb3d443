#include "reactor/admin_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>

#include "reactor/config.hpp"
#include "reactor/listener.hpp"

namespace handoff::reactor {
namespace {

// "127.0.0.1:8889", "[::1]:8889", "localhost" (the port optional): an IP literal or localhost, as --listen
// takes them.
bool names_an_address(std::string_view host) {
  return parse_listen_address(host) || parse_listen_address(std::string(host) + ":0");
}

// The admin port refuses what a web page the operator happens to open could send it: a request that came in
// over loopback for a host name (DNS rebinding: evil.example resolving to 127.0.0.1 makes the browser send
// "Host: evil.example:8889"), and a POST from another origin (a cross-site form or fetch, CSRF). curl and
// scripts send neither; over other addresses, operators and Prometheus may well use names.
std::optional<http::Response> refusal_for_browsers(const http::RequestHead& head, bool over_loopback) {
  const std::string_view host = head.header("host");
  if (over_loopback && !host.empty() && !names_an_address(host)) {
    return http::Response{.status = 403,
                          .body = "the admin port answers requests for an IP address or localhost only\n"};
  }
  const std::string_view origin = head.header("origin");
  if (head.method == "POST" && !origin.empty() && origin != "http://" + std::string(host)) {
    return http::Response{.status = 403, .body = "cross-origin requests to the admin port are refused\n"};
  }
  return std::nullopt;
}

bool is_loopback(const std::optional<ListenAddress>& address) {
  return address && (address->host.starts_with("127.") || address->host == "::1" ||
                     address->host.starts_with("::ffff:127."));
}

// Compares in time that depends on the expected token's length only, not on where the two first differ.
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned char difference = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    difference |= static_cast<unsigned char>((i < given.size() ? given[i] : 0) ^ expected[i]);
  }
  return difference == 0;
}

// Every POST route changes the server (POST /pool). With a token configured, such a request must carry it,
// from wherever it comes; without one, only a peer on this machine may send it: a port opened to another
// address for Prometheus and the status page must not let the network resize the pool.
std::optional<http::Response> refusal_for_changes(const http::RequestHead& head, bool peer_on_loopback,
                                                  const std::string& token) {
  if (head.method != "POST") return std::nullopt;
  if (!token.empty()) {
    const std::string_view authorization = head.header("authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.starts_with(kBearer) && same_secret(authorization.substr(kBearer.size()), token)) {
      return std::nullopt;
    }
    return http::Response{
        .status = 401,
        .body = "this admin request needs 'Authorization: Bearer TOKEN' (--admin-token-file)\n",
        .extra_headers = "WWW-Authenticate: Bearer realm=\"handoff admin\"\r\n"};
  }
  if (peer_on_loopback) return std::nullopt;
  return http::Response{.status = 403,
                        .body =
                            "changes through the admin port come from this machine only, unless the reactor "
                            "has --admin-token-file\n"};
}

constexpr size_t kMaxHeadBytes = 16 * 1024;
constexpr size_t kMaxBodyBytes = 1024;  // No admin route reads a body.
constexpr uint64_t kTimeoutMs = 10000;

}  // namespace

AdminConnection::AdminConnection(uv_loop_t* loop, uint64_t id, ipc::UniqueFd socket, const AdminRoute& route,
                                 const std::string& token, const FinishedCallback& on_finished)
    : id_(id),
      socket_(std::move(socket)),
      route_(route),
      token_(token),
      on_finished_(on_finished),
      parser_({.max_head_bytes = kMaxHeadBytes, .max_body_bytes = kMaxBodyBytes}) {
  over_loopback_ = is_loopback(socket_address(socket_.get(), false));
  peer_on_loopback_ = is_loopback(socket_address(socket_.get(), true));
  uv_poll_init(loop, &poll_, socket_.get());
  uv_timer_init(loop, &timer_);
  poll_.data = timer_.data = this;
  wait_for(Step::kReading);
}

void AdminConnection::close() {
  CloseOnLoop::close_then_delete(this, {as_handle(&poll_), as_handle(&timer_)});
}

void AdminConnection::wait_for(Step step) {
  step_ = step;
  uv_poll_start(&poll_, step == Step::kReading ? UV_READABLE : UV_WRITABLE,
                [](uv_poll_t* poll, int status, int) {
                  auto* self = static_cast<AdminConnection*>(poll->data);
                  if (status < 0) {
                    self->finish();
                  } else if (self->step_ == Step::kReading) {
                    self->read_request();
                  } else {
                    self->write_response();
                  }
                });
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<AdminConnection*>(timer->data);
        if (self->step_ == Step::kReading) {
          self->respond({.status = 408, .body = "request timeout\n"});
        } else {
          self->finish();  // The client does not take its answer.
        }
      },
      kTimeoutMs, 0);
}

void AdminConnection::read_request() {
  char chunk[4096];
  const ssize_t got = ::read(socket_.get(), chunk, sizeof(chunk));
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) {
    finish();
    return;
  }
  parser_.feed(std::string_view(chunk, got));
  switch (parser_.state()) {
    case http::RequestParser::State::kComplete: {
      const http::RequestHead& head = parser_.head();
      std::optional<http::Response> refusal = refusal_for_browsers(head, over_loopback_);
      if (!refusal) refusal = refusal_for_changes(head, peer_on_loopback_, token_);
      if (refusal) {
        respond(*refusal, head.method == "HEAD");
        break;
      }
      const std::string_view target(head.target);
      const size_t question = target.find('?');
      respond(route_(head.method, target.substr(0, question),
                     question == std::string_view::npos ? "" : target.substr(question + 1)),
              head.method == "HEAD");
      break;
    }
    case http::RequestParser::State::kRefused:
      respond({.status = parser_.refusal_status(), .body = parser_.refusal_reason() + "\n"});
      break;
    case http::RequestParser::State::kHead:
    case http::RequestParser::State::kBody: break;
  }
}

void AdminConnection::respond(const http::Response& response, bool head_request) {
  http::Response closing = response;
  closing.extra_headers = "Cache-Control: no-store\r\n" + closing.extra_headers;
  closing.connection = http::ConnectionHeader::kClose;
  out_ = http::serialize(closing, head_request);
  wait_for(Step::kWriting);
}

void AdminConnection::write_response() {
  const ssize_t sent = ::send(socket_.get(), out_.data() + written_, out_.size() - written_, MSG_NOSIGNAL);
  if (sent < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (sent < 0 || (written_ += sent) == out_.size()) finish();
}

void AdminConnection::finish() {
  uv_poll_stop(&poll_);
  uv_timer_stop(&timer_);
  on_finished_(id_);
}

}  // namespace handoff::reactor
