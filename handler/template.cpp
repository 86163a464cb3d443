#include "handler/template.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "ipc/answer_record.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"

namespace handoff::handler {
namespace {

struct Child {
  uint64_t id;
  pid_t pid;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "template[%d]: %s\n", getpid(), what.c_str());
  std::exit(1);
}

void send(ipc::BlockingChannel& channel, ipc::Message message, bool ending) {
  // Once the reactor ended the channel, it may have stopped reading: a report it does not take is no failure.
  if (auto error = channel.send(message); error && !ending)
    fail("sending to the reactor: " + error.message());
}

// In the forked handler: channel and record take the places a started handler finds them at. Either may be
// numbered 3 or 5 already (the template's own channel left 3): both move above those first. output, when the
// reactor sent one (kForkOutput), becomes its stdout and stderr first; it may be numbered 3 or 5 too, and is
// closed before those are taken.
void take_places(ipc::UniqueFd channel, ipc::UniqueFd record, ipc::UniqueFd output) {
  if (output && (::dup2(output.get(), STDOUT_FILENO) < 0 || ::dup2(output.get(), STDERR_FILENO) < 0))
    fail(std::string("moving the handler's output pipe into place: ") + std::strerror(errno));
  output.reset();
  const ipc::UniqueFd high_channel(::fcntl(channel.get(), F_DUPFD, ipc::kHandlerRecordFd + 1));
  const ipc::UniqueFd high_record(::fcntl(record.get(), F_DUPFD, ipc::kHandlerRecordFd + 1));
  channel.reset();
  record.reset();
  if (!high_channel || !high_record || ::dup2(high_channel.get(), ipc::kHandlerChannelFd) < 0 ||
      ::dup2(high_record.get(), ipc::kHandlerRecordFd) < 0)
    fail(std::string("moving the handler's descriptors into place: ") + std::strerror(errno));
  ::unsetenv(ipc::kTemplateVariable);
}

}  // namespace

void serve_as_template(int channel_fd) {
  // The channel moves off descriptor 3, which the forked handler's own channel takes.
  const int moved = ::fcntl(channel_fd, F_DUPFD_CLOEXEC, ipc::kHandlerRecordFd + 1);
  if (moved < 0) fail(std::string("fcntl(F_DUPFD_CLOEXEC): ") + std::strerror(errno));
  ::close(channel_fd);
  ipc::BlockingChannel channel{ipc::UniqueFd(moved)};
  send(channel, {.type = ipc::MessageType::kHello, .flags = ipc::kIsTemplate}, false);

  std::map<int, Child> children;                 // By pidfd (owned: closed as each is reaped).
  std::map<uint64_t, ipc::UniqueFd> channel_of;  // From kForkChannel until its kForkRecord.
  std::map<uint64_t, ipc::UniqueFd> output_of;   // From kForkOutput, if one comes, until its kForkRecord.
  bool ending = false;
  while (!ending || !children.empty()) {
    std::vector<pollfd> watched;
    if (!ending) watched.push_back({.fd = channel.fd(), .events = POLLIN, .revents = 0});
    for (const auto& [pidfd, child] : children)
      watched.push_back({.fd = pidfd, .events = POLLIN, .revents = 0});
    if (::poll(watched.data(), watched.size(), -1) < 0) {
      if (errno == EINTR) continue;
      fail(std::string("poll: ") + std::strerror(errno));
    }
    for (const pollfd& ready : watched) {
      if (ready.revents == 0) continue;
      if (ready.fd != channel.fd()) {  // A handler exited: reaped, then reported.
        const Child child = children.at(ready.fd);
        children.erase(ready.fd);
        ::close(ready.fd);
        int status = 0;
        while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
        }
        const ipc::Exit exit{.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 0,
                             .term_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0};
        send(channel,
             {.type = ipc::MessageType::kHandlerExited,
              .connection_id = child.id,
              .payload = std::string(reinterpret_cast<const char*>(&exit), sizeof(exit))},
             ending);
        continue;
      }
      ipc::Message ask;
      if (auto error = channel.receive(ask)) {
        if (error != ipc::Errc::kPeerClosed) fail("receiving from the reactor: " + error.message());
        ending = true;  // The reactor ended the channel: fork nothing more.
        continue;
      }
      if (ask.type == ipc::MessageType::kForkChannel) {
        channel_of[ask.connection_id] = std::move(ask.descriptor);
        continue;
      }
      if (ask.type == ipc::MessageType::kForkOutput && channel_of.contains(ask.connection_id)) {
        output_of[ask.connection_id] = std::move(ask.descriptor);
        continue;
      }
      if (ask.type != ipc::MessageType::kForkRecord || !channel_of.contains(ask.connection_id))
        fail("unexpected frame type " + std::to_string(static_cast<unsigned>(ask.type)) +
             " from the reactor");
      ipc::UniqueFd handler_channel = std::move(channel_of.at(ask.connection_id));
      channel_of.erase(ask.connection_id);
      ipc::UniqueFd output;  // Closed in the template as the fork is reported.
      if (const auto sent = output_of.find(ask.connection_id); sent != output_of.end()) {
        output = std::move(sent->second);
        output_of.erase(sent);
      }
      // What the template's own streams hold is written before the fork, or both processes would write it.
      std::fflush(nullptr);
      const pid_t pid = ::fork();
      if (pid == 0) {
        // The template's descriptors close as this returns: the channel, the pidfds, the channels of others.
        for (const auto& [pidfd, child] : children) ::close(pidfd);
        take_places(std::move(handler_channel), std::move(ask.descriptor), std::move(output));
        return;
      }
      ipc::Forked forked{.pid = pid > 0 ? static_cast<uint32_t>(pid) : 0};
      std::string payload(reinterpret_cast<const char*>(&forked), sizeof(forked));
      if (pid < 0) payload += std::string("fork: ") + std::strerror(errno);
      // Reaped only once the reactor heard of it, so that the pid it is told is still this handler's.
      if (pid > 0) {
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (pidfd < 0) fail(std::string("pidfd_open: ") + std::strerror(errno));
        children[pidfd] = {ask.connection_id, pid};
      }
      send(channel,
           {.type = ipc::MessageType::kHandlerForked,
            .connection_id = ask.connection_id,
            .payload = std::move(payload)},
           ending);
    }
  }
  std::exit(0);
}

}  // namespace handoff::handler
