#include "ipc/socket_io.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "ipc/wire.hpp"

namespace handoff::ipc {
namespace {

// Room for more descriptors than a write may carry, so that unexpected ones are received (and closed by their
// owner) instead of being reported as truncation.
constexpr size_t kMaxDescriptorsPerReceive = 2 * kMaxDescriptorsPerWrite;

std::error_code errno_code(int value) {
  return {value, std::system_category()};
}

}  // namespace

IoResult send_with_descriptor(int socket, std::span<const char> bytes, int descriptor_to_pass) {
  if (descriptor_to_pass < 0) return send_with_descriptors(socket, bytes, {});
  return send_with_descriptors(socket, bytes, std::span(&descriptor_to_pass, 1));
}

IoResult send_with_descriptors(int socket, std::span<const char> bytes, std::span<const int> descriptors) {
  iovec iov{.iov_base = const_cast<char*>(bytes.data()), .iov_len = bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptorsPerWrite)];
  if (descriptors.size() > kMaxDescriptorsPerWrite)
    return {.error = std::make_error_code(std::errc::invalid_argument)};
  if (!descriptors.empty()) {
    const size_t space = CMSG_SPACE(sizeof(int) * descriptors.size());
    std::memset(control, 0, space);
    msg.msg_control = control;
    msg.msg_controllen = space;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * descriptors.size());
    std::memcpy(CMSG_DATA(cmsg), descriptors.data(), sizeof(int) * descriptors.size());
  }

  for (;;) {
    const ssize_t sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (sent >= 0) return {.bytes = static_cast<size_t>(sent), .error = {}};
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK)
      return {.error = std::make_error_code(std::errc::resource_unavailable_try_again)};
    return {.error = errno_code(errno)};
  }
}

IoResult receive_with_descriptors(int socket, std::span<char> buffer, std::vector<UniqueFd>& received,
                                  int flags) {
  iovec iov{.iov_base = buffer.data(), .iov_len = buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxDescriptorsPerReceive)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);

  ssize_t got;
  do {
    got = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | flags);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EWOULDBLOCK)
      return {.error = std::make_error_code(std::errc::resource_unavailable_try_again)};
    return {.error = errno_code(errno)};
  }

  // Take ownership of every descriptor first, so that no error path below can leak one.
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    if (cmsg->cmsg_len < CMSG_LEN(0)) continue;
    const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      received.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return {.bytes = static_cast<size_t>(got), .error = Errc::kControlDataTruncated};
  }
  return {.bytes = static_cast<size_t>(got), .error = {}};
}

}  // namespace handoff::ipc
