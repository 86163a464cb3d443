#pragma once

// Internal to the handler library. Lingering: after an answer, when no other connection waits for a handler,
// the handler waits a short while (HANDOFF_LINGER_US, the reactor's --linger) on the connection for the
// client's next request, and serves it in the same hand-off, as a prefork server would: no trip through the
// reactor, no descriptor passed. The reactor takes the handler back whenever a request waits for one: its
// kReclaim ends the wait at once. Meanwhile the answer record says "lingering", so that the reactor knows
// it may reclaim, and that a handler that dies then lost no request.

#include <chrono>
#include <cstdint>
#include <string>

#include "ipc/answer_record.hpp"
#include "ipc/shared_state.hpp"

namespace handoff::handler {

struct Lingered {
  enum class Outcome {
    kClientSent,  // received holds what the client sent.
    kHandBack,    // The time is up, or the reactor wants the handler: the connection goes back to it.
    kClientGone,  // The client closed, or the connection failed: the hand-off ends with it.
  };
  Outcome outcome;
  std::string received;
};

// Whether the handler may linger now: nothing waits and another handler is idle (so that a request that
// comes meanwhile has a handler, and reclaiming stays rare). When true, record says "lingering" from now
// until linger() has read from the client.
bool begin_lingering(const ipc::SharedState& state, ipc::AnswerRecord& record);

// After begin_lingering: waits up to time for the client on client_fd, or for a frame from the reactor on
// channel_fd (which it leaves unread), and reads what the client sent without waiting for more.
Lingered linger(int client_fd, int channel_fd, std::chrono::microseconds time, ipc::AnswerRecord& record);

}  // namespace handoff::handler
