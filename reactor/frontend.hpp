#pragma once

// Internal to the reactor. Frontend: the life of every client connection. It accepts, lets each Connection
// read its whole request, asks the Dispatcher who serves it, hands the socket to that handler, takes the
// connection back when the handler is done, and answers the client itself when no handler can (queue full,
// timeouts, a handler that died, a stop). It hears of handlers through the pool's reports
// (HandlerPool::ConnectionEvents), and uses a HandlerProcess only for what concerns a connection: sending it,
// withdrawing one sent ahead, asking a lingering handler for it back, and what the handler reported of it.
// The pool alone starts, retires and stops handlers.
//
// Ownership: connections_ owns every open client socket (the reactor's copy), also while a handler serves it,
// so that the reactor can still answer a client whose handler died. The Dispatcher knows who holds what, by
// id.

#include <uv.h>

#include <array>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"
#include "reactor/config.hpp"
#include "reactor/connection.hpp"
#include "reactor/descriptor_reserve.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/handler_pool.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/metrics.hpp"
#include "reactor/phase.hpp"
#include "reactor/protocol.hpp"
#include "reactor/read_budget.hpp"
#include "reactor/socket_poller.hpp"

namespace handoff::reactor {

class Frontend final : public HandlerPool::ConnectionEvents, Connection::Events {
 public:
  Frontend(uv_loop_t* loop, const Config& config, Dispatcher& dispatcher, HandlerPool& pool,
           Metrics& metrics);
  ~Frontend();

  // Accepts on sockets (listening, non-blocking), from now on or (accept_now false: a takeover's successor)
  // from start_accepting(); reserve (borrowed) is taken back before each accept. The failed call is logged.
  std::error_code listen(std::vector<ipc::UniqueFd> sockets, DescriptorReserve& reserve, bool accept_now);
  // Accepts once the takeover's hold is lifted (and --max-connections allows).
  void start_accepting();
  // The listeners' addresses, and their sockets (borrowed: a takeover passes them on), in listen's order.
  std::vector<ListenAddress> local_addresses() const;
  std::vector<int> listening_sockets() const;

  // A takeover (reactor/frontend_takeover.cpp).
  // A connection the reactor this one takes over from passed on: read on from where that one stopped
  // (counted as taken over).
  void adopt(PassedConnection connection);
  // A passed connection served from where it was: adopted, or given back by a successor that died before it
  // took it.
  void accept_passed(PassedConnection connection);
  // The takeover (reactor/takeover.hpp): stops accepting; from now on every connection goes to pass as soon
  // as no handler holds it, with the bytes read of it; the others close as they would. all_passed is called
  // once no connection is left.
  using PassCallback = std::function<void(PassedConnection connection)>;
  void pass_all_to_successor(PassCallback pass, std::function<void()> all_passed);
  // The successor died: nothing more is passed. During the hand-over the connections still here are served
  // here again (start_accepting follows); after a stop began they close as at any stop.
  void stop_passing();
  size_t open_connections() const { return connections_.size(); }
  // How many open connections are in each Connection::State, indexed by it (for /stats).
  std::array<size_t, Connection::kStates> connections_by_state() const;
  // Bytes of requests read and not handed off yet, and the connections paused because that is at its limit.
  size_t buffered_bytes() const { return budget_.held(); }
  size_t paused_connections() const { return budget_.paused(); }

  // Stops accepting; connections between requests close, the others once their request is answered.
  void drain();
  // Closes every connection no handler holds; the held ones are answered once their handler is reaped.
  void stop();
  // The last handler has exited: the poller closes once the connections lingering at close are gone.
  void finish();

 private:
  // A connection accepted (fresh), or passed on by a takeover.
  void accept(ipc::UniqueFd client, ConnectionStart start, bool fresh);
  // Whether the client's connection must, may not, or need not begin with a PROXY header
  // (--proxy-protocol-from).
  ProxyHeaderRule proxy_header_rule(int client, bool fresh) const;
  // --max-connections: holds the listener at the cap, and lets it go below.
  void hold_at_capacity();
  void release_below_capacity();
  // Every listener is held for reason, or released from it (Listener::Hold).
  void hold_listeners(Listener::Hold reason);
  void release_listeners(Listener::Hold reason);
  // Passes the connection to the reactor that takes over, with the request kept for it, if any, then
  // unconsumed (reactor/frontend_takeover.cpp).
  void pass_to_successor(ConnectionId id, std::string unconsumed);
  // Once pass_all_to_successor has passed or closed every connection: all_passed, once.
  void report_if_all_passed();
  // Whether connections that may send more are kept, or go to the reactor that takes over: not once a
  // drain or a stop began.
  bool keeps_connections() const { return phase_ == Phase::kServing || phase_ == Phase::kHandingOver; }
  // HandlerPool::ConnectionEvents: what the pool reports of handlers and the connections they hold.
  // The handler takes the longest waiting connection, or joins the idle handlers.
  void on_handler_free(HandlerProcess& handler) override;
  // The handler went on with the connection sent ahead to it: that one is served now, and the handler gets
  // its next one ahead if a request waits.
  void on_handler_goes_on(HandlerProcess& handler) override;
  // A connection sent ahead comes back unserved: it goes to a handler again, before every other.
  void on_ahead_returned(ConnectionId id) override;
  // The handler is done with the connection: watch it for the next request, or close it.
  void on_connection_returned(const HandlerProcess& handler, ipc::Message done,
                              uint64_t answered_bytes) override;
  // The handler that held the connection is dead and reaped: answer the client, unless an answer was cut;
  // go on with the connection when the handler died right after an answer it had not reported yet.
  void on_connection_orphaned(ConnectionId id, const HandlerProcess& handler) override;
  // Counts the answer of the handler's current connection, and writes the access log line. more_follows: the
  // handler goes on with the connection, reading its next requests itself.
  void on_request_answered(HandlerProcess& handler, int status, double service_ms,
                           bool more_follows) override;
  // Connection::Events.
  void on_request_ready(Connection& connection) override;
  void on_client_left(Connection& connection) override;
  void on_expired(Connection& connection, Connection::Expiry expiry) override;

  // Sends the connection's request to the handler the Dispatcher assigned, now or ahead.
  void send_to_handler(Assignment assignment);
  // --retry-crashed: whether request may run on another handler if handler dies before answering it: an
  // HTTP GET, HEAD or OPTIONS, or a line command handler marked retryable (its hello's route table); not
  // larger than kLongestRetriedRequest (its bytes are kept meanwhile).
  bool may_run_again(const Connection::Request& request, const HandlerProcess& handler) const;
  static constexpr size_t kLongestRetriedRequest = 64 * 1024;
  // The connection's handler died: its request goes to another handler if it may (true).
  bool run_again(Connection& connection, const HandlerProcess& handler);

  // Send-ahead (reactor/send_ahead.cpp).
  // The connection's request for a handler: the one kept when it was sent ahead and came back, or the
  // connection's next.
  Connection::Request take_request(Connection& connection);
  // A connection sent ahead to a handler busy for longer than kAheadPatienceNs with its current request,
  // if any, is taken back for taker's turn: it goes first in line (the oldest such).
  void requeue_stuck_ahead(HandlerId taker);
  // Waiting requests go ahead to the busy handler, as many as it may hold.
  void send_aheads(HandlerId handler);
  // Past this, a request sent ahead waits no more for its handler's current request: a short request on a
  // handler stuck on a long one would otherwise wait for it, while newer ones pass by on the others.
  static constexpr uint64_t kAheadPatienceNs = 1'000'000;
  // Takes back the connection sent ahead that ahead names, if its handler has not taken it, and dispatches
  // it first in line.
  void requeue_if_withdrawn(std::optional<Assignment> ahead);
  // A connection taken back from the handler it was sent ahead to: to a handler, first in line.
  void dispatch_first_in_line(ConnectionId id);
  // The connection was sent ahead and its client left, or its wait in the queue expired: withdrawn (true)
  // unless its handler took it already.
  bool withdraw_ahead(ConnectionId id);

  void resume(Connection& connection, std::string unconsumed);
  // How long the connection's request waited for the handler that begins it now (a histogram, and the
  // access log).
  void observe_queue_wait(Connection& connection);
  // Closes the reactor's copy (Connection::close) and accepts again if --max-connections had held it.
  void close_connection(ConnectionId id);
  // The handler that kept a copy of the connection's socket, if any, is told to close it.
  void forget_kept_copy(Connection& connection);
  // The client of the connection the handler serves left: the handler is told, and killed once
  // --cancel-grace has passed (--cancel on) if it has not ended the request.
  void cancel_unanswered(HandlerProcess& handler, Connection& connection);
  // The least a request whose client left runs before its handler is killed, whatever --cancel-grace says.
  static constexpr Milliseconds kCancelAfter{20};
  // Counts an answer to a request whose client had left (connection: null when closed already) as
  // cancelled gently, and writes its access log line (499).
  void record_departed(Connection* connection, const HandlerProcess& handler, double service_ms);
  // Counts an answer to connection (null when it is closed already) and writes its access log line.
  void record_answer(Connection* connection, const HandlerProcess& handler, int status, double service_ms,
                     uint64_t bytes);
  // While connections wait for room in the read budget, every kStallCheckMs: an upload whose bytes stopped
  // coming for kStalledAfterMs gives way. It is refused (a read timeout) and its bytes go to those that move,
  // as Apache's mod_reqtimeout enforces a minimum body rate; without pressure, --read-timeout alone holds.
  void check_stalled_uploads();
  static constexpr uint64_t kStallCheckMs = 250;
  static constexpr uint64_t kStalledAfterMs = 1000;
  // Answers the connection's request with the reactor's refusal and closes it; reason, for the log, says more
  // than the refusal does when given.
  void refuse(Connection& connection, Refusal refusal, std::string_view reason = {});
  // Counts the refusal, writes it to the client and logs it; handler: the one whose request it ends, if any.
  void answer_refusal(Connection& connection, Refusal refusal, const HandlerProcess* handler,
                      std::string_view reason = {});
  void count_refusal(Refusal refusal);
  // How a request ended, for its access log line: the status the client got and, when the reactor decided
  // it rather than the handler, why.
  struct Ending {
    int status = 0;
    std::string_view reason;  // Empty when the handler answered.
    const HandlerProcess* handler = nullptr;
    double service_ms = 0;
    uint64_t bytes = 0;
  };
  // The access log line (--access-log); without it, a line at debug for the reactor's own verdicts.
  void log_ending(Connection& connection, const Ending& ending);
  // The client left while its request waited for a handler.
  void log_abandoned(Connection& connection);
  // The status logged for a request whose client left before any answer: nginx's 499.
  static constexpr int kClientLeftStatus = 499;
  static double running_ms(const HandlerProcess& handler);

  uv_loop_t* loop_;
  const Config& config_;
  Dispatcher& dispatcher_;
  HandlerPool& pool_;
  Metrics& metrics_;
  Phase phase_ = Phase::kServing;
  std::vector<LoopOwned<Listener>> listeners_;  // One per --listen address, or per socket passed on.
  LoopOwned<SocketPoller> poller_;  // Before connections_: each forgets its socket when it closes.
  ReadBudget budget_;               // Before connections_: each gives its bytes back when it closes.
  std::unordered_map<ConnectionId, LoopOwned<Connection>> connections_;
  // The requests of connections sent ahead and not begun yet, which may come back (and those that did).
  std::unordered_map<ConnectionId, Connection::Request> kept_requests_;
  uint64_t next_request_id_ = 1;      // The number of the next request handed to a handler (its record's id).
  uv_timer_t stall_timer_{};          // Runs check_stalled_uploads under pressure; closed by finish().
  PassCallback pass_;                 // Set by pass_all_to_successor.
  std::function<void()> all_passed_;  // Set by pass_all_to_successor, until no connection is left.
  ConnectionId next_id_ = 1;
  bool at_capacity_ = false;  // --max-connections are open: the listener is held.
  static constexpr uint64_t kCapacityReportIntervalNs = 10'000'000'000;
  uint64_t last_capacity_report_ns_ = 0;
};

}  // namespace handoff::reactor
