#include "handler/linger.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <ctime>

namespace handoff::handler {
namespace {

constexpr size_t kReadBytes = 64 * 1024;

}  // namespace

bool begin_lingering(const ipc::SharedState& state, ipc::AnswerRecord& record) {
  if (!state.valid() || !record.valid() || state.waiting() > 0 || state.idle() == 0 || state.draining()) {
    return false;
  }
  // The reactor publishes a waiting request, then looks for lingering handlers to reclaim; the handler says
  // it lingers, then looks for waiting requests. With a full fence between the store and the load on both
  // sides, at least one of them sees the other (Dekker's pattern): a request never waits for a linger to time
  // out.
  record.set_lingering(true);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (state.waiting() == 0) return true;
  record.set_lingering(false);
  return false;
}

Lingered linger(int client_fd, int channel_fd, std::chrono::microseconds time, ipc::AnswerRecord& record) {
  // The reactor's frame first: when both are ready, the request that waits for a handler came first, and the
  // client's goes back to the reactor, behind it.
  pollfd watched[2] = {{.fd = channel_fd, .events = POLLIN, .revents = 0},
                       {.fd = client_fd, .events = POLLIN | POLLRDHUP, .revents = 0}};
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(time);
  const timespec timeout{.tv_sec = static_cast<time_t>(seconds.count()),
                         .tv_nsec = static_cast<long>(std::chrono::nanoseconds(time - seconds).count())};
  // A signal ends the wait early, which only hands the connection back sooner.
  const int ready = ::ppoll(watched, 2, &timeout, nullptr);
  if (ready <= 0 || watched[0].revents != 0 || watched[1].revents == 0) {
    record.set_lingering(false);
    return {.outcome = Lingered::Outcome::kHandBack};
  }
  // The word goes before the first byte is read: a handler that dies after it read a request must not look
  // as if it had none. A client that only closed sent no request, so the word stays then, until the
  // hand-off ends: the reactor, seeing the same end, must not take this handler for one computing an answer
  // nobody will read. Only when the client's end came is a peek needed to tell the two apart.
  const bool client_ended = (watched[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
  char byte;
  if (!client_ended || ::recv(client_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) record.set_lingering(false);
  std::string received(kReadBytes, '\0');
  ssize_t got;
  do {
    got = ::recv(client_fd, received.data(), received.size(), MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {.outcome = Lingered::Outcome::kHandBack};
  if (got <= 0) return {.outcome = Lingered::Outcome::kClientGone};
  received.resize(static_cast<size_t>(got));
  return {.outcome = Lingered::Outcome::kClientSent, .received = std::move(received)};
}

}  // namespace handoff::handler
