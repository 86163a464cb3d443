#include "reactor/listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// Accepts per wake-up are capped so that a flood of connections cannot starve the rest of the loop (Redis's
// MAX_ACCEPTS_PER_CALL).
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kBacklog = 1024;
constexpr uint64_t kResumeAfterDescriptorShortageMs = 100;

std::error_code failed(const char* call, const std::string& address) {
  const int error = errno;
  log_at(LogLevel::kError, "%s %s: %s", call, address.c_str(), std::strerror(error));
  return {error, std::system_category()};
}

}  // namespace

namespace {

// A Unix socket file left by a reactor that did not remove it (killed, or a crash) refuses connections; one
// that a live process listens on accepts them, and is not taken from it. Anything else at the path stays.
std::error_code clear_stale_socket(const std::string& path, const sockaddr_un& address) {
  struct stat status;
  if (::lstat(path.c_str(), &status) != 0) {
    return errno == ENOENT ? std::error_code() : failed("lstat", path);
  }
  if (!S_ISSOCK(status.st_mode)) {
    log_at(LogLevel::kError, "--listen unix:%s: the path exists and is not a socket", path.c_str());
    return std::make_error_code(std::errc::file_exists);
  }
  ipc::UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) return failed("socket for", path);
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0 ||
      errno == EAGAIN) {
    log_at(LogLevel::kError, "--listen unix:%s: another process listens on it", path.c_str());
    return std::make_error_code(std::errc::address_in_use);
  }
  if (errno != ECONNREFUSED) return failed("connect to the existing socket", path);
  log_at(LogLevel::kInfo, "--listen unix:%s: removing the socket file left by a server that is gone",
         path.c_str());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return failed("unlink", path);
  return {};
}

std::error_code open_unix(const ListenAddress& address, ipc::UniqueFd& socket) {
  sockaddr_un storage{};
  storage.sun_family = AF_UNIX;
  std::memcpy(storage.sun_path, address.path.data(), address.path.size());  // Checked: it fits, with a NUL.
  const std::string where = address.to_string();
  ipc::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return failed("socket for", where);
  if (auto error = clear_stale_socket(address.path, storage)) return error;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), sizeof(storage)) != 0)
    return failed("bind", where);
  // Before listen: no client connects under the umask's permissions in between.
  if (::chmod(address.path.c_str(), address.mode) != 0) return failed("chmod", where);
  if (::listen(fd.get(), kBacklog) != 0) return failed("listen", where);
  socket = std::move(fd);
  return {};
}

}  // namespace

std::error_code Listener::open(const ListenAddress& address, bool reuse_port, ipc::UniqueFd& socket) {
  if (address.is_unix()) return open_unix(address, socket);
  sockaddr_storage storage{};
  socklen_t length;
  int family;
  if (address.host.find(':') != std::string::npos) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = family = AF_INET6;
    v6->sin6_port = htons(address.port);
    inet_pton(AF_INET6, address.host.c_str(), &v6->sin6_addr);
    length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    v4->sin_family = family = AF_INET;
    v4->sin_port = htons(address.port);
    inet_pton(AF_INET, address.host.c_str(), &v4->sin_addr);
    length = sizeof(sockaddr_in);
  }

  const std::string where = address.to_string();
  ipc::UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return failed("socket for", where);
  const int on = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
    return failed("setsockopt SO_REUSEADDR", where);
  // Several reactors on one host share the port this way (docs/deploy.md); each gets its share of the new
  // connections, by a hash of their addresses (socket(7)).
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0) {
    return failed("setsockopt SO_REUSEPORT", where);
  }
  if (family == AF_INET6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) {
    return failed("setsockopt IPV6_V6ONLY", where);
  }
  // Answers go out as soon as they are written: without TCP_NODELAY, the second of two pipelined answers
  // waits for the client's delayed ACK of the first (Nagle's algorithm, RFC 896), about 40 ms on Linux. Set
  // on the listening socket, it is inherited by every accepted one (Linux copies the socket's options to the
  // child at accept), which saves a system call per connection.
  if (::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
    return failed("setsockopt TCP_NODELAY", where);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) return failed("bind", where);
  if (::listen(fd.get(), kBacklog) != 0) return failed("listen", where);
  socket = std::move(fd);
  return {};
}

Listener::Listener(uv_loop_t* loop, ipc::UniqueFd socket, DescriptorReserve& reserve, ReserveUse use,
                   AcceptCallback on_accept)
    : socket_(std::move(socket)), reserve_(reserve), reserve_use_(use), on_accept_(std::move(on_accept)) {
  uv_poll_init(loop, &poll_, socket_.get());
  uv_timer_init(loop, &resume_timer_);
  poll_.data = resume_timer_.data = this;
  start_polling();
}

void Listener::start_polling() {
  if (held()) return;
  uv_poll_start(&poll_, UV_READABLE,
                [](uv_poll_t* poll, int, int) { static_cast<Listener*>(poll->data)->accept_pending(); });
}

ListenAddress Listener::local_address() const {
  return socket_address(socket_.get(), false).value_or(ListenAddress{});
}

std::optional<ListenAddress> socket_address(int socket, bool peer) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  const auto call = peer ? ::getpeername : ::getsockname;
  if (call(socket, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return std::nullopt;
  char host[INET6_ADDRSTRLEN] = "";
  if (storage.ss_family == AF_UNIX) {
    const auto* local = reinterpret_cast<const sockaddr_un*>(&storage);
    const size_t length = ::strnlen(local->sun_path, sizeof(local->sun_path));
    // A client of a Unix socket has no name of its own: it is told by the socket it came in on.
    if (length == 0) return peer ? socket_address(socket, false) : std::nullopt;
    return ListenAddress{.path = std::string(local->sun_path, length)};
  }
  if (storage.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    return ListenAddress{.host = host, .port = ntohs(v6->sin6_port)};
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
  inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
  return ListenAddress{.host = host, .port = ntohs(v4->sin_port)};
}

void Listener::accept_pending() {
  reserve_.restore();  // The first descriptor to come free after a shortage goes to the reserve.
  for (int i = 0; i < kMaxAcceptsPerWakeup && !held(); ++i) {
    const int client = ::accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client >= 0) {
      on_accept_(ipc::UniqueFd(client));
      continue;
    }
    switch (errno) {
      case EAGAIN: return;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
      case EPERM: continue;  // The client is gone or was refused by a firewall; the next one may be fine.
      case EMFILE:
      case ENFILE:
        // The admin port accepts into the reserve, so that operators can still look in.
        if (reserve_use_ == ReserveUse::kSpendWhenShort && reserve_.release()) continue;
        [[fallthrough]];
      case ENOBUFS:
      case ENOMEM:
        report_shortage(errno);
        pause_accepting();
        return;
      default: log_at(LogLevel::kError, "accept4: %s", std::strerror(errno)); return;
    }
  }
}

// Logged when it begins and then once every kShortageReportIntervalNs while it lasts, with how often
// accepting paused meanwhile: a shortage that lasts would otherwise log ten lines a second.
void Listener::report_shortage(int error) {
  ++pauses_unreported_;
  const uint64_t now = uv_hrtime();
  if (last_shortage_report_ns_ != 0 && now - last_shortage_report_ns_ < kShortageReportIntervalNs) return;
  log_at(LogLevel::kWarn, "accept4: %s; pausing accepts for %llu ms (%llu pauses since the last report)",
         std::strerror(error), static_cast<unsigned long long>(kResumeAfterDescriptorShortageMs),
         static_cast<unsigned long long>(pauses_unreported_));
  last_shortage_report_ns_ = now;
  pauses_unreported_ = 0;
}

// Level-triggered polling would report the pending connection again at once; waiting a moment lets other
// connections close and give their descriptors back.
void Listener::pause_accepting() {
  uv_poll_stop(&poll_);
  uv_timer_start(
      &resume_timer_, [](uv_timer_t* timer) { static_cast<Listener*>(timer->data)->start_polling(); },
      kResumeAfterDescriptorShortageMs, 0);
}

void Listener::hold(Hold reason) {
  holds_ |= static_cast<unsigned>(reason);
  uv_poll_stop(&poll_);
}

void Listener::release(Hold reason) {
  holds_ &= ~static_cast<unsigned>(reason);
  if (held()) return;
  if (!uv_is_active(as_handle(&resume_timer_))) start_polling();  // Else it restarts when the pause ends.
}

void Listener::close() {
  CloseOnLoop::close_then_delete(this, {as_handle(&poll_), as_handle(&resume_timer_)});
}

}  // namespace handoff::reactor
