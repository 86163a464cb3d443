#include "reactor/connection.hpp"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "http/response.hpp"
#include "ipc/wire.hpp"
#include "reactor/bytes_sent.hpp"

namespace handoff::reactor {
namespace {

constexpr uint64_t kLingerMs = 2000;
constexpr int kMaxDrainReadsPerWakeup = 16;  // So that a client that keeps sending cannot hold the loop.
constexpr size_t kLoggedRequestLineBytes = 100;

// The head's first line, cut short, with control bytes replaced: fit for a log line.
std::string printable_first_line(std::string_view head) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string out;
  for (const char c : line.substr(0, kLoggedRequestLineBytes)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (line.size() > kLoggedRequestLineBytes) out += "...";
  return out;
}

}  // namespace

Connection::Connection(uv_loop_t* loop, ConnectionId id, ipc::UniqueFd socket, const Config& config,
                       ReadBudget& budget, Events& events)
    : id_(id),
      socket_(std::move(socket)),
      config_(config),
      events_(events),
      framing_({.max_head_bytes = config.max_head_bytes, .max_body_bytes = config.max_request_bytes}),
      budget_(budget) {
  uv_poll_init(loop, &poll_, socket_.get());
  uv_timer_init(loop, &timer_);
  poll_.data = timer_.data = this;
  watch();
}

void Connection::watch() {
  watching_ = true;
  expire_after(received_.empty() ? config_.idle_timeout : config_.read_timeout,
               received_.empty() ? Expiry::kIdle : Expiry::kRead);
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<Connection*>(poll->data)->read_request(); });
}

void Connection::unwatch() {
  if (paused_) budget_.cancel_pause();
  watching_ = paused_ = false;
  budget_.stop_reading(id_);
  stop_timer();
  uv_poll_stop(&poll_);
}

void Connection::expire_after(Milliseconds timeout, Expiry expiry) {
  pending_expiry_ = expiry;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Connection*>(timer->data);
        if (self->watching_) self->unwatch();
        self->events_.on_expired(*self, self->pending_expiry_);
      },
      static_cast<uint64_t>(timeout.count()), 0);
}

void Connection::stop_timer() {
  uv_timer_stop(&timer_);
}

// The most the reactor holds of one request: a line up to --max-request-bytes (and its line end), an HTTP
// head up to --max-head-bytes with a body up to --max-request-bytes, all within one ipc frame. A request
// longer than that is handed off unfinished, and the handler refuses it or reads the rest itself.
size_t Connection::read_cap() const {
  switch (protocol_) {
    case Protocol::kLine: return std::min<size_t>(config_.max_request_bytes + 2, ipc::kMaxPayloadBytes);
    case Protocol::kHttp:
      return std::min<size_t>(
          config_.max_head_bytes + http::RequestLimits::body_phase_bytes(config_.max_request_bytes),
          ipc::kMaxPayloadBytes);
    case Protocol::kUnknown: break;
  }
  return config_.max_head_bytes;
}

bool Connection::request_ready() const {
  // The parser refuses an HTTP head over --max-head-bytes itself; the line protocol's cap is the line's.
  return framing_.ready() || received_.size() >= read_cap();
}

// Feeds framing_ what it has not seen (all of it, once the protocol is known).
void Connection::frame_received() {
  if (protocol_ == Protocol::kUnknown) return;
  framing_.feed(protocol_, std::string_view(received_).substr(framed_bytes_));
  framed_bytes_ = received_.size();
  if (framing_.take_continue()) {
    // The client waits for this before it sends the body (curl gives up waiting after 1 s).
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    const ssize_t sent =
        ::send(socket_.get(), kContinue.data(), kContinue.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) bytes_written_ += static_cast<uint64_t>(sent);
  }
}

void Connection::account_received() {
  budget_.update(budgeted_bytes_, received_.size());
  budgeted_bytes_ = received_.size();
}

bool Connection::resume_reading() {
  if (!paused_) return false;
  paused_ = false;
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<Connection*>(poll->data)->read_request(); });
  return true;
}

void Connection::read_request() {
  if (!budget_.may_read(id_)) {
    // Back-pressure: no reading until handlers take requests and free bytes. The timer runs on.
    paused_ = true;
    uv_poll_stop(&poll_);
    return;
  }
  char chunk[kReadChunkBytes];
  const size_t room = std::min(sizeof(chunk), read_cap() - received_.size());
  const ssize_t got = ::read(socket_.get(), chunk, room);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    // ECONNRESET and friends: nothing can be answered any more.
    input_closed_ = true;
    unwatch();
    events_.on_client_left(*this);
    return;
  }
  if (got == 0) {
    input_closed_ = true;
    unwatch();
    if (received_.empty()) {
      events_.on_client_left(*this);
    } else {
      // A last line without its line end is still a request; an HTTP request cut short is refused (400).
      if (protocol_ == Protocol::kHttp) framing_.finish();
      ready_at_ns_ = uv_hrtime();
      events_.on_request_ready(*this);
    }
    return;
  }
  const bool first_bytes = received_.empty();
  received_.append(chunk, got);
  account_received();
  if (protocol_ == Protocol::kUnknown) protocol_ = detect_protocol(received_);
  frame_received();
  if (request_ready()) {
    unwatch();
    ready_at_ns_ = uv_hrtime();
    events_.on_request_ready(*this);
  } else if (first_bytes) {
    // A request has begun: from now on the client has --read-timeout to finish it.
    expire_after(config_.read_timeout, Expiry::kRead);
  }
}

std::string Connection::take_request_line() {
  std::string line = std::move(request_line_);
  request_line_.assign(1, '-');
  return line;
}

// While the request waits, the connection is watched for its client leaving only (EPOLLRDHUP, and the HUP
// and ERR that epoll always reports), so that nobody computes an answer for a client that is gone.
void Connection::wait_in_queue() {
  expire_after(config_.queue_timeout, Expiry::kQueue);
  watch_for_leaving();
}

void Connection::watch_while_served() {
  watch_for_leaving();
}

// Only EPOLLRDHUP is asked for (epoll reports errors and hang-ups anyway): bytes the client sends meanwhile
// do not wake the loop, and a handler may be reading them.
void Connection::watch_for_leaving() {
  if (input_closed_) return;
  watching_for_leaving_ = true;
  uv_poll_start(&poll_, UV_DISCONNECT, [](uv_poll_t* poll, int status, int) {
    static_cast<Connection*>(poll->data)->check_client_left(status);
  });
}

void Connection::stop_watching_for_leaving() {
  if (!watching_for_leaving_) return;
  watching_for_leaving_ = false;
  uv_poll_stop(&poll_);
}

// A reset or an error means the client is gone. EOF means it sends nothing more: over HTTP a client that
// closes while its request waits or runs has given up on it (as nginx takes it); on the line protocol EOF
// after the requests is how `nc -N` ends its input, and the request is still answered. Bytes behind the
// request (pipelining) say the client is there. Peeking takes nothing from a handler reading the socket.
void Connection::check_client_left(int status) {
  char byte;
  const ssize_t got = status < 0 ? -1 : ::recv(socket_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  const bool nothing_yet = got < 0 && status >= 0 && (errno == EAGAIN || errno == EINTR);
  stop_watching_for_leaving();
  if (got > 0 || nothing_yet) return;
  input_closed_ = true;
  if (got == 0 && protocol_ != Protocol::kHttp) return;
  stop_timer();
  events_.on_client_left(*this);
}

Connection::Request Connection::take_request() {
  if (watching_) unwatch();
  stop_watching_for_leaving();
  stop_timer();
  if (protocol_ == Protocol::kUnknown) protocol_ = Protocol::kLine;         // A short request cut by EOF.
  if (config_.access_log) request_line_ = printable_first_line(received_);  // Only the access log wants it.
  uint32_t flags = protocol_ == Protocol::kHttp ? ipc::kFlagHttp : 0;
  if (input_closed_) {
    flags |= ipc::kFlagInputClosed;
  } else if (!framing_.ready()) {
    flags |= ipc::kFlagHeadTruncated;  // Cut at the cap: the handler refuses it or reads the rest.
  }
  Request request{std::exchange(received_, std::string()), flags};
  framing_.reset();
  framed_bytes_ = 0;
  account_received();
  return request;
}

Connection::Resume Connection::resume(std::string unconsumed) {
  stop_watching_for_leaving();
  received_ = std::move(unconsumed);
  account_received();
  frame_received();
  if (!received_.empty() && (request_ready() || input_closed_)) {
    ready_at_ns_ = uv_hrtime();
    return Resume::kReady;
  }
  if (input_closed_) return Resume::kClientLeft;
  watch();
  return Resume::kWatching;
}

Connection::Sent Connection::sent_after(uint64_t answered_bytes, uint64_t noted_end) const {
  const std::optional<uint64_t> sent = bytes_sent(socket_.get());
  if (!sent) return Sent::kPartOfAnAnswer;
  if (*sent == bytes_written_ + answered_bytes) return Sent::kReported;
  if (noted_end > answered_bytes && *sent == bytes_written_ + noted_end) return Sent::kNotedAnswer;
  return Sent::kPartOfAnAnswer;
}

void Connection::refuse(Refusal refusal) {
  send_refusal(refusal_message(protocol_, refusal));
}

void Connection::refuse_request() {
  send_refusal(http::serialize({.status = framing_.refusal_status(),
                                .body = framing_.refusal_reason() + "\n",
                                .connection = http::ConnectionHeader::kClose},
                               framing_.head_request()));
}

void Connection::end_output() {
  (void)::shutdown(socket_.get(), SHUT_WR);
}

void Connection::send_refusal(const std::string& message) {
  // A short answer fits the socket buffer of any client that reads; one that does not read loses it.
  (void)!::send(socket_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Connection::close() {
  if (watching_) unwatch();
  // Here, not in the destructor: the budget may be gone by the time that runs.
  received_.clear();
  account_received();
  budget_.stop_reading(id_);
  stop_timer();
  if (!has_unread_input() || ::shutdown(socket_.get(), SHUT_WR) != 0) {
    close_handles();
    return;
  }
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<Connection*>(poll->data)->drain_and_close(); });
  uv_timer_start(
      &timer_, [](uv_timer_t* timer) { static_cast<Connection*>(timer->data)->close_handles(); }, kLingerMs,
      0);
}

bool Connection::has_unread_input() const {
  if (input_closed_) return false;
  int pending = 0;
  return ::ioctl(socket_.get(), FIONREAD, &pending) != 0 || pending > 0;
}

void Connection::drain_and_close() {
  char chunk[kReadChunkBytes];
  for (int i = 0; i < kMaxDrainReadsPerWakeup; ++i) {
    const ssize_t got = ::read(socket_.get(), chunk, sizeof(chunk));
    if (got > 0) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got < 0 && errno == EINTR) continue;
    close_handles();  // EOF or an error: the client has closed too.
    return;
  }
}

// The socket closes with the object, after its poll handle.
void Connection::close_handles() {
  if (uv_is_closing(as_handle(&poll_))) return;
  CloseOnLoop::close_then_delete(this, {as_handle(&poll_), as_handle(&timer_)});
}

}  // namespace handoff::reactor
