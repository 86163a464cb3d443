// healthz_probe: what tools/bench measures the admin port's latency with. It probes GET /healthz the way a
// health checker does (HAProxy, a kubelet, a monitoring agent): a new connection per probe, one probe every
// INTERVAL, the time from connect(2) to the end of the answer. It prints the p50, p99 and largest latency.
//
//   healthz_probe HOST PORT [--count N] [--interval-us US] [--realtime]
//
// --realtime runs the probe as SCHED_FIFO (sched(7); it needs CAP_SYS_NICE). On a machine whose cores the
// handlers keep busy, a probe at normal priority waits for a time slice itself after each answer arrives:
// that wait is the probe's, not the server's, and a checker on another machine does not have it. With it the
// figure is the reactor's own latency. tools/bench prints both.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "healthz_probe: %s\n", what.c_str());
  std::exit(1);
}

struct Options {
  std::string host;
  uint16_t port = 0;
  size_t count = 1000;
  std::chrono::microseconds interval{5000};
  bool realtime = false;
};

Options parse(int argc, char** argv) {
  if (argc < 3) fail("usage: healthz_probe HOST PORT [--count N] [--interval-us US] [--realtime]");
  Options options{.host = argv[1], .port = static_cast<uint16_t>(std::atoi(argv[2]))};
  for (int i = 3; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--realtime") {
      options.realtime = true;
    } else if (flag == "--count" && i + 1 < argc) {
      options.count = std::strtoul(argv[++i], nullptr, 10);
    } else if (flag == "--interval-us" && i + 1 < argc) {
      options.interval = std::chrono::microseconds(std::strtoul(argv[++i], nullptr, 10));
    } else {
      fail("unknown argument: " + std::string(flag));
    }
  }
  if (options.port == 0 || options.count == 0) fail("PORT and --count must be positive");
  return options;
}

// One probe: connects, asks for /healthz, reads the answer to its end (the admin port closes after it).
// Returns the time it took; fails unless the answer is a 200.
std::chrono::nanoseconds probe(const sockaddr_in& address, const std::string& request) {
  const auto start = std::chrono::steady_clock::now();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    fail(std::string("connect: ") + std::strerror(errno));
  }
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    fail(std::string("send: ") + std::strerror(errno));
  }
  std::string answer;
  char chunk[4096];
  ssize_t got;
  while ((got = ::read(fd, chunk, sizeof(chunk))) > 0) answer.append(chunk, got);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  if (got < 0) fail(std::string("read: ") + std::strerror(errno));
  if (!answer.starts_with("HTTP/1.1 200")) fail("not a 200: " + answer.substr(0, answer.find('\r')));
  return took;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  if (options.realtime) {
    const sched_param parameters{.sched_priority = 1};
    if (::sched_setscheduler(0, SCHED_FIFO, &parameters) != 0) {
      fail(std::string("--realtime: sched_setscheduler(SCHED_FIFO): ") + std::strerror(errno));
    }
  }
  sockaddr_in address{.sin_family = AF_INET, .sin_port = htons(options.port)};
  if (::inet_pton(AF_INET, options.host.c_str(), &address.sin_addr) != 1)
    fail("not an IPv4 address: " + options.host);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: " + options.host + "\r\n\r\n";

  std::vector<std::chrono::nanoseconds> latencies;
  latencies.reserve(options.count);
  for (size_t i = 0; i < options.count; ++i) {
    std::this_thread::sleep_for(options.interval);
    latencies.push_back(probe(address, request));
  }
  std::sort(latencies.begin(), latencies.end());
  const auto at = [&](double quantile) {
    const size_t index = std::min(latencies.size() - 1, static_cast<size_t>(quantile * latencies.size()));
    return std::chrono::duration<double, std::milli>(latencies[index]).count();
  };
  std::printf("p50 %.3f ms, p99 %.3f ms, max %.3f ms, %zu probes\n", at(0.5), at(0.99),
              std::chrono::duration<double, std::milli>(latencies.back()).count(), latencies.size());
  return 0;
}
