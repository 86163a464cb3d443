#include "reactor/handler_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <span>
#include <utility>

#include "ipc/socket_io.hpp"
#include "reactor/child_command.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
static_assert(kMaxSendAhead == ipc::kOfferSlots - 1, "a slot for each request ahead, and one");
namespace {

constexpr size_t kChannelReadBytes = 64 * 1024;
constexpr int kMaxChannelReadsPerWakeup = 16;

std::error_code errno_code(int value) {
  return {value, std::system_category()};
}

}  // namespace

HandlerProcess::HandlerProcess(uv_loop_t* loop, HandlerId id, const Config& config, Events& events)
    : loop_(loop), id_(id), config_(config), events_(events) {
  process_.data = channel_poll_.data = request_timer_.data = exit_timer_.data = this;
  uv_timer_init(loop_, &request_timer_);
  uv_timer_init(loop_, &exit_timer_);
}

std::error_code HandlerProcess::spawn(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& environment, int state_page) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    const int error = errno;
    log_at(LogLevel::kError, "socketpair for a handler channel: %s", std::strerror(error));
    return errno_code(error);
  }
  channel_.reset(ends[0]);
  const ipc::UniqueFd child_end(ends[1]);
  if (auto error = ipc::AnswerRecord::create(answer_record_)) {
    log_at(LogLevel::kError, "creating a handler's answer record (memfd_create, mmap): %s",
           error.message().c_str());
    return error;
  }

  // The child gets: no stdin, stdout and stderr both on the reactor's stderr (stdout is the reactor's own,
  // for its "listening on" line), the channel at kHandlerChannelFd, the shared state page at kHandlerStateFd
  // and its answer record at kHandlerRecordFd.
  static_assert(ipc::kHandlerChannelFd == 3 && ipc::kHandlerStateFd == 4 && ipc::kHandlerRecordFd == 5);
  ChildCommand command(
      argv, environment,
      {-1, STDERR_FILENO, STDERR_FILENO, child_end.get(), state_page, answer_record_.descriptor()});
  const uv_exit_cb on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    auto* self = static_cast<HandlerProcess*>(process->data);
    self->exited_ = true;
    // The exit may be noticed before the last frames the handler sent: a handler that reported its answer
    // and then died has answered, and that report must count before the connection is judged orphaned.
    self->read_rest_of_channel();
    self->events_.on_handler_exited(*self, exit_status, term_signal);
  };
  const uv_process_options_t options = command.options(on_exit);

  // uv_spawn initialises the handle even when it fails, so it is closed either way.
  started_at_ = uv_now(loop_);
  if (const int error = uv_spawn(loop_, &process_, &options); error < 0) {
    exited_ = true;
    log_at(LogLevel::kError, "cannot start handler '%s': %s", argv[0].c_str(), uv_strerror(error));
    channel_.reset();
    return errno_code(-error);
  }

  lower_priority();
  if (const int error = uv_poll_init(loop_, &channel_poll_, channel_.get()); error < 0) {
    log_at(LogLevel::kError, "uv_poll_init on a handler channel: %s", uv_strerror(error));
    return errno_code(-error);
  }
  channel_polled_ = true;
  update_polling();
  start_start_timer();
  return {};
}

// --handler-sched batch: the scheduler always takes handlers for the CPU-bound processes they are and
// disfavours them mildly at wake-ups (sched(7), SCHED_BATCH), so that a reactor that wakes gets the CPU
// sooner, at no cost to their share of it.
// --handler-nice, relative to the reactor's own niceness, lowers that share too. A failure costs only the
// preference, so it is logged and the handler runs on.
void HandlerProcess::lower_priority() {
  if (config_.handler_batch) {
    const sched_param parameters{.sched_priority = 0};
    if (::sched_setscheduler(process_.pid, SCHED_BATCH, &parameters) != 0) {
      log_at(LogLevel::kWarn, "sched_setscheduler(SCHED_BATCH) for handler %d: %s", process_.pid,
             std::strerror(errno));
    }
  }
  if (config_.handler_nice == 0) return;
  errno = 0;
  const int own = ::getpriority(PRIO_PROCESS, 0);
  if (own == -1 && errno != 0) return;
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(process_.pid),
                    std::min(own + config_.handler_nice, 19)) != 0) {
    log_at(LogLevel::kWarn, "setpriority for handler %d (--handler-nice %d): %s", process_.pid,
           config_.handler_nice, std::strerror(errno));
  }
}

// Each change of the polled events costs an epoll_ctl, so the events are changed only when they must be: on
// the hot path (a frame out, a frame in) they stay UV_READABLE.
void HandlerProcess::update_polling() {
  if (!channel_polled_) return;
  const int events = (broken_ || channel_ended_) ? 0 : UV_READABLE | (outbox_.empty() ? 0 : UV_WRITABLE);
  if (events == polled_events_) return;
  polled_events_ = events;
  if (events == 0) {
    uv_poll_stop(&channel_poll_);
    return;
  }
  uv_poll_start(&channel_poll_, events, [](uv_poll_t* poll, int status, int events) {
    static_cast<HandlerProcess*>(poll->data)->on_channel_event(status, events);
  });
}

void HandlerProcess::send_connection(ConnectionId connection, int client_socket, std::string bytes,
                                     uint32_t flags) {
  // The hand-off begins in the reactor's books even when the handler's channel has broken (a send found it
  // gone, while its last reports are still read, and one made it free): the Server answers the connection
  // at its exit by what the socket sent in this hand-off, and the bytes reported of the connection before
  // it, still in answered_bytes_, would make a socket that sent nothing of this one look like a cut answer,
  // closed with no word to the client (issue 28, item 8).
  answer_record_.begin(connection);
  begin_hand_off(connection);
  begun_offer_.reset();
  if (broken_) return;  // Its exit is on the way; the Server answers the connection then.
  flags |= keep_flags(connection, client_socket);
  queue_frame({.type = ipc::MessageType::kConnection,
               .connection_id = connection,
               .flags = flags,
               .payload = std::move(bytes)},
              client_socket);
}

void HandlerProcess::send_ahead(ConnectionId connection, int client_socket, std::string bytes,
                                uint32_t flags) {
  // The one it goes on with may not be taken yet, though the reactor has seen its handler report the
  // connection before it: a slot is reused only once its offer is taken or withdrawn, and there is one more
  // slot than connections it holds ahead.
  last_offer_number_ = (last_offer_number_ + 1) & 0xffff;
  const Offer offer{.connection = connection,
                    .slot = answer_record_.free_offer_slot(ahead_capacity() + 1),
                    .number = last_offer_number_};
  answer_record_.offer(offer.slot, ipc::offer_word(connection, offer.number));
  offers_.push_back(offer);
  if (broken_) return;  // Its exit is on the way; the connection is withdrawn then, and waits again.
  flags |= keep_flags(connection, client_socket);
  queue_frame({.type = ipc::MessageType::kConnection,
               .connection_id = connection,
               .flags = flags | ipc::kFlagAhead | ipc::ahead_slot_flags(offer.slot) |
                        (offer.number << ipc::kAheadOfferShift),
               .payload = std::move(bytes)},
              client_socket);
}

bool HandlerProcess::withdraw_ahead(ConnectionId connection) {
  send_batch();  // The caller may close the connection once it is withdrawn: its descriptor is borrowed.
  const auto offer = std::find_if(offers_.begin(), offers_.end(),
                                  [connection](const Offer& each) { return each.connection == connection; });
  if (offer == offers_.end() ||
      !answer_record_.withdraw(offer->slot, ipc::offer_word(connection, offer->number))) {
    return false;
  }
  offers_.erase(offer);
  return true;
}

unsigned HandlerProcess::ahead_capacity() const {
  if (!takes_ahead_) return 0;
  return takes_ahead_deep_ ? ipc::kOfferSlots - 1 : 1;
}

uint32_t HandlerProcess::keep_flags(ConnectionId connection, int& client_socket) {
  if (!keeps_connections_) return 0;
  if (kept_.contains(connection)) {
    client_socket = -1;
    return ipc::kFlagKept | ipc::kFlagKeep;
  }
  // A frame with a descriptor replaces any copy the handler still holds: a forget for it would close the
  // new one.
  std::erase(forgets_, connection);
  return kept_.size() < kMaxKeptConnections ? ipc::kFlagKeep : 0u;
}

void HandlerProcess::forget(ConnectionId connection) {
  if (kept_.erase(connection) == 0) return;
  if (broken_ || exited_ || channel_ended_) return;  // Its copies close as it exits.
  forgets_.push_back(connection);
  if (!busy_) send_forgets();
}

void HandlerProcess::send_forgets() {
  if (forgets_.empty() || broken_) return;
  const ConnectionId first = forgets_.back();
  forgets_.pop_back();
  queue_frame({.type = ipc::MessageType::kForget, .connection_id = first}, -1);  // The rest go with it.
}

void HandlerProcess::begin_ahead(ConnectionId connection) {
  begin_hand_off(connection);
  // The oldest offer not withdrawn: the handler reads its frames in the order they were sent.
  begun_offer_.reset();
  if (!offers_.empty() && offers_.front().connection == connection) {
    begun_offer_ = offers_.front();
    offers_.pop_front();
  }
}

void HandlerProcess::begin_hand_off(ConnectionId connection) {
  answered_bytes_ = 0;
  busy_ = true;
  current_ = connection;
  reclaimed_ = false;
  request_started_ns_ = uv_hrtime();
  start_request_timer();
}

bool HandlerProcess::reclaim(ConnectionId connection) {
  if (broken_ || reclaimed_ || !busy_) return false;
  reclaimed_ = true;
  queue_frame({.type = ipc::MessageType::kReclaim, .connection_id = connection}, -1);
  return true;
}

void HandlerProcess::queue_frame(const ipc::Message& message, int descriptor) {
  if (broken_) return;  // Its exit is on the way.
  std::string bytes = ipc::encode(message);
  // Kept copies to close go along, after the frame: its descriptor travels with the write's first byte.
  for (const ConnectionId forgotten : forgets_) {
    bytes += ipc::encode({.type = ipc::MessageType::kForget, .connection_id = forgotten});
  }
  forgets_.clear();
  const std::span<const int> descriptors =
      descriptor >= 0 ? std::span<const int>(&descriptor, 1) : std::span<const int>();
  if (batching()) {
    if (batch_descriptors_.size() + descriptors.size() > ipc::kMaxDescriptorsPerWrite) send_batch();
    if (batching() && !broken_) {
      batch_ += bytes;
      batch_descriptors_.insert(batch_descriptors_.end(), descriptors.begin(), descriptors.end());
      return;
    }
  }
  size_t sent = 0;
  if (outbox_.empty()) {
    sent = send_now(bytes, descriptors);
    if (broken_ || sent == bytes.size()) return;
  }
  keep_unsent(std::string_view(bytes).substr(sent), descriptors, sent > 0);
}

void HandlerProcess::send_batch() {
  if (batch_.empty()) return;
  if (!broken_) {
    const size_t sent = send_now(batch_, batch_descriptors_);
    if (!broken_ && sent < batch_.size()) {
      keep_unsent(std::string_view(batch_).substr(sent), batch_descriptors_, sent > 0);
    }
  }
  batch_.clear();
  batch_descriptors_.clear();
}

void HandlerProcess::keep_unsent(std::string_view rest, std::span<const int> descriptors, bool any_sent) {
  Outgoing write{.bytes = std::string(rest), .descriptors = {}};
  // The write waits for room in the channel, and a connection may be closed meanwhile (one sent ahead can be
  // taken back and its client leave): it keeps copies of the descriptors of its own, never numbers that may
  // come to name other sockets. Those that went with its first byte need none.
  for (const int descriptor : any_sent ? std::span<const int>() : descriptors) {
    ipc::UniqueFd copy(::fcntl(descriptor, F_DUPFD_CLOEXEC, 0));
    if (!copy) {
      break_off(std::string("cannot keep a copy of a client socket for it: ") + std::strerror(errno));
      return;
    }
    write.descriptors.push_back(std::move(copy));
  }
  outbox_.push_back(std::move(write));
  update_polling();
}

size_t HandlerProcess::send_now(std::string_view bytes, std::span<const int> descriptors) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ipc::IoResult result = ipc::send_with_descriptors(channel_.get(), bytes.substr(sent),
                                                            sent == 0 ? descriptors : std::span<const int>());
    if (result.would_block()) break;
    if (result.error) {
      // EPIPE: the handler is gone (its exit tells why); anything else is the reactor's or the kernel's.
      gone_with_reports_ = result.error == std::errc::broken_pipe;
      break_off(gone_with_reports_ ? "" : "sendmsg to it failed: " + result.error.message());
      break;
    }
    sent += result.bytes;
  }
  return sent;
}

void HandlerProcess::flush_outbox() {
  while (!outbox_.empty() && !broken_) {
    Outgoing& write = outbox_.front();
    std::vector<int> descriptors;
    for (const ipc::UniqueFd& descriptor : write.descriptors) descriptors.push_back(descriptor.get());
    const size_t sent = send_now(write.bytes, descriptors);
    if (sent > 0) write.descriptors.clear();
    if (sent < write.bytes.size()) {
      write.bytes.erase(0, sent);
      break;  // The channel is full: the rest goes when it is writable.
    }
    outbox_.pop_front();
  }
  update_polling();
}

void HandlerProcess::on_channel_event(int status, int events) {
  if (status < 0) {
    // libuv reports POLLERR as UV_EBADF (src/unix/poll.c); on a Unix socket that is the peer gone with
    // frames of ours unread. What it sent before it went is still to be read.
    read_rest_of_channel();
    break_off("");
    return;
  }
  if (events & UV_WRITABLE) flush_outbox();
  if (!broken_ && (events & UV_READABLE)) read_channel(kMaxChannelReadsPerWakeup);
}

void HandlerProcess::read_channel(int max_reads) {
  const bool was_corked = std::exchange(corked_, true);
  read_frames(max_reads);
  corked_ = was_corked;
  if (!corked_) send_batch();
}

void HandlerProcess::read_frames(int max_reads) {
  char buffer[kChannelReadBytes];
  for (int i = 0; i < max_reads && (!broken_ || gone_with_reports_); ++i) {
    std::vector<ipc::UniqueFd> descriptors;  // Handlers never send any; whatever arrives is closed here.
    const ipc::IoResult received = ipc::receive_with_descriptors(channel_.get(), buffer, descriptors);
    if (received.would_block()) return;
    if (received.error) {
      // ECONNRESET: the handler died with frames of ours unread; its exit tells why.
      break_off(received.error == std::errc::connection_reset
                    ? ""
                    : "recvmsg from it failed: " + received.error.message());
      return;
    }
    if (!descriptors.empty()) {
      break_off("it sent a descriptor, which handlers never do");
      return;
    }
    if (received.bytes == 0) {
      break_off("");  // It closed its channel: it is exiting, and its exit status tells why.
      return;
    }
    decoder_.append(std::span(buffer, received.bytes));
    const bool drained = received.bytes < sizeof(buffer);  // Level-triggered polling reports any rest.

    std::error_code error;
    while (std::optional<ipc::Message> message = decoder_.next(error)) {
      on_message(std::move(*message));
      if (broken_ && !gone_with_reports_) return;
    }
    if (error) {
      break_off("it sent a bad frame: " + error.message());
      return;
    }
    if (drained) return;
  }
}

void HandlerProcess::read_rest_of_channel() {
  if (channel_ && (!broken_ || gone_with_reports_) && !channel_ended_) {
    read_channel(std::numeric_limits<int>::max());
  }
}

void HandlerProcess::on_message(ipc::Message message) {
  ipc::Progress progress{};
  if (message.type == ipc::MessageType::kHello && !said_hello_) {
    said_hello_ = true;
    takes_ahead_ = (message.flags & ipc::kFlagTakesAhead) != 0;
    takes_ahead_deep_ = (message.flags & ipc::kFlagTakesAheadDeep) != 0;
    keeps_connections_ = (message.flags & ipc::kFlagKeepsConnections) != 0;
    takes_batches_ = (message.flags & ipc::kFlagTakesBatches) != 0;
    uv_timer_stop(&request_timer_);  // The start timer.
    events_.on_handler_ready(*this);
  } else if ((message.type == ipc::MessageType::kAnswered || message.type == ipc::MessageType::kDone) &&
             said_hello_ && ipc::split_progress_payload(message.payload, progress)) {
    answered_bytes_ = progress.bytes_written;
    if (progress.status != 0) {
      ++requests_served_;
      const uint64_t now = uv_hrtime();
      answer_interval_ns_ = now - last_answer_ns_;
      last_answer_ns_ = now;
      events_.on_request_answered(*this, progress.status, (now - request_started_ns_) / 1e6,
                                  message.type == ipc::MessageType::kAnswered);
      request_started_ns_ = now;
    }
    if (message.type == ipc::MessageType::kAnswered) {
      start_request_timer();  // The next request of this hand-off gets its own --request-timeout.
    } else {
      uv_timer_stop(&request_timer_);
      busy_ = false;
      // Before the report is acted on: the connection's next request may go to this handler at once.
      if ((message.flags & ipc::kFlagKept) != 0 && keeps_connections_) {
        kept_.insert(message.connection_id);
      } else {
        kept_.erase(message.connection_id);
      }
      events_.on_handler_done(*this, std::move(message));
      if (!busy_) send_forgets();
    }
  } else {
    break_off("it sent an unexpected frame (type " + std::to_string(static_cast<unsigned>(message.type)) +
              ", " + std::to_string(message.payload.size()) + " bytes)");
  }
}

void HandlerProcess::start_request_timer() {
  uv_timer_start(
      &request_timer_,
      [](uv_timer_t* timer) { static_cast<HandlerProcess*>(timer->data)->on_request_timeout(); },
      static_cast<uint64_t>(config_.request_timeout.count()), 0);
}

void HandlerProcess::on_request_timeout() {
  if (broken_ || exited_) return;
  timed_out_ = true;
  kill_for("it exceeded --request-timeout (" + std::to_string(config_.request_timeout.count()) + " ms)");
}

// Before its hello the request timer is the start timer: a handler that hangs at start-up is not waited for.
void HandlerProcess::start_start_timer() {
  uv_timer_start(
      &request_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<HandlerProcess*>(timer->data);
        if (self->said_hello_ || self->exited_) return;
        self->kill_for("it did not say hello within --handler-start-timeout (" +
                       std::to_string(self->config_.handler_start_timeout.count()) + " ms)");
      },
      static_cast<uint64_t>(config_.handler_start_timeout.count()), 0);
}

void HandlerProcess::break_off(std::string why) {
  if (broken_) return;
  broken_ = true;
  update_polling();
  if (why.empty()) {
    uv_timer_start(
        &exit_timer_,
        [](uv_timer_t* timer) {
          auto* self = static_cast<HandlerProcess*>(timer->data);
          if (!self->exited_) {
            self->kill_for("it had not exited " + std::to_string(kExitGraceMs) +
                           " ms after its channel closed");
          }
        },
        kExitGraceMs, 0);
  } else {
    kill_for("it broke the ipc protocol: " + why);
  }
  events_.on_handler_broken(*this);
}

void HandlerProcess::cancel() {
  cancelled_ = true;
  kill_for("its client left before the answer: the request is cancelled");
}

void HandlerProcess::kill_for(std::string reason) {
  if (kill_reason_.empty()) kill_reason_ = std::move(reason);
  kill(SIGKILL);
}

void HandlerProcess::end_channel() {
  if (channel_ended_ || !channel_) return;
  send_batch();
  channel_ended_ = true;
  update_polling();
  ::shutdown(channel_.get(), SHUT_RDWR);
}

void HandlerProcess::kill(int signal) {
  if (!exited_) uv_process_kill(&process_, signal);
}

void HandlerProcess::close() {
  CloseOnLoop::close_then_delete(this, {channel_polled_ ? as_handle(&channel_poll_) : nullptr,
                                        process_.loop != nullptr ? as_handle(&process_) : nullptr,
                                        as_handle(&request_timer_), as_handle(&exit_timer_)});
}

}  // namespace handoff::reactor
