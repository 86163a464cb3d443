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

#include "ipc/wire.hpp"
#include "reactor/child_command.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// The descriptor at which the successor inherits its channel.
constexpr int kSuccessorChannelFd = 3;

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

}  // namespace

// --- The old reactor's end ---

Successor::Successor(ipc::UniqueFd channel, Events& events) : channel_(std::move(channel)), events_(events) {
  process_.data = channel_poll_.data = ready_timer_.data = this;
}

std::error_code Successor::start(uv_loop_t* loop, const std::vector<std::string>& argv, int serve, int admin,
                                 Milliseconds ready_timeout, Events& events,
                                 LoopOwned<Successor>& successor) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) return failed("socketpair");
  ipc::UniqueFd child_end(ends[1]);
  LoopOwned<Successor> self(new Successor(ipc::UniqueFd(ends[0]), events));
  if (auto error = set_timeout(self->channel_.fd(), SO_SNDTIMEO, kSendTimeoutSeconds)) return error;

  // The sockets wait in the channel's buffer until the successor reads them: the service port's, then the
  // admin port's, if there is one.
  const uint32_t serve_flags = admin < 0 ? ipc::kFlagLast : 0;
  for (const auto& [socket, flags] :
       {std::pair{serve, serve_flags}, std::pair{admin, ipc::kFlagAdminPort | ipc::kFlagLast}}) {
    if (socket < 0) continue;
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
  ChildCommand command(argv, {std::string(kTakeoverFdVariable) + "=" + std::to_string(kSuccessorChannelFd)},
                       {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, child_end.get()});
  static_assert(kSuccessorChannelFd == 3);
  const uv_exit_cb on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* successor = static_cast<Successor*>(process->data);
    uv_timer_stop(&successor->ready_timer_);
    if (successor->ready_) {
      log_at(
          LogLevel::kError,
          "takeover: the new reactor (pid %d) exited (status %lld, signal %d); the connections passed to it "
          "are lost",
          process->pid, static_cast<long long>(exit_status), term_signal);
      successor->send_failed_ = true;
      successor->events_.on_successor_lost(*successor);
      return;
    }
    log_at(LogLevel::kError,
           "takeover: the new reactor (pid %d) exited before it was ready (status %lld, signal %d); this "
           "one serves on",
           process->pid, static_cast<long long>(exit_status), term_signal);
    successor->fail_unless_ready();
  };
  const uv_process_options_t options = command.options(on_exit);
  if (const int error = uv_spawn(loop, &self->process_, &options); error < 0) {
    log_at(LogLevel::kError, "takeover: cannot start '%s': %s", argv[0].c_str(), uv_strerror(error));
    self->spawned_ = true;  // uv_spawn initialises the handle even when it fails: it is closed.
    successor = std::move(self);
    return {-error, std::system_category()};
  }
  self->spawned_ = true;
  uv_timer_init(loop, &self->ready_timer_);
  uv_timer_start(
      &self->ready_timer_,
      [](uv_timer_t* timer) {
        auto* successor = static_cast<Successor*>(timer->data);
        log_at(LogLevel::kError, "takeover: the new reactor (pid %d) was not ready in time; killing it",
               successor->process_.pid);
        uv_process_kill(&successor->process_, SIGKILL);  // Its exit says the rest.
      },
      static_cast<uint64_t>(ready_timeout.count()), 0);
  uv_poll_init(loop, &self->channel_poll_, self->channel_.fd());
  self->polling_ = true;
  uv_poll_start(&self->channel_poll_, UV_READABLE, [](uv_poll_t* poll, int, int) {
    static_cast<Successor*>(poll->data)->on_channel_readable();
  });
  log_at(LogLevel::kInfo, "takeover: started the new reactor, pid %d: %s", self->process_.pid,
         argv[0].c_str());
  successor = std::move(self);
  return {};
}

// The successor writes one frame, kTakeoverReady, and nothing else: a read of it cannot block for long.
void Successor::on_channel_readable() {
  ipc::Message message;
  const std::error_code error = channel_.receive(message);
  if (!error && message.type == ipc::MessageType::kTakeoverReady && !ready_) {
    ready_ = true;
    uv_timer_stop(&ready_timer_);
    log_at(LogLevel::kInfo, "takeover: the new reactor (pid %d) is ready; passing the connections to it",
           process_.pid);
    events_.on_successor_ready(*this);
    return;
  }
  uv_poll_stop(&channel_poll_);
  if (ready_) return;  // It closed the channel after it was ready: what was sent is its; it serves on.
  log_at(LogLevel::kError, "takeover: the new reactor (pid %d) closed the channel before it was ready: %s",
         process_.pid, error ? error.message().c_str() : "an unexpected frame");
  fail_unless_ready();
}

void Successor::fail_unless_ready() {
  if (ready_ || failed_) return;
  failed_ = true;
  events_.on_successor_failed(*this);
}

void Successor::stop() {
  if (!ready_ && !failed_) uv_process_kill(&process_, SIGTERM);
}

std::error_code Successor::send_connection(int socket, uint64_t bytes_sent, std::string bytes,
                                           uint32_t flags) {
  if (send_failed_) return std::make_error_code(std::errc::broken_pipe);
  ipc::Message message{.type = ipc::MessageType::kTakeoverConnection,
                       .flags = flags,
                       .payload = ipc::progress_payload(bytes_sent, 0, bytes)};
  message.descriptor.reset(::fcntl(socket, F_DUPFD_CLOEXEC, 0));
  if (!message.descriptor) return failed("dup of a connection");
  if (auto error = channel_.send(message)) {
    send_failed_ = true;
    log_at(LogLevel::kError,
           "takeover: passing a connection to the new reactor (pid %d): %s; the connections still here close",
           process_.pid, error.message().c_str());
    return error;
  }
  return {};
}

void Successor::finish() {
  if (!send_failed_) (void)channel_.send({.type = ipc::MessageType::kTakeoverEnd});
  if (polling_) uv_poll_stop(&channel_poll_);
}

void Successor::close() {
  CloseOnLoop::close_then_delete(
      this, {polling_ ? as_handle(&channel_poll_) : nullptr, spawned_ ? as_handle(&process_) : nullptr,
             polling_ ? as_handle(&ready_timer_) : nullptr});
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
    const bool admin = (message.flags & ipc::kFlagAdminPort) != 0;
    (admin ? sockets.admin : sockets.serve) = std::move(message.descriptor);
    last = (message.flags & ipc::kFlagLast) != 0;
  }
  if (!error && !sockets.serve) error = ipc::Errc::kMissingDescriptor;
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
    if (message.type == ipc::MessageType::kTakeoverEnd) return end("every connection came");
    if (message.type != ipc::MessageType::kTakeoverConnection) {
      log_at(LogLevel::kError, "takeover: an unexpected frame (type %d) from the old reactor",
             static_cast<int>(message.type));
      return end("the channel broke");
    }
    ipc::Progress sent{};
    if (!ipc::split_progress_payload(message.payload, sent)) {
      log_at(LogLevel::kError, "takeover: a connection frame too short for its byte count");
      return end("the channel broke");
    }
    ++adopted_;
    adopt_(std::move(message.descriptor), sent.bytes_written, std::move(message.payload), message.flags);
  }
}

// The channel closes here: an old reactor that still writes learns at once that nothing more is taken.
void Predecessor::end(const char* how) {
  log_at(LogLevel::kInfo, "takeover: done, %zu connections taken over (%s)", adopted_, how);
  uv_poll_stop(&channel_poll_);
  channel_ = ipc::BlockingChannel(ipc::UniqueFd());
  finished_ = true;
}

void Predecessor::close() {
  CloseOnLoop::close_then_delete(this, {as_handle(&channel_poll_)});
}

}  // namespace handoff::reactor
