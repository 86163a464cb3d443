// handler: a worker process of handoff. The reactor starts it with its channel at descriptor 3 (announced in
// HANDOFF_IPC_FD), hands it one client connection at a time, and it answers on that connection itself.
// The loop is: receive a connection, serve its requests, report done.

#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "handler/http_session.hpp"
#include "handler/line_session.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/wire.hpp"

namespace {

using handoff::handler::Limits;
using handoff::handler::SessionOutcome;
namespace ipc = handoff::ipc;

constexpr const char* kUsage =
    "usage: handler\n"
    "A handoff handler process. The reactor starts it; it is not meant to be run by hand.\n"
    "It reads its settings from the environment the reactor gives it:\n"
    "  HANDOFF_IPC_FD             descriptor of its channel to the reactor (always 3)\n"
    "  HANDOFF_MAX_REQUEST_BYTES  longest request line or HTTP body it accepts (default 2097152)\n"
    "  HANDOFF_MAX_HEAD_BYTES     longest HTTP request head it accepts (default 65536)\n"
    "  HANDOFF_READ_TIMEOUT_MS    how long it waits on a stalled client (default 10000)\n";

std::optional<long long> environment_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return std::nullopt;
  long long value = -1;
  const std::string_view view(text);
  const auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (error != std::errc() || end != view.data() + view.size() || value < 0) return -1;
  return value;
}

// Reads a setting that must be a non-negative number; exits with a clear message when it is malformed.
long long setting(const char* name, long long fallback) {
  const std::optional<long long> value = environment_number(name);
  if (!value) return fallback;
  if (*value < 0) {
    std::fprintf(stderr, "handler: %s must be a non-negative whole number, not '%s'\n", name, std::getenv(name));
    std::exit(2);
  }
  return *value;
}

void log_channel_error(const char* what, std::error_code error) {
  std::fprintf(stderr, "handler[%d]: %s: %s\n", getpid(), what, error.message().c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
    std::fputs(kUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  const long long channel_fd = setting(ipc::kChannelFdVariable, -1);
  if (channel_fd < 0) {
    std::fprintf(stderr, "handler: %s is not set; a handler is started by the reactor\n", ipc::kChannelFdVariable);
    return 2;
  }
  const Limits limits{
      .max_request_bytes = static_cast<size_t>(setting("HANDOFF_MAX_REQUEST_BYTES", 2 << 20)),
      .max_head_bytes = static_cast<size_t>(setting("HANDOFF_MAX_HEAD_BYTES", 64 << 10)),
      .io_timeout = std::chrono::milliseconds(setting("HANDOFF_READ_TIMEOUT_MS", 10000)),
  };
  // A client that vanishes must not kill the handler; writes report EPIPE instead.
  signal(SIGPIPE, SIG_IGN);

  ipc::BlockingChannel channel{ipc::UniqueFd(static_cast<int>(channel_fd))};
  if (auto error = channel.send({.type = ipc::MessageType::kHello})) {
    log_channel_error("sending hello to the reactor", error);
    return 1;
  }

  for (;;) {
    ipc::Message request;
    if (auto error = channel.receive(request)) {
      if (error == ipc::Errc::kPeerClosed) return 0;  // The reactor is done with this handler.
      log_channel_error("receiving from the reactor", error);
      return 1;
    }
    if (request.type != ipc::MessageType::kConnection) {
      std::fprintf(stderr, "handler[%d]: unexpected frame type %u from the reactor\n", getpid(),
                   static_cast<unsigned>(request.type));
      return 1;
    }
    const auto report_answered = [&](uint64_t bytes_written) {
      const ipc::Message answered{.type = ipc::MessageType::kAnswered,
                                  .connection_id = request.connection_id,
                                  .payload = ipc::progress_payload(bytes_written)};
      if (auto error = channel.send(answered)) {
        log_channel_error("reporting an answer to the reactor", error);
        std::exit(1);
      }
    };
    const auto serve = (request.flags & ipc::kFlagHttp) ? handoff::handler::serve_http : handoff::handler::serve_lines;
    SessionOutcome outcome =
        serve(request.descriptor.get(), std::move(request.payload), request.flags, limits, report_answered);
    // Close this process's copy of the client socket before reporting: the reactor decides what happens next.
    request.descriptor.reset();

    const ipc::Message done{
        .type = ipc::MessageType::kDone,
        .connection_id = request.connection_id,
        .flags = outcome.keep_open ? ipc::kFlagKeepOpen : 0u,
        .payload = ipc::progress_payload(outcome.bytes_written, outcome.unconsumed),
    };
    if (auto error = channel.send(done)) {
      log_channel_error("reporting done to the reactor", error);
      return 1;
    }
  }
}
