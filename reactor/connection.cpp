#include "reactor/connection.hpp"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>

#include "http/response.hpp"
#include "ipc/request_record.hpp"
#include "ipc/wire.hpp"
#include "reactor/bytes_sent.hpp"
#include "reactor/log.hpp"
#include "reactor/proxy_header.hpp"

namespace handoff::reactor {
namespace {

constexpr uint64_t kLingerMs = 2000;
constexpr int kMaxDrainReadsPerWakeup = 16;  // So that a client that keeps sending cannot hold the loop.
constexpr size_t kLoggedRequestLineBytes = 100;

}  // namespace

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

Connection::Connection(uv_loop_t* loop, ConnectionId id, ipc::UniqueFd socket, const Config& config,
                       ReadBudget& budget, SocketPoller& poller, Events& events, ConnectionStart start)
    : id_(id),
      socket_(std::move(socket)),
      config_(config),
      events_(events),
      poller_(poller),
      framing_({.max_head_bytes = config.max_head_bytes, .max_body_bytes = config.max_request_bytes}),
      budget_(budget) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  received_ = std::move(start.already_read);
  passed_ran_again_ = start.ran_again;
  proxy_rule_ = start.proxy;
  proxy_peer_trusted_ = start.proxy == ProxyHeaderRule::kRequired;
  protocol_ = start.protocol;
  bytes_written_ = start.bytes_sent;
  if (!received_.empty()) request_began_ms_ = uv_now(loop) - static_cast<uint64_t>(start.request_age.count());
  if (start.continue_sent) framing_.assume_continue_answered();
  const bool proxy_header_first = proxy_rule_ != ProxyHeaderRule::kNone;  // Read first: read_available.
  if (protocol_ == Protocol::kUnknown && !received_.empty() && !proxy_header_first) {
    protocol_ = detect_protocol(received_);
  }
  account_received();
  if (!proxy_header_first) frame_received();
  // Added, the socket reports at once the bytes a client sent before it was accepted; the bytes taken over
  // with it are looked at in the next turn of the loop, even if the socket has nothing more.
  polled_ = !poller_.add(socket_.get(), *this, key_);
  if (!polled_) return;
  watch();
  if (!received_.empty()) poller_.look_again(key_);
}

// One edge, read by the state the connection is in. Plain input while the request waits or runs is the
// handler's (or pipelined): only the client's end is of interest then.
void Connection::on_socket_event(uint32_t events) {
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) hangup_seen_ = true;
  if ((events & EPOLLIN) != 0) may_have_input_ = true;
  switch (state_) {
    case State::kReading: read_request(); break;
    case State::kQueued:
    case State::kServed:
      if (!leaving_checked_ && hangup_seen_) check_client_left();
      break;
    case State::kDraining: drain_and_close(); break;
    case State::kPaused:
    case State::kStopped:
    case State::kClosed: break;
  }
}

const char* Connection::state_name(State state) {
  switch (state) {
    case State::kReading: return "reading";
    case State::kPaused: return "paused";
    case State::kStopped: return "stopped";
    case State::kQueued: return "queued";
    case State::kServed: return "served";
    case State::kDraining: return "draining";
    case State::kClosed: return "closed";
  }
  return "?";
}

void Connection::quiet_input_while_served() {
  may_have_input_ = true;  // Its edges are not reported meanwhile.
  if (input_quiet_ || !polled_) return;
  input_quiet_ = poller_.report_input(socket_.get(), key_, false);
}

void Connection::hear_input_again() {
  if (input_quiet_) input_quiet_ = !poller_.report_input(socket_.get(), key_, true);
}

void Connection::watch() {
  hear_input_again();
  state_ = State::kReading;
  const uint64_t now = uv_now(timer_.loop);
  last_input_ms_ = now;
  if (received_.empty()) {
    expire_after(config_.idle_timeout, Expiry::kIdle);
    return;
  }
  // A request begun: --read-timeout counts from its first byte, in this reactor or the one before. One
  // complete already (taken over whole) is looked at in the next turn of the loop, before any timeout.
  if (request_began_ms_ == 0 || request_ready()) request_began_ms_ = now;
  const Milliseconds reading(now - request_began_ms_);
  expire_after(std::max(config_.read_timeout - reading, Milliseconds(1)), Expiry::kRead);
}

void Connection::unwatch() {
  assert(reading());
  if (state_ == State::kPaused) budget_.cancel_pause();
  state_ = State::kStopped;
  budget_.stop_reading(id_);
  stop_timer();
}

void Connection::expire_after(Milliseconds timeout, Expiry expiry) {
  pending_expiry_ = expiry;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Connection*>(timer->data);
        if (self->reading()) self->unwatch();
        self->events_.on_expired(*self, self->pending_expiry_);
      },
      static_cast<uint64_t>(timeout.count()), 0);
}

void Connection::stop_timer() {
  uv_timer_stop(&timer_);
}

// The most the reactor holds of one request: a line up to --max-request-bytes (and its line end), an HTTP
// head up to --max-head-bytes with a body up to --max-request-bytes on the wire. The framing refuses a longer
// one before this is reached; a request that reaches it all the same is refused as too large: a handler gets
// whole requests only.
size_t Connection::read_cap() const {
  if (proxy_rule_ != ProxyHeaderRule::kNone) return std::max(config_.max_head_bytes, kMaxProxyHeaderBytes);
  switch (protocol_) {
    case Protocol::kLine: return config_.max_request_bytes + 2;
    case Protocol::kHttp:
      return config_.max_head_bytes + http::RequestLimits::body_phase_bytes(config_.max_request_bytes) + 1;
    case Protocol::kUnknown: break;
  }
  return config_.max_head_bytes;
}

bool Connection::request_ready() const {
  return framing_.ready();
}

// Feeds framing_ what it has not seen (all of it, once the protocol is known).
void Connection::frame_received() {
  if (protocol_ == Protocol::kUnknown) {
    if (received_.size() < read_cap()) return;
    protocol_ = Protocol::kLine;  // A long first line that has not said what it is: no HTTP request line.
  }
  framing_.feed(protocol_, std::string_view(received_).substr(framed_bytes_));
  framed_bytes_ = received_.size();
  if (received_.size() >= read_cap()) framing_.refuse_as_too_large();
  if (framing_.take_continue()) {
    // The client waits for this before it sends the body (curl gives up waiting after 1 s).
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    const ssize_t sent =
        ::send(socket_.get(), kContinue.data(), kContinue.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) bytes_written_ += static_cast<uint64_t>(sent);
  }
}

// The client sends nothing more: a last line without its line end is still a request (one that has not said
// what it is, a line), unless it is too long; an HTTP request cut short is refused (400).
void Connection::finish_framing() {
  if (protocol_ == Protocol::kUnknown) {
    protocol_ = Protocol::kLine;
    frame_received();
  }
  framing_.finish(protocol_);
}

void Connection::account_received() {
  budget_.update(budgeted_bytes_, received_.size());
  budgeted_bytes_ = received_.size();
}

// The edge of the bytes that waited meanwhile may be spent: the read happens in a later turn of the loop
// (a look again), never inside the budget's bookkeeping that called this.
bool Connection::resume_reading() {
  if (state_ != State::kPaused) return false;
  state_ = State::kReading;
  last_input_ms_ = uv_now(timer_.loop);  // Paused, it could send nothing: its stall counts from now.
  poller_.look_again(key_);
  return true;
}

void Connection::read_request() {
  switch (read_available()) {
    case Input::kWouldBlock:
    case Input::kPaused: return;
    case Input::kReady:
      unwatch();
      ready_at_ns_ = uv_hrtime();
      events_.on_request_ready(*this);
      return;
    case Input::kLeft:
      unwatch();
      events_.on_client_left(*this);
      return;
  }
}

// Reads until the socket would block (the contract of an edge), the request is ready, or the budget is spent.
// Bytes behind a complete request stay in the socket: they are the next request's, and may be the handler's
// to read. The timer moves from idle to --read-timeout with the first byte of a request.
Connection::Input Connection::read_available() {
  if (!received_.empty() && proxy_rule_ != ProxyHeaderRule::kNone) {  // Taken over (Start).
    if (const std::optional<Input> input = take_proxy_header(); input && *input == Input::kReady)
      return *input;
    if (proxy_rule_ == ProxyHeaderRule::kNone && !received_.empty()) {
      if (protocol_ == Protocol::kUnknown) protocol_ = detect_protocol(received_);
      frame_received();
    }
  }
  if (!received_.empty() && request_ready()) return Input::kReady;  // Taken over whole (Start).
  for (;;) {
    if (!budget_.may_read(id_, received_.size())) {
      // Back-pressure: no reading until handlers take requests and free bytes. The timer runs on.
      state_ = State::kPaused;
      return Input::kPaused;
    }
    char chunk[kReadChunkBytes];
    const size_t room = std::min(sizeof(chunk), read_cap() - received_.size());
    const ssize_t got = ::read(socket_.get(), chunk, room);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        may_have_input_ = false;
        return Input::kWouldBlock;
      }
      input_closed_ = true;  // ECONNRESET and friends: nothing can be answered any more.
      return Input::kLeft;
    }
    if (got == 0) {
      input_closed_ = true;
      // Nothing of a request came, or only part of a PROXY header: nothing to answer.
      if (received_.empty() || proxy_rule_ == ProxyHeaderRule::kRequired) return Input::kLeft;
      finish_framing();
      return Input::kReady;
    }
    // A short read took all there was, and what comes later brings an edge of its own. (tcp_recvmsg stops
    // short of the queue's end only at a TCP urgent mark: bytes sent behind one, with the request they
    // follow, wait for the client's next bytes. HTTP clients send none, and telnet only for a Synch.)
    may_have_input_ = static_cast<size_t>(got) == room;
    last_input_ms_ = uv_now(timer_.loop);
    received_.append(chunk, got);
    account_received();
    if (proxy_rule_ != ProxyHeaderRule::kNone) {
      if (const std::optional<Input> input = take_proxy_header()) {
        if (*input == Input::kReady) return *input;
        continue;  // The header is not whole yet.
      }
      if (received_.empty()) continue;  // The header alone: the connection is still idle.
    }
    if (protocol_ == Protocol::kUnknown) protocol_ = detect_protocol(received_);
    frame_received();
    if (request_ready()) return Input::kReady;
    // A request has begun (its first bytes came now, or behind a PROXY header that came before): from now on
    // the client has --read-timeout to finish it.
    if (request_began_ms_ == 0) {
      request_began_ms_ = last_input_ms_;
      expire_after(config_.read_timeout, Expiry::kRead);
    }
  }
}

std::optional<Connection::Input> Connection::take_proxy_header() {
  if (proxy_rule_ == ProxyHeaderRule::kRefused) return refuse_proxy_header();
  const ProxyHeader header = parse_proxy_header(received_);
  if (header.status == ProxyHeader::Status::kIncomplete) return Input::kWouldBlock;
  proxy_rule_ = ProxyHeaderRule::kNone;
  if (header.status == ProxyHeader::Status::kInvalid) {
    proxy_refusal_ = "PROXY protocol header: " + header.error;
    return Input::kReady;
  }
  received_.erase(0, header.length);
  account_received();
  // A header that names no client (a balancer's own health check: v2 LOCAL, v1 UNKNOWN) leaves the peer's.
  if (header.source) {
    client_ = header.source;
    proxy_named_client_ = true;
    if (config_.access_log) peer_ = header.source->to_string();
  }
  // The header alone came of a connection taken over (the old reactor wrote it again) that was idle there:
  // it is idle here too, not reading a request.
  if (received_.empty() && request_began_ms_ != 0 && reading()) {
    request_began_ms_ = 0;
    expire_after(config_.idle_timeout, Expiry::kIdle);
  }
  return std::nullopt;
}

// A peer not in --proxy-protocol-from may not name a client. Its bytes are looked at only while they could
// still begin a header: "PROXY " (no request begins so), or the v2 signature, whose first bytes an empty line
// shares (a line client pressing Enter, an HTTP client's CRLF before its request line): those go on as
// ever meanwhile, and only the whole signature is refused.
std::optional<Connection::Input> Connection::refuse_proxy_header() {
  static constexpr std::string_view kV1 = "PROXY ";
  static constexpr std::string_view kV2("\r\n\r\n\0\r\nQUIT\n", 12);
  const std::string_view bytes = received_;
  if (bytes.starts_with(kV1) || bytes.starts_with(kV2)) {
    proxy_rule_ = ProxyHeaderRule::kNone;
    proxy_refusal_ = "a PROXY protocol header from a peer not in --proxy-protocol-from";
    return Input::kReady;
  }
  if (kV1.starts_with(bytes)) return Input::kWouldBlock;
  if (!kV2.starts_with(bytes)) proxy_rule_ = ProxyHeaderRule::kNone;
  return std::nullopt;
}

std::string Connection::proxy_header_again() const {
  if (!proxy_named_client_) return "PROXY UNKNOWN\r\n";
  const bool v6 = client_->host.find(':') != std::string::npos;
  const std::string& host = client_->host;
  const std::string port = std::to_string(client_->port);
  // The destination is not read: the client's own address stands in for it, of the same family.
  return std::string(v6 ? "PROXY TCP6 " : "PROXY TCP4 ") + host + " " + host + " " + port + " " + port +
         "\r\n";
}

std::string Connection::take_request_line() {
  if (request_line_ == "-" && !received_.empty()) return printable_first_line(received_);
  std::string line = std::move(request_line_);
  request_line_.assign(1, '-');
  return line;
}

// While the request waits, the connection is watched for its client leaving only (EPOLLRDHUP, and the HUP
// and ERR that epoll always reports), so that nobody computes an answer for a client that is gone.
// --queue-timeout counts from when the request became complete: a request sent ahead and taken back waits
// again for what is left of it, not for all of it.
void Connection::wait_in_queue() {
  assert(!reading() && state_ != State::kDraining && state_ != State::kClosed);
  const Milliseconds waited((uv_hrtime() - ready_at_ns_) / 1'000'000);
  expire_after(std::max(config_.queue_timeout - waited, Milliseconds(1)), Expiry::kQueue);
  watch_for_leaving(State::kQueued);
}

// The queue's timer (a request sent ahead waited with one) ends where the service begins.
void Connection::watch_while_served() {
  assert(!reading() && state_ != State::kDraining && state_ != State::kClosed);
  stop_timer();
  watch_for_leaving(State::kServed);
}

// Only the client's end counts (EPOLLRDHUP, EPOLLHUP, EPOLLERR): bytes the client sends meanwhile are
// pipelined, and a handler may be reading them. An end that came with the request's last bytes had its edge
// while the request was read, so it is looked at again now.
void Connection::watch_for_leaving(State state) {
  state_ = state;
  leaving_checked_ = input_closed_;
  if (!leaving_checked_ && hangup_seen_) poller_.look_again(key_);
}

// A reset or an error means the client is gone. EOF means it sends nothing more: over HTTP a client that
// closes while its request waits or runs has given up on it (as nginx takes it); on the line protocol EOF
// after the requests is how `nc -N` ends its input, and the request is still answered. Bytes behind the
// request (pipelining) say the client is there. Peeking takes nothing from a handler reading the socket.
void Connection::check_client_left() {
  char byte;
  const ssize_t got = ::recv(socket_.get(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  const bool nothing_yet = got < 0 && (errno == EAGAIN || errno == EINTR);
  leaving_checked_ = true;
  if (got > 0 || nothing_yet) return;
  input_closed_ = true;
  if (got == 0 && protocol_ != Protocol::kHttp) return;
  stop_timer();
  events_.on_client_left(*this);
}

Connection::Request Connection::take_request(uint64_t request_id) {
  ran_again_ = std::exchange(passed_ran_again_, false);
  proxy_rule_ = ProxyHeaderRule::kNone;  // A header comes first or not at all.
  if (reading()) unwatch();
  state_ = State::kStopped;
  stop_timer();
  if (protocol_ == Protocol::kUnknown) protocol_ = Protocol::kLine;         // A short request cut by EOF.
  if (config_.access_log) request_line_ = printable_first_line(received_);  // Only the access log wants it.
  Request request{.flags = (protocol_ == Protocol::kHttp ? ipc::kFlagHttp : 0u) |
                           (input_closed_ ? ipc::kFlagInputClosed : 0u)};
  request.raw = std::exchange(received_, std::string());
  write_record(request_id, request.raw, request.record);
  request_began_ms_ = 0;
  framing_.reset();
  framed_bytes_ = 0;
  account_received();
  return request;
}

const ListenAddress& Connection::client() {
  if (!client_) client_ = socket_address(socket_.get(), true).value_or(ListenAddress{});
  return *client_;
}

std::string Connection::client_name() {
  const ListenAddress& client = this->client();
  return client.is_unix() ? client.to_string() : client.host;
}

// The record of the request at the start of raw (ipc/request_record.hpp), as the framing read it.
void Connection::write_record(uint64_t request_id, std::string_view raw, std::string& record) {
  const ListenAddress& client = this->client();
  framing_.append_record(
      protocol_, raw, {.request_id = request_id, .client_address = client.host, .client_port = client.port},
      record);
}

Connection::Resume Connection::resume(std::string unconsumed) {
  assert(!reading() && state_ != State::kDraining && state_ != State::kClosed);
  state_ = State::kStopped;
  received_ = std::move(unconsumed);
  request_began_ms_ = 0;  // What a handler read and did not use began just now, as far as the reactor knows.
  account_received();
  frame_received();
  if (input_closed_ && !received_.empty()) finish_framing();
  if (!received_.empty() && (request_ready() || input_closed_)) {
    ready_at_ns_ = uv_hrtime();
    return Resume::kReady;
  }
  if (input_closed_) return Resume::kClientLeft;
  watch();
  if (!may_have_input_ && received_.empty()) return Resume::kWatching;  // The next edge says when.
  switch (read_available()) {
    case Input::kWouldBlock:
    case Input::kPaused: return Resume::kWatching;
    case Input::kReady:
      unwatch();
      ready_at_ns_ = uv_hrtime();
      return Resume::kReady;
    case Input::kLeft: unwatch(); return Resume::kClientLeft;
  }
  return Resume::kWatching;
}

Connection::Sent Connection::sent_after(uint64_t answered_bytes, uint64_t noted_end) const {
  const std::optional<uint64_t> sent = bytes_sent(socket_.get());
  Sent verdict = Sent::kPartOfAnAnswer;
  if (!sent && on_unix_socket()) {
    // A Unix socket counts no bytes sent. A handler notes each answer before it writes a byte of it: with
    // none noted past its reports, nothing unreported went out; with one, whether all of it did is not known.
    verdict = noted_end > answered_bytes ? Sent::kPartOfAnAnswer : Sent::kReported;
  } else if (sent && *sent == bytes_written_ + answered_bytes) {
    verdict = Sent::kReported;
  } else if (sent && noted_end > answered_bytes && *sent == bytes_written_ + noted_end) {
    verdict = Sent::kNotedAnswer;
  }
  // What a dead handler's connection is judged by: a close without a word to the client (a cut answer, or
  // after a noted answer that ended the connection) can be checked against these numbers.
  log_at(LogLevel::kDebug,
         "connection %llu (%s): the socket sent %lld bytes; %llu before this hand-off, %llu reported in it, "
         "noted answer ends at %llu: %s",
         static_cast<unsigned long long>(id_), state_name(state_),
         sent ? static_cast<long long>(*sent) : -1LL, static_cast<unsigned long long>(bytes_written_),
         static_cast<unsigned long long>(answered_bytes), static_cast<unsigned long long>(noted_end),
         verdict == Sent::kReported      ? "nothing unreported"
         : verdict == Sent::kNotedAnswer ? "the noted answer, whole"
                                         : "part of an answer, or not known");
  return verdict;
}

bool Connection::on_unix_socket() const {
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  return ::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
         local.ss_family == AF_UNIX;
}

uint64_t Connection::refuse(Refusal refusal) {
  return send_refusal(refusal_message(protocol_, refusal));
}

uint64_t Connection::refuse_request() {
  if (!proxy_refusal_.empty()) return 0;
  if (protocol_ != Protocol::kHttp) return send_refusal("ERR " + framing_.refusal_reason() + "\n");
  return send_refusal(http::serialize({.status = framing_.refusal_status(),
                                       .body = framing_.refusal_reason() + "\n",
                                       .connection = http::ConnectionHeader::kClose},
                                      framing_.head_request()));
}

void Connection::end_output() {
  (void)::shutdown(socket_.get(), SHUT_WR);
}

uint64_t Connection::send_refusal(const std::string& message) {
  // A short answer fits the socket buffer of any client that reads; one that does not read loses it.
  const ssize_t sent = ::send(socket_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return sent > 0 ? static_cast<uint64_t>(sent) : 0;
}

// Here, not in the destructor: the budget may be gone by the time that runs.
std::string Connection::end_waits() {
  if (reading()) unwatch();
  state_ = State::kStopped;
  stop_timer();
  std::string held = std::exchange(received_, std::string());
  account_received();
  budget_.stop_reading(id_);
  return held;
}

PassedConnection Connection::release_to_successor(std::string before) {
  const uint64_t began = request_began_ms_;
  before += end_waits();
  // The successor sees the balancer as the peer, trusts it, and reads a header first: the client's again.
  if (proxy_peer_trusted_ && proxy_rule_ == ProxyHeaderRule::kNone) before.insert(0, proxy_header_again());
  if (polled_) poller_.forget_passed(socket_.get(), key_);
  polled_ = false;
  uint32_t flags = protocol_ == Protocol::kHttp   ? ipc::kTakenHttp
                   : protocol_ == Protocol::kLine ? ipc::kTakenLineProtocol
                                                  : 0u;
  if (framing_.continue_answered()) flags |= ipc::kFlagContinueSent;
  if (ran_again_) flags |= ipc::kFlagRanAgain;
  const uint64_t age_ms = began == 0 || before.empty() ? 0 : uv_now(timer_.loop) - began;
  PassedConnection passed{.socket = std::move(socket_),
                          .bytes_sent = bytes_written_,
                          .request_age_ms = static_cast<uint32_t>(std::min<uint64_t>(age_ms, UINT32_MAX)),
                          .bytes = std::move(before),
                          .flags = flags};
  close_handles();
  return passed;
}

void Connection::close() {
  end_waits();
  // A copy sent ahead to a handler and taken back may still wait in that handler's channel, unread: closing
  // this one would not end the connection then, and a client reading to the end would wait for that handler.
  if (copy_in_flight_) end_output();
  if (!polled_ || !has_unread_input() || ::shutdown(socket_.get(), SHUT_WR) != 0) {
    close_handles();
    return;
  }
  state_ = State::kDraining;
  hear_input_again();
  uv_timer_start(
      &timer_, [](uv_timer_t* timer) { static_cast<Connection*>(timer->data)->close_handles(); }, kLingerMs,
      0);
  drain_and_close();  // The edge of the input that waits is spent.
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
  poller_.look_again(key_);  // Not drained yet, and no edge may come for what is left.
}

// The socket leaves the poller first, then closes with the object, after its timer.
void Connection::close_handles() {
  if (uv_is_closing(as_handle(&timer_))) return;
  // A copy that lives on in a handler would keep the socket in epoll, waking the loop for nobody.
  if (polled_ && copy_in_flight_) {
    poller_.forget_passed(socket_.get(), key_);
  } else if (polled_) {
    poller_.forget(key_);
  }
  polled_ = false;
  state_ = State::kClosed;
  CloseOnLoop::close_then_delete(this, {as_handle(&timer_)});
}

}  // namespace handoff::reactor
