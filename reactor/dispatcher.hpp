#pragma once

// Dispatcher: who holds which connection. The one place that knows the idle handlers (a FIFO, so load
// spreads), the connections with a complete request waiting for a handler (a FIFO, so no request starves),
// and which handler is busy with which connection. It holds ids only and does no I/O; the Server acts on its
// answers. Node's cluster round-robin handle (lib/internal/cluster/round_robin_handle.js) is the model.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>

#include "ipc/shared_state.hpp"

namespace handoff::reactor {

using ConnectionId = uint64_t;
using HandlerId = uint64_t;

struct Assignment {
  HandlerId handler;
  ConnectionId connection;
};

class Dispatcher {
 public:
  // A connection has a complete request: it goes to the longest idle handler, or waits its turn.
  std::optional<Assignment> connection_ready(ConnectionId connection);

  // A handler can take work (after its hello, or once it reported done): it takes the longest waiting
  // connection, or joins the idle handlers.
  std::optional<Assignment> handler_idle(HandlerId handler);

  // The handler reported that it is done with connection. False when it does not hold that connection (a
  // broken handler); otherwise the handler is neither idle nor busy until handler_idle is called.
  bool handler_done(HandlerId handler, ConnectionId connection);

  // The handler is gone (exited, or being replaced): it is forgotten, and the connection it held, if any, is
  // returned so that the caller can answer it.
  std::optional<ConnectionId> handler_gone(HandlerId handler);

  // A waiting connection is gone (its client left, or the server stops): it no longer waits.
  void connection_gone(ConnectionId connection);

  std::optional<ConnectionId> connection_of(HandlerId handler) const;
  bool is_being_served(ConnectionId connection) const { return handler_of(connection).has_value(); }
  // The handler that serves connection, if one does.
  std::optional<HandlerId> handler_of(ConnectionId connection) const;
  bool is_waiting(ConnectionId connection) const;

  // From now on the numbers of waiting connections and of idle handlers are also written to state, where
  // handlers read them (a handler serving a pipeline hands the rest back when others wait; one lingers only
  // while nothing waits and another handler is idle). state must outlive the Dispatcher.
  void publish_waiting_to(ipc::SharedState* state) {
    published_ = state;
    publish();
  }

  size_t idle_handlers() const { return idle_.size(); }
  size_t busy_handlers() const { return busy_.size(); }
  size_t waiting_connections() const { return waiting_.size(); }

 private:
  void publish() {
    if (published_ == nullptr) return;
    published_->set_waiting(static_cast<uint32_t>(waiting_.size()));
    published_->set_idle(static_cast<uint32_t>(idle_.size()));
  }

  ipc::SharedState* published_ = nullptr;
  std::deque<HandlerId> idle_;
  std::deque<ConnectionId> waiting_;
  std::unordered_map<HandlerId, ConnectionId> busy_;
};

}  // namespace handoff::reactor
