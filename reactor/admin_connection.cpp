#include "reactor/admin_connection.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace handoff::reactor {
namespace {

constexpr size_t kMaxRequestBytes = 16 * 1024;
constexpr uint64_t kTimeoutMs = 10000;

}  // namespace

AdminConnection::AdminConnection(uv_loop_t* loop, uint64_t id, ipc::UniqueFd socket, const AdminRoute& route,
                                 const FinishedCallback& on_finished)
    : id_(id), socket_(std::move(socket)), route_(route), on_finished_(on_finished) {
  uv_poll_init(loop, &poll_, socket_.get());
  uv_timer_init(loop, &timer_);
  poll_.data = timer_.data = this;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_url = [](http_parser* p, const char* at, size_t length) {
    static_cast<AdminConnection*>(p->data)->url_.append(at, length);
    return 0;
  };
  settings_.on_message_complete = [](http_parser* p) {
    static_cast<AdminConnection*>(p->data)->complete_ = true;
    return 0;
  };
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
  received_ += got;
  http_parser_execute(&parser_, &settings_, chunk, got);
  if (complete_) {
    const auto method = static_cast<http_method>(parser_.method);
    const std::string_view url(url_);
    const size_t question = url.find('?');
    const http::Response response =
        route_(http_method_str(method), url.substr(0, question),
               question == std::string_view::npos ? "" : url.substr(question + 1));
    respond(response, method == HTTP_HEAD);
  } else if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
    respond({.status = 400,
             .body = std::string("malformed request: ") +
                     http_errno_description(HTTP_PARSER_ERRNO(&parser_)) + "\n"});
  } else if (received_ > kMaxRequestBytes) {
    respond({.status = 431, .body = "request too large\n"});
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
