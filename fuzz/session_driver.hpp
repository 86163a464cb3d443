#pragma once

// Internal to fuzz/. Drives one hand-off of a handler session (serve_lines, serve_http) as the handler
// library runs it: the reactor's framing reads the client's first request and writes its request record
// (reactor/connection.cpp does the same), the session gets the record and the bytes the reactor read past it,
// and the client's end of a socketpair holds the bytes the reactor did not read, then shuts down writing. The
// Handler has harmless commands and routes only (never the built-in spin or fib, which would burn CPU on big
// numbers), and the write timeout is 10 ms, so that no input can stall a run.
//
// Input: byte 0 holds
//   bit 0  others wait for a handler (the reactor's shared page says so): a session serves one request and
//          hands the rest back;
//   bit 1  kFlagInputClosed, the client sent EOF after what the reactor read, which is then all it sent
//          (byte 1 is not read); not with bit 3, as a lingering handler passes no flags;
//   bit 2  small limits (256-byte requests, 512-byte heads), the reactor's and the session's;
//   bit 3  the session starts as after lingering: no record (first == nullptr), 1000 bytes written before in
//          the hand-off, and the bytes are those the handler read itself;
//   bit 4  the reactor drains (HTTP answers say Connection: close);
// byte 1 how much of the rest the reactor read (0: none, 255: all); the rest is what the client sent. Without
// lingering, the reactor read the first request whole and that much of what follows it; when the client's
// bytes hold no complete, acceptable first request (the reactor would wait for more, or refuse it), the
// session runs as after lingering, without a record, over that much of all the client sent.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "handler/session.hpp"
#include "handoff/handler.hpp"
#include "http/request_parser.hpp"
#include "ipc/request_record.hpp"
#include "ipc/shared_state.hpp"
#include "ipc/wire.hpp"
#include "reactor/protocol.hpp"
#include "reactor/request_framing.hpp"

namespace handoff::fuzz {

constexpr size_t kLongestClientInput = 64 * 1024;  // Within a socketpair's buffer: the write never blocks.

// Commands and routes that do no work to speak of, whatever their arguments, through every part of the API.
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
    // The client's words as a status (any number: one outside 200-599 is the library's to refuse; 204 and
    // 304 go without a body) and as a header field (a name or value the library must refuse: CR, LF, NUL,
    // not a token, a field the server owns).
    h.command("status", [](const Request& request) {
      const std::string_view digits = request.arguments.empty() ? "200" : request.arguments[0];
      int status = 0;
      for (const char c : digits.substr(0, 4)) status = status * 10 + (c >= '0' && c <= '9' ? c - '0' : 0);
      return Reply::text("status", status);
    });
    h.command("header", [](const Request& request) {
      Reply reply = Reply::text("header");
      if (request.arguments.size() >= 2)
        reply.header(std::string(request.arguments[0]), std::string(request.arguments[1]));
      return reply;
    });
    h.route("PUT", "/items/{id}", [](const Request& request) {
      return Reply::text(std::string(request.path_parameter("id").value_or("-")) + " " +
                         std::string(request.body));
    });
    h.route("GET", "/files/{name}/meta", [](const Request& request) {
      return Reply::redirect("/files/" + std::string(request.path_parameter("name").value_or("-")));
    });
    return h;
  }();
  return handler;
}

// The reactor's shared page as the input's byte 0 asks for it (null: none, as when the handler serves the
// whole pipeline). The pages are made once, on the first call, and stay open for the process's life.
inline const ipc::SharedState* reactor_state(bool others_waiting, bool draining) {
  struct Pages {
    ipc::SharedState waiting, draining, both;
  };
  static const Pages* const pages = [] {
    auto* made = new Pages;
    FUZZ_CHECK(!ipc::SharedState::create(made->waiting) && !ipc::SharedState::create(made->draining) &&
               !ipc::SharedState::create(made->both));
    made->waiting.set_waiting(1);
    made->draining.set_draining();
    made->both.set_waiting(1);
    made->both.set_draining();
    return made;
  }();
  if (others_waiting && draining) return &pages->both;
  if (others_waiting) return &pages->waiting;
  if (draining) return &pages->draining;
  return nullptr;
}

inline constexpr std::string_view kClientAddress = "203.0.113.7";
inline constexpr uint16_t kClientPort = 40000;
inline constexpr uint64_t kRequestId = 17;

struct SessionRun {
  handler::SessionOutcome outcome;
  handler::Limits limits;
  bool others_waiting = false;
  bool draining = false;
  // The hand-off's request record, decoded (first.rest is received), or nullopt when the session ran
  // without one.
  std::optional<ipc::RequestView> first;
  std::string record;    // The record's bytes, which first views.
  std::string received;  // The bytes the session got beside the record: its rest, or what lingering read.
  std::string socket;    // What the client sent that neither the reactor nor the handler read.
  std::string written;   // What the session wrote to the client.
  std::vector<int> statuses;  // Of the answers, in order: those reported between requests, then the last.
};

using Serve = handler::SessionOutcome (*)(const Handler&, int, const ipc::RequestView*, std::string, uint32_t,
                                          const handler::Limits&, const handler::AnsweredCallback&,
                                          handler::SessionStart);

// The client's first request as the reactor reads it (reactor/connection.cpp): complete and accepted by its
// framing, and written as a record as the reactor writes it (RequestFraming::append_record), with rest the
// bytes of client it read after it. The bytes the request takes of client go to *taken. nullopt: the reactor
// would not hand this over (it waits, or refuses).
inline std::optional<std::string> reactor_record(reactor::Protocol protocol, std::string_view client,
                                                 const handler::Limits& limits, bool input_closed,
                                                 uint8_t read_fraction, size_t* taken) {
  if (client.empty()) return std::nullopt;
  reactor::RequestFraming framing(
      {.max_head_bytes = limits.max_head_bytes, .max_body_bytes = limits.max_request_bytes});
  framing.feed(protocol, client);
  if (input_closed) framing.finish(protocol);
  ipc::RequestFields fields{
      .request_id = kRequestId, .client_address = kClientAddress, .client_port = kClientPort};
  std::string record;
  if (framing.complete()) {
    *taken = framing.request_bytes();
    FUZZ_CHECK(*taken > 0 && *taken <= client.size());
  } else if (protocol == reactor::Protocol::kLine && !framing.refused() && input_closed) {
    *taken = client.size();  // A last line cut by EOF is still a request.
  } else {
    return std::nullopt;
  }
  const size_t read = *taken + (client.size() - *taken) * read_fraction / 255;
  framing.append_record(protocol, client.substr(0, read), fields, record);
  return record;
}

// Runs serve over the input and checks what holds for every protocol: the session never reads the socket
// (every request it serves came whole from the reactor, or was read while lingering), the bytes it says it
// wrote are those the client got (unless a write timed out), reports between requests only grow, the bytes
// it hands back are the end of those it was given, and no descriptor is left open. nullopt: the input is not
// one the driver takes.
inline std::optional<SessionRun> run_session(const uint8_t* data, size_t size, Serve serve,
                                             reactor::Protocol protocol) {
  if (size < 2 || size - 2 > kLongestClientInput) return std::nullopt;
  SessionRun run;
  run.others_waiting = (data[0] & 1) != 0;
  run.draining = (data[0] & 16) != 0;
  run.limits = {.reactor_state = reactor_state(run.others_waiting, run.draining),
                .write_timeout = std::chrono::milliseconds(10)};
  if (data[0] & 4) {
    run.limits.max_request_bytes = 256;
    run.limits.max_head_bytes = 512;
  }
  const bool lingered = (data[0] & 8) != 0;
  // The reactor knows of an EOF only once it read all the client sent; a lingering handler says none.
  const bool input_closed = (data[0] & 2) != 0 && !lingered;
  const uint8_t read_fraction = input_closed ? 255 : data[1];
  const uint32_t flags = (protocol == reactor::Protocol::kHttp ? ipc::kFlagHttp : 0u) |
                         (input_closed ? ipc::kFlagInputClosed : 0u);
  const int before = open_descriptors();
  const std::string_view client = as_text(data + 2, size - 2);
  size_t taken = 0;
  std::optional<std::string> record =
      lingered ? std::nullopt
               : reactor_record(protocol, client, run.limits, input_closed, read_fraction, &taken);
  if (record) {
    run.record = std::move(*record);
    run.first.emplace();
    FUZZ_CHECK(ipc::decode_request_record(run.record, *run.first));
    run.received = run.first->rest;
  } else {
    taken = 0;
    run.received = client.substr(0, client.size() * read_fraction / 255);
  }
  run.socket = client.substr(taken + run.received.size());
  handler::SessionStart start{.client_address = kClientAddress, .client_port = kClientPort};
  if (!run.first) start.bytes_written = 1000;  // As after lingering: answers earlier in the hand-off.
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
        harmless_handler(), pair.first.get(), run.first ? &*run.first : nullptr, run.received, flags,
        run.limits,
        [&](uint64_t bytes_written, int status, uint16_t) {
          FUZZ_CHECK(bytes_written >= reported);
          FUZZ_CHECK(status == 0 || (status >= 200 && status <= 599));
          reported = bytes_written;
          if (status != 0) run.statuses.push_back(status);
        },
        start);
    FUZZ_CHECK(run.outcome.bytes_written >= reported);
    FUZZ_CHECK(run.outcome.status == 0 || (run.outcome.status >= 200 && run.outcome.status <= 599));
    if (run.outcome.status != 0) run.statuses.push_back(run.outcome.status);
    // What this session wrote, as the checks below take it.
    run.outcome.bytes_written -= start.bytes_written;
    // The session read nothing of the socket: what the client sent past the reactor's read is all there.
    std::string left;
    char chunk[16 * 1024];
    ssize_t got;
    while ((got = ::read(pair.first.get(), chunk, sizeof(chunk))) > 0) left.append(chunk, got);
    FUZZ_CHECK(got == 0);
    FUZZ_CHECK(left == run.socket);
    FUZZ_CHECK(::fcntl(pair.second.get(), F_SETFL, O_NONBLOCK) == 0);
    while ((got = ::read(pair.second.get(), chunk, sizeof(chunk))) > 0) run.written.append(chunk, got);
  }
  if (!run.outcome.write_timed_out) FUZZ_CHECK(run.written.size() == run.outcome.bytes_written);
  if (run.outcome.keep_open) {
    FUZZ_CHECK(!run.outcome.write_timed_out);
    // Handed back: the bytes the client sent, indeed the end of those the session was given.
    FUZZ_CHECK(client.find(run.outcome.unconsumed) != std::string_view::npos);
    FUZZ_CHECK(run.received.ends_with(run.outcome.unconsumed));
  } else {
    FUZZ_CHECK(run.outcome.unconsumed.empty());
  }
  FUZZ_CHECK(open_descriptors() == before);
  return run;
}

}  // namespace handoff::fuzz
