#include "reactor/admin/admin_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>

#include "reactor/admin/admin_guard.hpp"
#include "reactor/config.hpp"
#include "reactor/listener.hpp"

namespace handoff::reactor {
namespace {

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
