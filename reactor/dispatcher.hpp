#pragma once

// Internal to the reactor. Dispatcher: who holds which connection. The one place that knows the idle handlers
// (a FIFO, so load spreads), the connections with a complete request waiting for a handler (a FairQueue: a
// FIFO per client, the clients served in turn, so that no request starves and no client crowds out the
// others), and which handler is busy with which connection. It holds ids only and does no I/O; the
// Frontend acts on its answers, and the HandlerPool tells it of handlers that come and go. Node's cluster
// round-robin handle (lib/internal/cluster/round_robin_handle.js) is the model.
//
// A busy handler that takes connections ahead may also hold connections sent ahead, up to its depth: its
// next ones, already in its channel when it finishes the current one, so that it goes on without waiting for
// the reactor. Only a request that would wait anyway goes ahead (no handler is idle, none waits before it),
// and until the handler takes it, it is still among the oldest waiting requests: a handler that comes free
// first gets it (the caller withdraws it from the one it was sent to).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "ipc/shared_state.hpp"
#include "reactor/fair_queue.hpp"

namespace handoff::reactor {

using ConnectionId = uint64_t;
using HandlerId = uint64_t;

struct Assignment {
  HandlerId handler;
  ConnectionId connection;
  bool ahead = false;  // The handler is busy: it takes this one once done with its current connection.
};

class Dispatcher {
 public:
  // A connection has a complete request: it goes to the idle handler that kept its socket (look_up_kept_by),
  // or the longest idle one; ahead to a busy handler that takes one (how.preferred, or the one that kept it,
  // if one can; none unless how.may_go_ahead); or it waits its turn, first in line when it was sent ahead and
  // withdrawn.
  struct Ready {
    bool first_in_line = false;
    bool may_go_ahead = true;
    std::optional<HandlerId> preferred;
  };
  std::optional<Assignment> connection_ready(ConnectionId connection, Ready how);
  std::optional<Assignment> connection_ready(ConnectionId connection) {
    return connection_ready(connection, {});
  }

  // A handler can take work (after its hello, or once it reported done): it takes the longest waiting
  // connection, or joins the idle handlers.
  std::optional<Assignment> handler_idle(HandlerId handler);

  // Tells which handler kept the socket of a waiting connection, if one did (Connection::kept_by). A handler
  // that asks for work takes the longest waiting connection, or the one behind it when this handler kept
  // that one's socket and not the first's: a request is passed so at most once, and the next hand-off then
  // needs no descriptor.
  void look_up_kept_by(std::function<std::optional<HandlerId>(ConnectionId)> kept_by) {
    kept_by_ = std::move(kept_by);
  }
  // Tells the client of a connection whose request is to wait (its address, without the port): the queue
  // serves clients in turn. Without it, every connection is one client's, and the queue a plain FIFO.
  void look_up_client(std::function<std::string(ConnectionId)> client_of) {
    client_of_ = std::move(client_of);
  }

  // How many connections handler may hold sent ahead at once: 0 unless it said in its hello that it takes
  // them, and 0 once it retires.
  void set_ahead_depth(HandlerId handler, unsigned depth);

  enum class Done {
    kNotHeld,     // It does not hold that connection: a broken handler.
    kFree,        // Neither idle nor busy until handler_idle is called.
    kGoesOnAhead  // Busy with the oldest connection it was sent ahead, which is now its current one.
  };
  // The handler reported that it is done with connection.
  Done handler_done(HandlerId handler, ConnectionId connection);

  // The next ahead for a busy handler below its depth: the longest waiting connection, if any.
  std::optional<Assignment> next_ahead(HandlerId handler);
  // The oldest connection sent ahead to a handler other than except for which holder_counts(its handler)
  // is true: a handler come free may take one that its holder has not taken yet. One pass, no allocation
  // (it is looked for at every report under saturation).
  template <typename HolderCounts>
  std::optional<Assignment> oldest_ahead(HandlerId except, HolderCounts holder_counts) const {
    std::optional<Assignment> oldest;
    uint64_t oldest_since = 0;
    for (const auto& [handler, serving] : busy_) {
      if (handler == except || serving.aheads.empty()) continue;
      const Ahead& first = serving.aheads.front();
      if ((oldest && first.since >= oldest_since) || !holder_counts(handler)) continue;
      oldest = Assignment{handler, first.connection, true};
      oldest_since = first.since;
    }
    return oldest;
  }
  // The connection sent ahead to handler no longer goes to it (withdrawn, then handed on or closed). The
  // handler gets nothing more ahead until it reports.
  void ahead_withdrawn(HandlerId handler, ConnectionId connection);

  struct Held {
    std::optional<ConnectionId> current;
    std::vector<ConnectionId> aheads;  // Oldest first.
  };
  // The handler is gone (exited, or being replaced): it is forgotten, and the connections it held, if any,
  // are returned so that the caller can answer them (the current one) or queue them again (ahead).
  Held handler_gone(HandlerId handler);

  // A waiting connection is gone (its client left, or the server stops): it no longer waits.
  void connection_gone(ConnectionId connection);

  std::optional<ConnectionId> connection_of(HandlerId handler) const;
  // The connections sent ahead to handler, oldest first.
  std::vector<ConnectionId> aheads_of(HandlerId handler) const;
  // Held by a handler: served, or sent ahead.
  bool is_being_served(ConnectionId connection) const {
    return handler_of(connection).has_value() || ahead_holder(connection).has_value();
  }
  // The handler that serves connection, if one does.
  std::optional<HandlerId> handler_of(ConnectionId connection) const;
  // The handler connection was sent ahead to, if it was.
  std::optional<HandlerId> ahead_holder(ConnectionId connection) const;
  // Queued: waiting_connections() counts those sent ahead too.
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
  // Connections with a request no handler has begun: queued, or sent ahead.
  size_t waiting_connections() const { return waiting_.size() + aheads_; }
  // Of those, the ones queued (not sent ahead): no handler holds them.
  size_t queued_connections() const { return waiting_.size(); }
  // The queued connections of one client, and the clients with the most queued (for /stats).
  size_t queued_of(std::string_view client) const { return waiting_.waiting_of(client); }
  std::vector<std::pair<std::string, size_t>> busiest_clients(size_t count) const {
    return waiting_.busiest(count);
  }

 private:
  struct Ahead {
    ConnectionId connection;
    uint64_t since;  // Order in which aheads were given, for oldest_ahead.
  };
  struct Serving {
    ConnectionId current;
    std::deque<Ahead> aheads;  // Oldest first: the order of their frames in the handler's channel.
    // One sent ahead was taken back: its frame may still wait unread in the handler's channel, with a copy
    // of the socket, so nothing more goes ahead to it until it reports (and reads past that frame).
    bool withdrawn = false;
  };

  void publish() {
    if (published_ == nullptr) return;
    published_->set_waiting(static_cast<uint32_t>(waiting_connections()));
    published_->set_idle(static_cast<uint32_t>(idle_.size()));
  }
  Assignment give_ahead(HandlerId handler, Serving& serving, ConnectionId connection);
  // Whether handler, busy with serving, may be sent a connection ahead now.
  bool may_send_ahead(HandlerId handler, const Serving& serving) const {
    const auto depth = ahead_depth_.find(handler);
    return !serving.withdrawn && depth != ahead_depth_.end() && serving.aheads.size() < depth->second;
  }

  // The next waiting connection for handler, taken out of the queue (look_up_kept_by).
  ConnectionId take_waiting(HandlerId handler);

  ipc::SharedState* published_ = nullptr;
  std::function<std::optional<HandlerId>(ConnectionId)> kept_by_;
  std::function<std::string(ConnectionId)> client_of_;
  bool first_passed_ = false;  // The first waiting connection was passed once already.
  std::deque<HandlerId> idle_;
  FairQueue waiting_;
  std::unordered_map<HandlerId, Serving> busy_;
  std::unordered_map<HandlerId, unsigned> ahead_depth_;  // Handlers that take connections ahead.
  size_t aheads_ = 0;
  uint64_t next_ahead_order_ = 0;
};

}  // namespace handoff::reactor
