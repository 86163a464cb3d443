// prefork_baseline: the yardstick tools/bench holds handoff against. A plain epoll prefork HTTP server for
// GET /fib/N, built the way the fastest CPU-bound servers are: one listening socket shared by N worker
// processes, each accepting (EPOLLEXCLUSIVE, so one wakes per connection) and keeping its own keep-alive
// connections, computing in place — no hand-off, no second process per request. It has none of handoff's
// promises (an idle connection pins its worker, a slow request delays every connection of its worker, a
// crash loses them all); it measures what dispatch alone costs handoff.
//
//   prefork_baseline [--listen HOST:PORT] [--workers N]   (default 127.0.0.1:0 and one per core)
//
// Prints "listening on HOST:PORT" once every worker runs; SIGTERM or SIGINT stops it and its workers.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

// The same naive recursion as handoff's built-in fib command (handler/builtin_commands.cpp).
uint64_t fibonacci(unsigned n) {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "prefork_baseline: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// The answer to one request head: 200 with fib(N) for GET /fib/N (N up to 92), else 404.
std::string answer(std::string_view head, bool& close) {
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  close = head.find("\r\nConnection: close") != std::string_view::npos ||
          head.find("\r\nconnection: close") != std::string_view::npos || line.ends_with("HTTP/1.0");
  std::string body = "not found\n";
  int status = 404;
  constexpr std::string_view kPrefix = "GET /fib/";
  if (line.starts_with(kPrefix)) {
    const std::string_view rest = line.substr(kPrefix.size());
    unsigned n = 0;
    const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (error == std::errc() && end < rest.data() + rest.size() && *end == ' ' && n <= 92) {
      body = std::to_string(fibonacci(n)) + "\n";
      status = 200;
    }
  }
  return std::string("HTTP/1.1 ") + (status == 200 ? "200 OK" : "404 Not Found") +
         "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
}

// Reads what the client sent, answers every complete head in it; false when the connection is to close.
bool serve(int fd, std::string& pending) {
  char chunk[16384];
  for (;;) {
    const ssize_t got = ::read(fd, chunk, sizeof(chunk));
    if (got > 0) {
      pending.append(chunk, got);
      continue;
    }
    if (got == 0) return false;
    if (errno == EAGAIN) break;
    if (errno != EINTR) return false;
  }
  std::string out;
  bool close = false;
  for (size_t end; !close && (end = pending.find("\r\n\r\n")) != std::string::npos;) {
    out += answer(std::string_view(pending).substr(0, end + 4), close);
    pending.erase(0, end + 4);
  }
  // Answers are small: a socket that cannot take one whole is a client that does not read, and is dropped.
  if (!out.empty() && ::send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    return false;
  }
  return !close && pending.size() < 65536;
}

[[noreturn]] void run_worker(int listener) {
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) fail("epoll_create1");
  epoll_event event{.events = EPOLLIN | EPOLLEXCLUSIVE, .data = {.fd = listener}};
  if (::epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event) != 0) fail("epoll_ctl(listener)");
  std::unordered_map<int, std::string> connections;
  epoll_event ready[256];
  for (;;) {
    const int count = ::epoll_wait(epoll, ready, 256, -1);
    for (int i = 0; i < count; ++i) {
      const int fd = ready[i].data.fd;
      if (fd == listener) {
        for (;;) {
          const int client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          const int on = 1;
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
          epoll_event client_event{.events = EPOLLIN | EPOLLRDHUP, .data = {.fd = client}};
          ::epoll_ctl(epoll, EPOLL_CTL_ADD, client, &client_event);
          connections[client];
        }
      } else if (!serve(fd, connections[fd])) {
        connections.erase(fd);
        ::close(fd);  // Also leaves the epoll set.
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view option(argv[i]), value(argv[i + 1]);
    if (option == "--listen" && value.find(':') != std::string_view::npos) {
      host = std::string(value.substr(0, value.rfind(':')));
      port = static_cast<uint16_t>(std::atoi(std::string(value.substr(value.rfind(':') + 1)).c_str()));
    } else if (option == "--workers") {
      workers = static_cast<unsigned>(std::max(1, std::atoi(argv[i + 1])));
    } else {
      std::fprintf(stderr, "usage: prefork_baseline [--listen HOST:PORT] [--workers N]\n");
      return 2;
    }
  }

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) fail("socket");
  const int on = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {}, .sin_zero = {}};
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    std::fprintf(stderr, "prefork_baseline: '%s' is not an IPv4 address\n", host.c_str());
    return 2;
  }
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) fail("bind");
  if (::listen(listener, 4096) != 0) fail("listen");
  socklen_t length = sizeof(address);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);

  std::vector<pid_t> children;
  for (unsigned i = 0; i < workers; ++i) {
    const pid_t child = ::fork();
    if (child < 0) fail("fork");
    if (child == 0) run_worker(listener);
    children.push_back(child);
  }
  std::printf("listening on %s:%u\n", host.c_str(), ntohs(address.sin_port));
  std::fflush(stdout);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  for (const pid_t child : children) ::kill(child, SIGKILL);
  for (const pid_t child : children) ::waitpid(child, nullptr, 0);
  return 0;
}
