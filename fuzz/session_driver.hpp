#pragma once

// Internal to fuzz/. Drives one hand-off of a handler session (serve_lines, serve_http) as the handler
// library runs it: over a socketpair whose client end holds the bytes the reactor did not read and then
// shuts down writing, with a Handler of harmless commands (never the built-in spin or fib, which would burn
// CPU on big numbers) and timeouts of 10 ms, so that no input can stall a run.
//
// Input: byte 0 holds the kConnection flags the session gets (bit 0 kFlagHeadTruncated, bit 1
// kFlagInputClosed), whether the limits are small (bit 2), and whether the session starts as after lingering
// (bit 3: 1000 bytes written before in the hand-off, the handler read the bytes itself); byte 1 how much of
// the rest the reactor read
// (0: none, 255: all); the rest is what the client sent.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz/fuzz_support.hpp"
#include "handler/session.hpp"
#include "handoff/handler.hpp"
#include "ipc/wire.hpp"

namespace handoff::fuzz {

constexpr size_t kLongestClientInput = 64 * 1024;  // Within a socketpair's buffer: the write never blocks.

// Commands that do no work to speak of, whatever their arguments, through every part of the API.
inline const Handler& harmless_handler() {
  static const Handler handler = [] {
    Handler h;
    h.command("ping", [](const Request&) { return Reply::text("pong"); });
    h.command("echo", [](const Request& request) {
      std::string text;
      for (const std::string_view argument : request.arguments) text.append(argument).append(" ");
      return Reply::text(text.append(request.body));
    });
    h.command("fail", [](const Request& request) {
      const bool teapot = !request.arguments.empty() && request.arguments[0] == "teapot";
      return Reply::error("failed on purpose", teapot ? 418 : 422);
    });
    h.command("throw", [](const Request&) -> Reply { throw std::runtime_error("thrown on purpose"); });
    h.command("blob", [](const Request& request) { return Reply::bytes(std::string(request.body)); });
    h.command("query", [](const Request& request) {
      return Reply::text(request.query_parameter("q").value_or("-") + " " +
                         std::string(request.header("x-fuzz").value_or("-")) + " " +
                         std::string(request.method));
    });
    return h;
  }();
  return handler;
}

struct SessionRun {
  handler::SessionOutcome outcome;
  std::string received;  // What the reactor read and handed over.
  std::string socket;    // What the client sent that the reactor did not read.
  std::string written;   // What the session wrote to the client.
};

using Serve = handler::SessionOutcome (*)(const Handler&, int, std::string, uint32_t, const handler::Limits&,
                                          const handler::AnsweredCallback&, handler::SessionStart);

// Runs serve over the input and checks what holds for every protocol: the bytes it says it wrote are those
// the client got (unless a write timed out), reports between requests only grow, the bytes it hands back are
// bytes the client sent, and no descriptor is left open. nullopt: the input is not one the driver takes.
inline std::optional<SessionRun> run_session(const uint8_t* data, size_t size, Serve serve,
                                             uint32_t protocol_flags) {
  if (size < 2 || size - 2 > kLongestClientInput) return std::nullopt;
  const int before = open_descriptors();
  const std::string_view client = as_text(data + 2, size - 2);
  SessionRun run;
  run.received = client.substr(0, client.size() * data[1] / 255);
  run.socket = client.substr(run.received.size());
  const uint32_t flags = protocol_flags | (data[0] & 1 ? ipc::kFlagHeadTruncated : 0) |
                         (data[0] & 2 ? ipc::kFlagInputClosed : 0);
  handler::Limits limits{.io_timeout = std::chrono::milliseconds(10),
                         .write_timeout = std::chrono::milliseconds(10)};
  if (data[0] & 4) {
    limits.max_request_bytes = 256;
    limits.max_head_bytes = 512;
  }
  // As after lingering: the handler read the bytes itself, after answers of the same hand-off.
  const handler::SessionStart start =
      data[0] & 8 ? handler::SessionStart{.bytes_written = 1000, .lingered = true} : handler::SessionStart{};
  {
    SocketPair pair = stream_socketpair();
    FUZZ_CHECK(::fcntl(pair.first.get(), F_SETFL, O_NONBLOCK) == 0);  // As a socket shared with the reactor.
    if (!run.socket.empty()) {
      FUZZ_CHECK(::send(pair.second.get(), run.socket.data(), run.socket.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(run.socket.size()));
    }
    FUZZ_CHECK(::shutdown(pair.second.get(), SHUT_WR) == 0);
    uint64_t reported = start.bytes_written;
    run.outcome = serve(
        harmless_handler(), pair.first.get(), run.received, flags, limits,
        [&](uint64_t bytes_written, int status) {
          FUZZ_CHECK(bytes_written >= reported);
          FUZZ_CHECK(status == 0 || (status >= 200 && status <= 599));
          reported = bytes_written;
        },
        start);
    FUZZ_CHECK(run.outcome.bytes_written >= reported);
    run.outcome.bytes_written -=
        start.bytes_written;  // What this session wrote, as the checks below take it.
    FUZZ_CHECK(::fcntl(pair.second.get(), F_SETFL, O_NONBLOCK) == 0);
    char chunk[16 * 1024];
    ssize_t got;
    while ((got = ::read(pair.second.get(), chunk, sizeof(chunk))) > 0) run.written.append(chunk, got);
  }
  if (!run.outcome.write_timed_out) FUZZ_CHECK(run.written.size() == run.outcome.bytes_written);
  if (run.outcome.keep_open) {
    FUZZ_CHECK(!run.outcome.write_timed_out);
    FUZZ_CHECK((run.received + run.socket).find(run.outcome.unconsumed) != std::string::npos);
    if (run.socket.empty()) FUZZ_CHECK(run.received.ends_with(run.outcome.unconsumed));
  } else {
    FUZZ_CHECK(run.outcome.unconsumed.empty());
  }
  FUZZ_CHECK(open_descriptors() == before);
  return run;
}

}  // namespace handoff::fuzz
