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

std::optional<uint64_t> bytes_sent(int tcp_socket) {
  tcp_info info{};
  socklen_t length = sizeof(info);
  int queued = 0;
  if (::getsockopt(tcp_socket, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 ||
      length < offsetof(tcp_info, tcpi_bytes_acked) + sizeof(info.tcpi_bytes_acked) ||
      ::ioctl(tcp_socket, SIOCOUTQ, &queued) != 0) {
    return std::nullopt;
  }
  return info.tcpi_bytes_acked + static_cast<uint64_t>(queued);
}

}  // namespace handoff::reactor
