// Fuzz target: the descriptor-receive path of the ipc channel, both ends. The input's bytes are written
// into a socketpair, with descriptors of /dev/null attached (SCM_RIGHTS) where its first bytes say, then the
// writing end shuts down. They are read back twice, as each side reads its channel:
// - the handler's: BlockingChannel::receive, frame after frame, until it reports an error or the end;
// - the reactor's: receive_with_descriptors into a buffer, then FrameDecoder, closing any descriptor.
// Checked: a frame carries a descriptor exactly when its type does, received descriptors are close-on-exec,
// the bytes received are the bytes sent, and afterwards no descriptor is left open (/proc/self/fd).
//
// Input: byte 0 says how many descriptors go with each of the two attachment points (bits 0-1 the first,
// bits 2-3 the second: 0, 1, 2 or 17, which is more than a receive has room for: MSG_CTRUNC), bytes 1 and 2
// where those points are in the stream (as a fraction of its length), the rest is the stream.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/frame_decoder.hpp"
#include "ipc/socket_io.hpp"
#include "ipc/wire.hpp"

namespace handoff::fuzz {
namespace {

constexpr size_t kLongestStream = 64 * 1024;  // Well within a socketpair's buffer: the writes never block.
constexpr size_t kDescriptorCounts[] = {0, 1, 2, 17};

// Sends all of bytes, with count copies of descriptor attached to the first byte.
void send_with_copies(int socket, std::string_view bytes, int descriptor, size_t count) {
  if (bytes.empty()) return;
  iovec iov{.iov_base = const_cast<char*>(bytes.data()), .iov_len = bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 17)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    for (size_t i = 0; i < count; ++i)
      std::memcpy(CMSG_DATA(cmsg) + i * sizeof(int), &descriptor, sizeof(int));
  }
  const ssize_t sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  FUZZ_CHECK(sent > 0);
  send_with_copies(socket, bytes.substr(sent), descriptor, 0);
}

// The writing end of a channel that carries stream, shut down for writing after it.
ipc::UniqueFd written_channel(std::string_view stream, const uint8_t* layout, int descriptor) {
  SocketPair pair = stream_socketpair();
  size_t first = stream.size() * layout[1] / 256;
  size_t second = stream.size() * layout[2] / 256;
  if (second < first) std::swap(first, second);
  const size_t first_count = kDescriptorCounts[layout[0] & 3];
  const size_t second_count = kDescriptorCounts[(layout[0] >> 2) & 3];
  send_with_copies(pair.first.get(), stream.substr(0, first), descriptor, 0);
  send_with_copies(pair.first.get(), stream.substr(first, second - first), descriptor, first_count);
  send_with_copies(pair.first.get(), stream.substr(second), descriptor, second_count);
  FUZZ_CHECK(::shutdown(pair.first.get(), SHUT_WR) == 0);
  return std::move(pair.second);
}

bool close_on_exec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  return flags >= 0 && (flags & FD_CLOEXEC) != 0;
}

// The handler's side: frames until the first error (a handler exits then).
void receive_as_handler(ipc::UniqueFd socket) {
  ipc::BlockingChannel channel(std::move(socket));
  for (;;) {
    ipc::Message message;
    if (channel.receive(message)) return;
    FUZZ_CHECK(!ipc::check_header({.magic = ipc::kMagic,
                                   .version = ipc::kVersion,
                                   .type = static_cast<uint16_t>(message.type),
                                   .payload_size = static_cast<uint32_t>(message.payload.size())}));
    FUZZ_CHECK(message.descriptor.valid() == ipc::carries_descriptor(message.type, message.flags));
    if (message.descriptor.valid()) FUZZ_CHECK(close_on_exec(message.descriptor.get()));
  }
}

// The reactor's side (reactor/handler_process.cpp): everything that arrives, decoded; descriptors closed.
void receive_as_reactor(ipc::UniqueFd socket, std::string_view stream) {
  FUZZ_CHECK(::fcntl(socket.get(), F_SETFL, O_NONBLOCK) == 0);
  ipc::FrameDecoder decoder;
  std::string received;
  bool broken = false;
  for (;;) {
    char buffer[4096];
    std::vector<ipc::UniqueFd> descriptors;
    const ipc::IoResult result = ipc::receive_with_descriptors(socket.get(), buffer, descriptors);
    for (const ipc::UniqueFd& descriptor : descriptors) FUZZ_CHECK(close_on_exec(descriptor.get()));
    FUZZ_CHECK(!result.would_block());  // All is written and the writer has shut down.
    FUZZ_CHECK(result.bytes <= sizeof(buffer));
    received.append(buffer, result.bytes);
    if (result.error) {
      FUZZ_CHECK(result.error == ipc::Errc::kControlDataTruncated);
      broken = true;
      continue;  // The reactor would stop here; read on to see the rest arrive intact.
    }
    if (result.bytes == 0) break;
    if (broken) continue;
    decoder.append(std::span(buffer, result.bytes));
    std::error_code error;
    while (std::optional<ipc::Message> message = decoder.next(error)) {
      FUZZ_CHECK(!message->descriptor.valid() && !ipc::carries_descriptor(message->type, message->flags));
    }
    broken = static_cast<bool>(error);
  }
  FUZZ_CHECK(received == stream);
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  if (size < 3 || size - 3 > kLongestStream) return 0;
  const std::string_view stream = as_text(data + 3, size - 3);
  const int before = open_descriptors();
  {
    const handoff::ipc::UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    FUZZ_CHECK(null.valid());
    receive_as_handler(written_channel(stream, data, null.get()));
    receive_as_reactor(written_channel(stream, data, null.get()), stream);
  }
  FUZZ_CHECK(open_descriptors() == before);
  return 0;
}
