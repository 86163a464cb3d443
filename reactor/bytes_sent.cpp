#include "reactor/bytes_sent.hpp"

// <linux/tcp.h> has the tcp_info of the running kernel's ABI; glibc's <netinet/tcp.h> (which uv.h pulls in)
// stops short of tcpi_bytes_acked, and the two cannot share a file.
#include <linux/in.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>

namespace handoff::reactor {
namespace {

// An acknowledgement arriving between every pair of reads would be a connection that is still being written
// to, which no caller asks about; a few tries suffice.
constexpr int kMaxTries = 8;

// tcpi_bytes_acked: tcp_get_info reads it with the socket locked (net/ipv4/tcp.c).
std::optional<uint64_t> bytes_acked(int tcp_socket) {
  tcp_info info{};
  socklen_t length = sizeof(info);
  if (::getsockopt(tcp_socket, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 ||
      length < offsetof(tcp_info, tcpi_bytes_acked) + sizeof(info.tcpi_bytes_acked)) {
    return std::nullopt;
  }
  return info.tcpi_bytes_acked;
}

}  // namespace

// The two numbers come from two system calls, and an acknowledgement processed between them moves its bytes
// from the send queue to the acknowledged count: read on either side of it, the sum misses them. On loopback
// that happens in about one read in 500 right after a write, and a dead handler's connection judged by such a
// count, below what its handlers reported, would get a bare EOF (or an error line after a whole answer).
// The kernel advances bytes_acked and snd_una together under the socket's lock (tcp_snd_una_update,
// net/ipv4/tcp_input.c), and SIOCOUTQ reads write_seq - snd_una (tcp_ioctl): a queue read between two equal
// acknowledged counts, each read under that lock, belongs with them.
std::optional<uint64_t> bytes_sent(int tcp_socket) {
  std::optional<uint64_t> acked = bytes_acked(tcp_socket);
  for (int tries = 0; acked && tries < kMaxTries; ++tries) {
    int queued = 0;
    if (::ioctl(tcp_socket, SIOCOUTQ, &queued) != 0) return std::nullopt;
    const std::optional<uint64_t> acked_after = bytes_acked(tcp_socket);
    if (acked_after == acked) return *acked + static_cast<uint64_t>(queued);
    acked = acked_after;
  }
  return std::nullopt;
}

}  // namespace handoff::reactor
