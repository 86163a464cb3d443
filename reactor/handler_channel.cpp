#include "reactor/handler_channel.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

constexpr size_t kChannelReadBytes = 64 * 1024;
constexpr int kMaxChannelReadsPerWakeup = 16;

}  // namespace

// --- WriteBatches ---

WriteBatches::WriteBatches(uv_loop_t* loop) {
  uv_check_init(loop, &after_io_);
  uv_prepare_init(loop, &before_sleep_);
  after_io_.data = before_sleep_.data = this;
}

void WriteBatches::add(HandlerChannel& channel) {
  if (waiting_.empty()) {
    uv_check_start(&after_io_,
                   [](uv_check_t* check) { static_cast<WriteBatches*>(check->data)->send_all(); });
    uv_prepare_start(&before_sleep_,
                     [](uv_prepare_t* prepare) { static_cast<WriteBatches*>(prepare->data)->send_all(); });
  }
  waiting_.push_back(&channel);
}

void WriteBatches::remove(HandlerChannel& channel) {
  std::erase(waiting_, &channel);
  std::replace(sending_.begin(), sending_.end(), &channel, static_cast<HandlerChannel*>(nullptr));
  if (waiting_.empty()) {
    uv_check_stop(&after_io_);
    uv_prepare_stop(&before_sleep_);
  }
}

void WriteBatches::send_all() {
  // The list is taken first (a send that breaks a channel calls out, and a frame sent meanwhile lists its
  // channel again, for the next flush); sending_ keeps its capacity, so a turn allocates nothing. A channel
  // whose batch went meanwhile (withdrawn, stopped) has none left to send.
  sending_.swap(waiting_);
  uv_check_stop(&after_io_);
  uv_prepare_stop(&before_sleep_);
  for (HandlerChannel* channel : sending_) {
    if (channel != nullptr) channel->send_batch_now();
  }
  sending_.clear();
}

void WriteBatches::close() {
  assert(waiting_.empty() && "a channel outlived the pool");
  uv_close(reinterpret_cast<uv_handle_t*>(&after_io_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&before_sleep_), nullptr);
}

// --- HandlerChannel ---

HandlerChannel::HandlerChannel(uv_loop_t* loop, WriteBatches& batches, Events& events)
    : loop_(loop), batches_(batches), events_(events) {}

HandlerChannel::~HandlerChannel() {
  if (listed_) batches_.remove(*this);
}

std::error_code HandlerChannel::start(ipc::UniqueFd socket) {
  socket_ = std::move(socket);
  if (const int error = uv_poll_init(loop_, &poll_, socket_.get()); error < 0) {
    log_at(LogLevel::kError, "uv_poll_init on a handler channel: %s", uv_strerror(error));
    return {-error, std::system_category()};
  }
  poll_.data = this;
  polled_ = true;
  update_polling();
  return {};
}

void HandlerChannel::update_polling() {
  if (!polled_) return;
  const bool reads = state_ == State::kOpen;
  const int events = reads ? UV_READABLE | (outbox_.empty() ? 0 : UV_WRITABLE) : 0;
  if (events == polled_events_) return;
  polled_events_ = events;
  if (events == 0) {
    uv_poll_stop(&poll_);
    return;
  }
  uv_poll_start(&poll_, events, [](uv_poll_t* poll, int status, int events) {
    static_cast<HandlerChannel*>(poll->data)->on_poll_event(status, events);
  });
}

// --- Sending ---

void HandlerChannel::send(const ipc::Message& message, int descriptor) {
  if (!sends()) return;
  const std::string bytes = ipc::encode(message);
  const std::span<const int> descriptors =
      descriptor >= 0 ? std::span<const int>(&descriptor, 1) : std::span<const int>();
  if (batching()) {
    if (batch_descriptors_.size() + descriptors.size() > ipc::kMaxDescriptorsPerWrite) send_batch_now();
    if (batching()) {
      batch_ += bytes;
      batch_descriptors_.insert(batch_descriptors_.end(), descriptors.begin(), descriptors.end());
      if (!listed_) {
        listed_ = true;
        batches_.add(*this);
      }
      return;
    }
  }
  size_t sent = 0;
  if (outbox_.empty()) {
    sent = send_now(bytes, descriptors);
    if (!sends() || sent == bytes.size()) return;
  }
  keep_unsent(std::string_view(bytes).substr(sent), descriptors, sent > 0);
}

void HandlerChannel::send_batch_now() {
  if (batch_.empty()) return;
  // The batch is taken first: a send that breaks the channel calls out, and the owner may end it.
  const std::string batch = std::exchange(batch_, {});
  const std::vector<int> descriptors = std::exchange(batch_descriptors_, {});
  forget_batch();
  if (!sends()) return;
  const size_t sent = send_now(batch, descriptors);
  if (sends() && sent < batch.size())
    keep_unsent(std::string_view(batch).substr(sent), descriptors, sent > 0);
}

void HandlerChannel::forget_batch() {
  batch_.clear();
  batch_descriptors_.clear();
  if (listed_) {
    listed_ = false;
    batches_.remove(*this);
  }
}

void HandlerChannel::keep_unsent(std::string_view rest, std::span<const int> descriptors, bool any_sent) {
  Outgoing write{.bytes = std::string(rest), .descriptors = {}};
  // The write waits for room in the socket, and a connection may be closed meanwhile (one sent ahead can be
  // taken back and its client leave): it keeps copies of the descriptors of its own, never numbers that may
  // come to name other sockets. Those that went with its first byte need none.
  for (const int descriptor : any_sent ? std::span<const int>() : descriptors) {
    ipc::UniqueFd copy(::fcntl(descriptor, F_DUPFD_CLOEXEC, 0));
    if (!copy) {
      break_with(State::kBroken,
                 std::string("cannot keep a copy of a client socket for it: ") + std::strerror(errno));
      return;
    }
    write.descriptors.push_back(std::move(copy));
  }
  outbox_.push_back(std::move(write));
  update_polling();
}

size_t HandlerChannel::send_now(std::string_view bytes, std::span<const int> descriptors) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ipc::IoResult result = ipc::send_with_descriptors(socket_.get(), bytes.substr(sent),
                                                            sent == 0 ? descriptors : std::span<const int>());
    if (result.would_block()) break;
    if (result.error) {
      // EPIPE: the handler is gone (its exit tells why), and what it wrote before is still to be read;
      // anything else is the reactor's or the kernel's.
      if (result.error == std::errc::broken_pipe) {
        break_with(State::kGone, "");
      } else {
        break_with(State::kBroken, "sendmsg to it failed: " + result.error.message());
      }
      break;
    }
    sent += result.bytes;
  }
  return sent;
}

void HandlerChannel::flush_outbox() {
  while (!outbox_.empty() && sends()) {
    Outgoing& write = outbox_.front();
    std::vector<int> descriptors;
    for (const ipc::UniqueFd& descriptor : write.descriptors) descriptors.push_back(descriptor.get());
    const size_t sent = send_now(write.bytes, descriptors);
    if (sent > 0) write.descriptors.clear();
    if (sent < write.bytes.size()) {
      write.bytes.erase(0, sent);
      break;  // The socket is full: the rest goes when it is writable.
    }
    outbox_.pop_front();
  }
  update_polling();
}

// --- Receiving ---

void HandlerChannel::on_poll_event(int status, int events) {
  if (status < 0) {
    // libuv reports POLLERR as UV_EBADF (src/unix/poll.c); on a Unix socket that is the peer gone with
    // frames of ours unread. What it sent before it went is still to be read.
    read_rest();
    break_with(State::kBroken, "");
    return;
  }
  if (events & UV_WRITABLE) flush_outbox();
  if (state_ == State::kOpen && (events & UV_READABLE)) read_frames(kMaxChannelReadsPerWakeup);
}

void HandlerChannel::read_rest() {
  if (state_ == State::kOpen || state_ == State::kGone) read_frames(std::numeric_limits<int>::max());
}

void HandlerChannel::read_frames(int max_reads) {
  char buffer[kChannelReadBytes];
  for (int i = 0; i < max_reads && state_ != State::kBroken; ++i) {
    std::vector<ipc::UniqueFd> descriptors;  // Handlers never send any; whatever arrives is closed here.
    const ipc::IoResult received = ipc::receive_with_descriptors(socket_.get(), buffer, descriptors);
    if (received.would_block()) return;
    if (received.error) {
      // ECONNRESET: the handler died with frames of ours unread; its exit tells why.
      break_with(State::kBroken, received.error == std::errc::connection_reset
                                     ? ""
                                     : "recvmsg from it failed: " + received.error.message());
      return;
    }
    if (!descriptors.empty()) {
      break_with(State::kBroken, "it sent a descriptor, which handlers never do");
      return;
    }
    if (received.bytes == 0) {
      break_with(State::kBroken, "");  // It closed its channel: it is exiting, and its exit says why.
      return;
    }
    decoder_.append(std::span(buffer, received.bytes));
    const bool drained = received.bytes < sizeof(buffer);  // Level-triggered polling reports any rest.

    std::error_code error;
    while (std::optional<ipc::Message> message = decoder_.next(error)) {
      events_.on_frame(std::move(*message));
      if (state_ == State::kBroken) return;
    }
    if (error) {
      break_with(State::kBroken, "it sent a bad frame: " + error.message());
      return;
    }
    if (drained) return;
  }
}

// --- The end ---

void HandlerChannel::break_with(State state, std::string why) {
  assert(state == State::kGone || state == State::kBroken);
  if (state_ == State::kBroken || state_ == State::kGone) {
    state_ = std::max(state_, state);
    return;  // Said once.
  }
  state_ = state;
  stop_sending();
  events_.on_channel_broken(std::move(why));
}

void HandlerChannel::stop() {
  state_ = State::kBroken;
  stop_sending();
}

void HandlerChannel::stop_sending() {
  forget_batch();
  outbox_.clear();
  update_polling();
}

void HandlerChannel::end() {
  if (state_ != State::kOpen || !socket_) return;
  send_batch_now();
  if (state_ != State::kOpen) return;
  state_ = State::kEnded;
  update_polling();
  ::shutdown(socket_.get(), SHUT_RDWR);
}

void HandlerChannel::end_sending() {
  if (!sends() || !socket_) return;
  send_batch_now();
  if (!sends()) return;
  sending_ended_ = true;
  ::shutdown(socket_.get(), SHUT_WR);
}

}  // namespace handoff::reactor
