#pragma once

// Internal to the handler library. ProtocolSession: what the line and the HTTP session of one hand-off both
// hold — the handler's commands, the client stream, the limits and the callback that reports each answer
// between two requests. Each protocol derives its session from it and adds only its own parsing.

#include <cstdint>
#include <string>
#include <utility>

#include "handler/client_stream.hpp"
#include "handler/session.hpp"
#include "handoff/handler.hpp"

namespace handoff::handler {

class ProtocolSession {
 protected:
  // received: the bytes the reactor read; flags: the kConnection frame's flags (ipc/wire.hpp). The session
  // borrows client_fd, handler, limits and on_answered for its life.
  ProtocolSession(const Handler& handler, int client_fd, std::string received, uint32_t flags,
                  const Limits& limits, const AnsweredCallback& on_answered, SessionStart start)
      : handler_(handler),
        stream_(client_fd, std::move(received), flags, limits, start.bytes_written),
        limits_(limits),
        on_answered_(on_answered),
        start_(start) {}
  ~ProtocolSession() = default;

  // Whether other connections wait for a handler now: then the rest of a pipeline goes back to the reactor,
  // behind them, instead of being served in this hand-off.
  bool others_waiting() const {
    return limits_.reactor_state != nullptr && limits_.reactor_state->waiting() > 0;
  }

  // Whether the reactor drains: an HTTP answer then says Connection: close, and the hand-off ends with it.
  bool reactor_draining() const {
    return limits_.reactor_state != nullptr && limits_.reactor_state->draining();
  }

  // What each request served in this session reads to learn that its client left (Request::cancelled()).
  Request::CancelSource cancel_source() const {
    return {.answer_record = limits_.answer_record, .connection_id = start_.connection_id};
  }

  // Reports the answer written last to the reactor (kAnswered): another request of the hand-off follows.
  void report_answered() {
    const ClientStream::Unreported answer = stream_.take_answer();
    on_answered_(stream_.bytes_written(), answer.status, answer.route);
  }

  const Handler& handler_;
  ClientStream stream_;
  const Limits& limits_;
  const AnsweredCallback& on_answered_;
  const SessionStart start_;
};

}  // namespace handoff::handler
