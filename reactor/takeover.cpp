#include "reactor/takeover.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <span>

#include "ipc/socket_io.hpp"
#include "ipc/wire.hpp"
#include "reactor/child_command.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// The descriptor at which the successor inherits its channel.
constexpr int kSuccessorChannelFd = 3;
// The listening sockets are sent before the successor starts, in blocking writes with this timeout.
constexpr int kListenerSendTimeoutSeconds = 5;

std::error_code failed(const char* call) {
  const int error = errno;
  log_at(LogLevel::kError, "takeover: %s: %s", call, std::strerror(error));
  return {error, std::system_category()};
}

std::error_code set_timeout(int socket, int option, int seconds) {
  const timeval timeout{.tv_sec = seconds, .tv_usec = 0};
  if (::setsockopt(socket, SOL_SOCKET, option, &timeout, sizeof(timeout)) != 0) return failed("setsockopt");
  return {};
}

// The connection a kTakeoverConnection frame begins: its payload is a Progress, then the first of its bytes.
// nullopt when the payload is too short to hold the Progress.
std::optional<PassedConnection> connection_begun_by(ipc::UniqueFd socket, uint32_t flags,
                                                    std::string payload) {
  ipc::Progress progress{};
  if (!ipc::split_progress_payload(payload, progress)) return std::nullopt;
  return PassedConnection{.socket = std::move(socket),
                          .bytes_sent = progress.bytes_written,
                          .request_age_ms = progress.request_age_ms,
                          .bytes = std::move(payload),
                          .flags = flags & ~ipc::kFlagMoreBytes};
}

}  // namespace

// --- The old reactor's end ---

Successor::Successor(ipc::UniqueFd channel, Events& events, Milliseconds stall_timeout)
    : channel_(std::move(channel)), events_(events), stall_timeout_(stall_timeout) {
  process_.data = channel_poll_.data = ready_timer_.data = stall_timer_.data = this;
}

std::error_code Successor::start(uv_loop_t* loop, Options options, Events& events,
                                 LoopOwned<Successor>& successor) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return failed("socketpair");
  ipc::UniqueFd child_end(ends[1]);
  LoopOwned<Successor> self(new Successor(ipc::UniqueFd(ends[0]), events, options.stall_timeout));
  if (auto error = set_timeout(self->channel_.fd(), SO_SNDTIMEO, kListenerSendTimeoutSeconds)) return error;

  // The sockets wait in the channel's buffer until the successor reads them: the service's, in their order,
  // then the admin port's, if there is one. The last says so.
  std::vector<std::pair<int, uint32_t>> listeners;
  for (const int socket : options.serve) listeners.emplace_back(socket, 0);
  if (options.admin >= 0) listeners.emplace_back(options.admin, ipc::kFlagAdminPort);
  listeners.back().second |= ipc::kFlagLast;
  for (const auto& [socket, flags] : listeners) {
    ipc::Message listener{.type = ipc::MessageType::kTakeoverListener, .flags = flags};
    listener.descriptor.reset(::fcntl(socket, F_DUPFD_CLOEXEC, 0));
    if (!listener.descriptor) return failed("dup of a listening socket");
    if (auto error = self->channel_.send(listener)) {
      log_at(LogLevel::kError, "takeover: sending a listening socket: %s", error.message().c_str());
      return error;
    }
  }

  // stdin, stdout and stderr are the reactor's own: the successor prints its "listening on" line where this
  // one did, and logs where it logs.
  ChildCommand command(options.argv,
                       {std::string(kTakeoverFdVariable) + "=" + std::to_string(kSuccessorChannelFd),
                        std::string(kTakeoverHandlersVariable) + "=" + std::to_string(options.pool_size)},
                       {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, child_end.get()});
  static_assert(kSuccessorChannelFd == 3);
  const uv_exit_cb on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    static_cast<Successor*>(process->data)->on_exit(exit_status, term_signal);
  };
  const uv_process_options_t process_options = command.options(on_exit);
  self->spawned_ = true;  // uv_spawn initialises the handle even when it fails: it is closed.
  if (const int error = uv_spawn(loop, &self->process_, &process_options); error < 0) {
    log_at(LogLevel::kError, "takeover: cannot start '%s': %s", options.argv[0].c_str(), uv_strerror(error));
    self->exited_ = true;  // Nothing to reap.
    successor = std::move(self);
    return {-error, std::system_category()};
  }
  uv_timer_init(loop, &self->ready_timer_);
  uv_timer_init(loop, &self->stall_timer_);
  uv_timer_start(
      &self->ready_timer_,
      [](uv_timer_t* timer) {
        auto* successor = static_cast<Successor*>(timer->data);
        log_at(LogLevel::kError, "takeover: the new reactor (pid %d) was not ready in time; killing it",
               successor->process_.pid);
        uv_process_kill(&successor->process_, SIGKILL);  // Its exit says the rest.
      },
      static_cast<uint64_t>(options.ready_timeout.count()), 0);
  // From here the channel is non-blocking (uv_poll_init makes it so): the outbox waits for room on the loop.
  uv_poll_init(loop, &self->channel_poll_, self->channel_.fd());
  self->polling_ = true;
  uv_poll_start(&self->channel_poll_, UV_READABLE, [](uv_poll_t* poll, int, int) {
    static_cast<Successor*>(poll->data)->on_channel_readable();
  });
  log_at(LogLevel::kInfo, "takeover: started the new reactor, pid %d: %s", self->process_.pid,
         options.argv[0].c_str());
  successor = std::move(self);
  return {};
}

void Successor::on_exit(int64_t exit_status, int term_signal) {
  exited_ = true;
  uv_timer_stop(&ready_timer_);
  if (closing_) {  // After close(): nobody waits for news of it, and nothing more goes to it.
    send_failed_ = true;
    outbox_.clear();
    close_if_done();
    return;
  }
  if (ready_) {
    std::vector<PassedConnection> unpassed = take_back_unpassed();
    log_at(LogLevel::kError,
           "takeover: the new reactor (pid %d) exited (status %lld, signal %d); the connections it took are "
           "lost, %zu not taken come back",
           process_.pid, static_cast<long long>(exit_status), term_signal, unpassed.size());
    send_failed_ = true;
    uv_timer_stop(&stall_timer_);
    uv_poll_stop(&channel_poll_);
    events_.on_successor_lost(*this, std::move(unpassed));
    return;
  }
  log_at(LogLevel::kError,
         "takeover: the new reactor (pid %d) exited before it was ready (status %lld, signal %d); this one "
         "serves on",
         process_.pid, static_cast<long long>(exit_status), term_signal);
  fail_unless_ready();
}

// The successor writes one frame, kTakeoverReady, and nothing else: a read of it cannot block for long.
void Successor::on_channel_readable() {
  ipc::Message message;
  const std::error_code error = channel_.receive(message);
  if (error == std::errc::resource_unavailable_try_again) return;  // Not all of it yet.
  if (!error && message.type == ipc::MessageType::kTakeoverReady && !ready_) {
    ready_ = true;
    uv_timer_stop(&ready_timer_);
    uv_poll_stop(&channel_poll_);  // It says nothing more; the outbox polls for room when it must wait.
    log_at(LogLevel::kInfo, "takeover: the new reactor (pid %d) is ready; passing the connections to it",
           process_.pid);
    events_.on_successor_ready(*this);
    return;
  }
  uv_poll_stop(&channel_poll_);
  if (ready_) return;
  log_at(LogLevel::kError, "takeover: the new reactor (pid %d) closed the channel before it was ready: %s",
         process_.pid, error ? error.message().c_str() : "an unexpected frame");
  fail_unless_ready();
}

void Successor::fail_unless_ready() {
  if (ready_ || failed_ || closing_) return;
  failed_ = true;
  events_.on_successor_failed(*this);
}

void Successor::stop() {
  if (ready_ || failed_ || exited_) return;
  asked_to_stop_ = true;
  uv_process_kill(&process_, SIGTERM);
}

void Successor::pass(PassedConnection connection) {
  // The first frame holds the Progress and as much of the bytes as fits; kTakeoverBytes frames the rest.
  const ipc::Progress progress{.bytes_written = connection.bytes_sent,
                               .status = 0,
                               .route = 0,
                               .request_age_ms = connection.request_age_ms};
  std::string_view rest(connection.bytes);
  const std::string_view first = rest.substr(0, ipc::kMaxPayloadBytes - sizeof(progress));
  rest.remove_prefix(first.size());
  const uint64_t id = ++passed_;
  ipc::Message message{.type = ipc::MessageType::kTakeoverConnection,
                       .connection_id = id,
                       .flags = connection.flags | (rest.empty() ? 0 : ipc::kFlagMoreBytes)};
  message.payload.assign(reinterpret_cast<const char*>(&progress), sizeof(progress));
  message.payload.append(first);
  message.descriptor = std::move(connection.socket);
  queue(std::move(message));
  while (!rest.empty()) {
    const std::string_view piece = rest.substr(0, ipc::kMaxPayloadBytes);
    rest.remove_prefix(piece.size());
    queue({.type = ipc::MessageType::kTakeoverBytes,
           .connection_id = id,
           .flags = rest.empty() ? 0 : ipc::kFlagMoreBytes,
           .payload = std::string(piece)});
  }
  flush_unless_waiting();
}

// While the outbox waits for room, the poll says when there is some: a write now would only block. Once
// passing failed, the outbox waits for the successor's exit, which gives it back.
void Successor::flush_unless_waiting() {
  if (!send_failed_ && !uv_is_active(as_handle(&channel_poll_))) flush();
}

void Successor::queue(ipc::Message message) {
  outbox_.push_back({.frame = ipc::encode(message), .descriptor = std::move(message.descriptor)});
}

// Writes as much of the outbox as the channel takes now; polls for room when it takes no more.
void Successor::flush() {
  bool progressed = false;
  while (!outbox_.empty() && !send_failed_) {
    Outgoing& next = outbox_.front();
    const ipc::IoResult result =
        ipc::send_with_descriptor(channel_.fd(), std::span<const char>(next.frame).subspan(next.sent),
                                  next.sent == 0 ? next.descriptor.get() : -1);
    if (result.would_block()) break;
    if (result.error) return give_up_passing(result.error.message());
    progressed = true;
    next.sent += result.bytes;
    if (next.sent == next.frame.size()) outbox_.pop_front();  // Its descriptor is the successor's now.
  }
  if (send_failed_) return;
  if (outbox_.empty()) {
    uv_timer_stop(&stall_timer_);
    uv_poll_stop(&channel_poll_);
    if (finishing_) {
      finishing_ = false;
      if (!closing_) events_.on_successor_took_all(*this);
    }
    close_if_done();
    return;
  }
  if (progressed || !uv_is_active(as_handle(&stall_timer_))) {
    uv_timer_start(
        &stall_timer_,
        [](uv_timer_t* timer) {
          auto* self = static_cast<Successor*>(timer->data);
          self->give_up_passing("it took nothing for --shutdown-timeout");
        },
        static_cast<uint64_t>(stall_timeout_.count()), 0);
  }
  uv_poll_start(&channel_poll_, UV_WRITABLE,
                [](uv_poll_t* poll, int, int) { static_cast<Successor*>(poll->data)->flush(); });
}

// A successor that breaks the channel or stalls is not taking over: it is killed, so that this reactor serves
// on (on_successor_lost) with its connections and those still in the outbox. After close(), nobody serves
// them: they close.
void Successor::give_up_passing(const std::string& why) {
  if (send_failed_) return;
  send_failed_ = true;
  uv_timer_stop(&stall_timer_);
  if (polling_) uv_poll_stop(&channel_poll_);
  if (closing_) {
    log_at(LogLevel::kError,
           "takeover: passing connections to the new reactor (pid %d): %s; %zu frames not sent", process_.pid,
           why.c_str(), outbox_.size());
    outbox_.clear();
    close_if_done();
    return;
  }
  log_at(LogLevel::kError, "takeover: passing connections to the new reactor (pid %d): %s; killing it",
         process_.pid, why.c_str());
  if (!exited_) uv_process_kill(&process_, SIGKILL);  // Its exit gives the outbox back.
}

std::vector<PassedConnection> Successor::take_back_unpassed() {
  std::vector<PassedConnection> unpassed;
  size_t lost = 0;
  std::optional<uint64_t> current;  // The connection whose kTakeoverBytes frames are being taken back.
  for (Outgoing& outgoing : outbox_) {
    ipc::Header header;
    std::memcpy(&header, outgoing.frame.data(), sizeof(header));
    std::string payload = outgoing.frame.substr(sizeof(header));
    const auto type = static_cast<ipc::MessageType>(header.type);
    if (type == ipc::MessageType::kTakeoverConnection && outgoing.descriptor) {
      // Written here, by pass(): the payload holds its Progress.
      unpassed.push_back(
          *connection_begun_by(std::move(outgoing.descriptor), header.flags, std::move(payload)));
      current = header.connection_id;
    } else if (type == ipc::MessageType::kTakeoverBytes && current == header.connection_id) {
      unpassed.back().bytes += payload;
    } else if (type == ipc::MessageType::kTakeoverBytes && outgoing.sent == 0) {
      ++lost;  // The rest of a connection whose first frame the successor took: it went with it.
      current.reset();
    }
  }
  if (lost > 0) {
    log_at(LogLevel::kError,
           "takeover: %zu connections were lost with the new reactor in the middle of their bytes", lost);
  }
  outbox_.clear();
  return unpassed;
}

void Successor::finish() {
  finishing_ = true;
  queue({.type = ipc::MessageType::kTakeoverEnd});
  flush_unless_waiting();
}

void Successor::close() {
  closing_ = true;
  // One that never got ready holds no connection: it is killed (or, asked to stop, exits by itself, within
  // the ready timeout), and reaped before the handles close.
  if (spawned_ && !exited_ && !ready_ && !asked_to_stop_) uv_process_kill(&process_, SIGKILL);
  if (send_failed_) outbox_.clear();
  close_if_done();
}

void Successor::close_if_done() {
  if (!closing_ || handles_closing_) return;
  if (spawned_ && !exited_ && !ready_) return;    // Its exit comes.
  if (!outbox_.empty() && !send_failed_) return;  // The outbox empties, or is given up.
  handles_closing_ = true;
  CloseOnLoop::close_then_delete(
      this, {polling_ ? as_handle(&channel_poll_) : nullptr, spawned_ ? as_handle(&process_) : nullptr,
             polling_ ? as_handle(&ready_timer_) : nullptr, polling_ ? as_handle(&stall_timer_) : nullptr});
}

// --- The new reactor's end ---

std::optional<ipc::UniqueFd> Predecessor::channel_from_environment() {
  const char* value = std::getenv(kTakeoverFdVariable);
  if (value == nullptr) return std::nullopt;
  const std::string text(value);
  ::unsetenv(kTakeoverFdVariable);
  int descriptor = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), descriptor);
  // Close-on-exec already, as every descriptor the reactor inherits (main).
  if (error != std::errc() || end != text.data() + text.size() || descriptor < 0 ||
      ::fcntl(descriptor, F_GETFD) < 0) {
    log_at(LogLevel::kError, "takeover: %s=%s is not an open descriptor", kTakeoverFdVariable, text.c_str());
    return ipc::UniqueFd();
  }
  return ipc::UniqueFd(descriptor);
}

std::optional<unsigned> Predecessor::pool_size_from_environment(unsigned max) {
  const char* value = std::getenv(kTakeoverHandlersVariable);
  if (value == nullptr) return std::nullopt;
  const std::string text(value);
  ::unsetenv(kTakeoverHandlersVariable);
  if (std::getenv(kTakeoverFdVariable) == nullptr) return std::nullopt;  // A leftover: not taking over.
  unsigned size = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), size);
  if (error != std::errc() || end != text.data() + text.size() || size < 1 || size > max) {
    log_at(LogLevel::kWarn,
           "takeover: %s=%s is not a pool size from 1 to --max-handlers (%u); --handlers holds",
           kTakeoverHandlersVariable, text.c_str(), max);
    return std::nullopt;
  }
  return size;
}

std::error_code Predecessor::receive_listeners(ipc::BlockingChannel& channel, ListenSockets& sockets) {
  if (auto error = set_timeout(channel.fd(), SO_RCVTIMEO, kListenersTimeoutSeconds)) return error;
  std::error_code error;
  for (bool last = false; !last && !error;) {
    ipc::Message message;
    if ((error = channel.receive(message))) break;
    if (message.type != ipc::MessageType::kTakeoverListener) {
      error = ipc::Errc::kUnknownType;
      break;
    }
    // Non-blocking already: the old reactor's file description, which it made so, is this one's too.
    if ((message.flags & ipc::kFlagAdminPort) != 0) {
      sockets.admin = std::move(message.descriptor);
    } else {
      sockets.serve.push_back(std::move(message.descriptor));
    }
    last = (message.flags & ipc::kFlagLast) != 0;
  }
  if (!error && sockets.serve.empty()) error = ipc::Errc::kMissingDescriptor;
  if (error) {
    log_at(LogLevel::kError, "takeover: receiving the listening sockets from the old reactor: %s",
           error.message().c_str());
  }
  return error;
}

Predecessor::Predecessor(uv_loop_t* loop, ipc::BlockingChannel channel, AdoptCallback adopt)
    : channel_(std::move(channel)), adopt_(std::move(adopt)) {
  channel_poll_.data = this;
  uv_poll_init(loop, &channel_poll_, channel_.fd());
  // Blocking (with a timeout), so that the old reactor, which reads it on its loop, gets the frame whole.
  if (auto error = channel_.send({.type = ipc::MessageType::kTakeoverReady})) {
    log_at(LogLevel::kError, "takeover: telling the old reactor that this one is ready: %s",
           error.message().c_str());
    finished_ = true;
    return;
  }
  const int status = ::fcntl(channel_.fd(), F_GETFL);
  ::fcntl(channel_.fd(), F_SETFL, status | O_NONBLOCK);
  uv_poll_start(&channel_poll_, UV_READABLE, [](uv_poll_t* poll, int, int) {
    static_cast<Predecessor*>(poll->data)->on_channel_readable();
  });
}

// Reads every whole frame there is: receive keeps a frame begun until the rest arrives.
void Predecessor::on_channel_readable() {
  for (;;) {
    ipc::Message message;
    const std::error_code error = channel_.receive(message);
    if (error == std::errc::resource_unavailable_try_again) return;
    if (error == ipc::Errc::kPeerClosed) return end("the old reactor closed the channel");
    if (error) {
      log_at(LogLevel::kError, "takeover: reading from the old reactor: %s", error.message().c_str());
      return end("the channel broke");
    }
    if (message.type == ipc::MessageType::kTakeoverEnd && !arriving_) return end("every connection came");
    if (!take(std::move(message))) return end("the channel broke");
  }
}

bool Predecessor::take(ipc::Message message) {
  if (message.type == ipc::MessageType::kTakeoverConnection && !arriving_) {
    arriving_ = connection_begun_by(std::move(message.descriptor), message.flags, std::move(message.payload));
    if (!arriving_) {
      log_at(LogLevel::kError, "takeover: a connection frame too short for its byte count");
      return false;
    }
    arriving_id_ = message.connection_id;
  } else if (message.type == ipc::MessageType::kTakeoverBytes && arriving_ &&
             message.connection_id == arriving_id_) {
    arriving_->bytes += message.payload;
  } else {
    log_at(LogLevel::kError, "takeover: an unexpected frame (type %d) from the old reactor",
           static_cast<int>(message.type));
    return false;
  }
  if ((message.flags & ipc::kFlagMoreBytes) != 0) return true;
  ++adopted_;
  PassedConnection connection = std::move(*arriving_);
  arriving_.reset();
  adopt_(std::move(connection));
  return true;
}

// The channel closes here: an old reactor that still writes learns at once that nothing more is taken.
void Predecessor::end(const char* how) {
  if (arriving_) {
    // Its bytes stopped in the middle: nobody can read on from there. The client is told by the close.
    log_at(LogLevel::kError, "takeover: a connection's bytes ended in the middle (%s); it closes", how);
    (void)::shutdown(arriving_->socket.get(), SHUT_RDWR);
    arriving_.reset();
  }
  log_at(LogLevel::kInfo, "takeover: done, %zu connections taken over (%s)", adopted_, how);
  uv_poll_stop(&channel_poll_);
  channel_ = ipc::BlockingChannel(ipc::UniqueFd());
  finished_ = true;
}

void Predecessor::close() {
  CloseOnLoop::close_then_delete(this, {as_handle(&channel_poll_)});
}

}  // namespace handoff::reactor
