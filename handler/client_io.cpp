#include "handler/client_io.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace handoff::handler {
namespace {

// Waits for events on fd; false on timeout or a failed poll.
bool wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd entry{.fd = fd, .events = events, .revents = 0};
  for (;;) {
    const int ready = ::poll(&entry, 1, static_cast<int>(timeout.count()));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

std::error_code write_all(int client_fd, std::string_view bytes, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!bytes.empty()) {
    const ssize_t sent = ::send(client_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent >= 0) {
      // The client takes the answer: the clock starts over.
      if (sent > 0) deadline = std::chrono::steady_clock::now() + timeout;
      bytes.remove_prefix(sent);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return {errno, std::system_category()};
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait_for(client_fd, POLLOUT, left))
      return std::make_error_code(std::errc::timed_out);
  }
  return {};
}

}  // namespace handoff::handler
