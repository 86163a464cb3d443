#include "reactor/admin_server.hpp"

#include <http_parser.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace handoff::reactor {

namespace {

constexpr size_t kMaxRequestBytes = 16 * 1024;
constexpr uint64_t kTimeoutMs = 10000;

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

// One admin client: read one request, answer it, close. Freed in its close callbacks (LoopOwned).
class AdminConnection {
 public:
  AdminConnection(uv_loop_t* loop, uint64_t id, ipc::UniqueFd socket, const AdminServer::Route& route,
                  AdminServer& server)
      : id_(id), socket_(std::move(socket)), route_(route), server_(server) {
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
    uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* poll, int status, int) {
      auto* self = static_cast<AdminConnection*>(poll->data);
      status < 0 ? self->finish() : self->read_request();
    });
    uv_timer_start(&timer_, [](uv_timer_t* timer) { static_cast<AdminConnection*>(timer->data)->time_out(); },
                   kTimeoutMs, 0);
  }

  void close() {
    const auto on_closed = [](uv_handle_t* handle) {
      auto* self = static_cast<AdminConnection*>(handle->data);
      if (--self->open_handles_ == 0) delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), on_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  }

 private:
  ~AdminConnection() = default;

  void read_request() {
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
      const http_method method = static_cast<http_method>(parser_.method);
      const std::string_view url(url_);
      const size_t question = url.find('?');
      AdminResponse response = route_(http_method_str(method), url.substr(0, question),
                                      question == std::string_view::npos ? "" : url.substr(question + 1));
      respond(response, method == HTTP_HEAD);
    } else if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
      respond({.status = 400, .body = std::string("malformed request: ") +
                                      http_errno_description(HTTP_PARSER_ERRNO(&parser_)) + "\n"});
    } else if (received_ > kMaxRequestBytes) {
      respond({.status = 431, .body = "request too large\n"});
    }
  }

  void time_out() { respond({.status = 408, .body = "request timeout\n"}); }

  void respond(const AdminResponse& response, bool head_only = false) {
    uv_timer_stop(&timer_);
    out_ = "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) + "\r\n" +
           "Server: handoff\r\nContent-Type: " + response.content_type + "\r\nContent-Length: " +
           std::to_string(response.body.size()) + "\r\nCache-Control: no-store\r\n" + response.extra_headers +
           "Connection: close\r\n\r\n" + (head_only ? "" : response.body);
    uv_poll_start(&poll_, UV_WRITABLE, [](uv_poll_t* poll, int status, int) {
      auto* self = static_cast<AdminConnection*>(poll->data);
      status < 0 ? self->finish() : self->write_response();
    });
    uv_timer_start(&timer_, [](uv_timer_t* timer) { static_cast<AdminConnection*>(timer->data)->finish(); },
                   kTimeoutMs, 0);
  }

  void write_response() {
    const ssize_t sent = ::send(socket_.get(), out_.data() + written_, out_.size() - written_, MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (sent < 0 || (written_ += sent) == out_.size()) finish();
  }

  void finish() {
    uv_poll_stop(&poll_);
    uv_timer_stop(&timer_);
    server_.finished(id_);
  }

  const uint64_t id_;
  ipc::UniqueFd socket_;
  const AdminServer::Route& route_;
  AdminServer& server_;
  uv_poll_t poll_;
  uv_timer_t timer_;
  http_parser parser_;
  http_parser_settings settings_;
  std::string url_;
  bool complete_ = false;
  size_t received_ = 0;
  std::string out_;
  size_t written_ = 0;
  int open_handles_ = 2;
};

AdminServer::AdminServer(uv_loop_t* loop, ipc::UniqueFd listening_socket, Route route)
    : loop_(loop), route_(std::move(route)) {
  listener_ = make_loop_owned<Listener>(loop_, std::move(listening_socket),
                                        [this](ipc::UniqueFd client) { accept(std::move(client)); });
}

AdminServer::~AdminServer() = default;

void AdminServer::accept(ipc::UniqueFd client) {
  const uint64_t id = next_id_++;
  connections_.emplace(id, make_loop_owned<AdminConnection>(loop_, id, std::move(client), route_, *this));
}

void AdminServer::finished(uint64_t connection_id) { connections_.erase(connection_id); }

}  // namespace handoff::reactor
