#pragma once

// Internal to the reactor. Connection: one client socket, owned by the reactor for its whole life. Between
// requests the reactor watches it and reads the next whole request itself — a line, or an HTTP head and its
// body (RequestFraming) — so that a slow client never holds a handler; while a handler serves it, the reactor
// keeps its copy of the socket and reads nothing from it (one descriptor, one reader at a time), but watches
// for the client leaving (EPOLLRDHUP, errors), so that work nobody will read can be cancelled. The socket is
// in the SocketPoller, edge-triggered, from accept to close: what an edge means depends on the state the
// connection is in, and no state change of a one-request hand-off costs a system call. Its one timer guards
// whichever wait the connection is in: idle, reading a request, queued, or lingering at close. The bytes it
// holds count against the reactor's ReadBudget; while that is spent, it does not read.

#include <uv.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ipc/unique_fd.hpp"
#include "reactor/config.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/passed_connection.hpp"
#include "reactor/protocol.hpp"
#include "reactor/read_budget.hpp"
#include "reactor/request_framing.hpp"
#include "reactor/socket_poller.hpp"

namespace handoff::reactor {

// The first line of a request's bytes, cut at 100 bytes, control bytes replaced: fit for a log line.
std::string printable_first_line(std::string_view head);

// What a connection's first bytes may hold before its first request: a PROXY protocol header
// (reactor/proxy_header.hpp), which a balancer in --proxy-protocol-from must send and anyone else must not.
enum class ProxyHeaderRule {
  kNone,      // Not looked for: a connection taken over from a peer not trusted, checked already.
  kRequired,  // The peer is in --proxy-protocol-from: the header comes first, and names the client.
  kRefused,   // Any other peer: a connection that begins with one is refused.
};

// How a connection begins: accepted, or taken over from another reactor with what it had read of the next
// request (reactor/takeover.hpp), and its protocol, if that one knew it.
struct ConnectionStart {
  ProxyHeaderRule proxy = ProxyHeaderRule::kNone;
  std::string already_read;
  Protocol protocol = Protocol::kUnknown;
  uint64_t bytes_sent = 0;  // What the socket sent before: the answers given by the other reactor's handlers.
  Milliseconds request_age{0};  // How long ago the request in already_read began: --read-timeout counts on.
  bool continue_sent = false;   // The other reactor answered its "Expect: 100-continue".
  // The other reactor ran the request in already_read on a second handler already (--retry-crashed).
  bool ran_again = false;
};

class Connection final : SocketPoller::Watcher {
 public:
  enum class Expiry {
    kIdle,   // No request began within --idle-timeout.
    kRead,   // A request began but was not complete within --read-timeout.
    kQueue,  // The request waited longer than --queue-timeout for a handler.
    kLeft,   // The client left while its request ran, and the time set by remind_left_after has passed.
  };

  class Events {
   public:
    // The connection holds a complete request, or one the reactor refuses (request_refused()); it stopped
    // watching.
    virtual void on_request_ready(Connection& connection) = 0;
    // The client left while the reactor watched it: EOF with nothing pending, or a reset, while it read a
    // request; while the request waited in the queue or a handler served it, a reset, or EOF over HTTP (see
    // check_client_left).
    virtual void on_client_left(Connection& connection) = 0;
    // A wait of the connection took too long.
    virtual void on_expired(Connection& connection, Expiry expiry) = 0;

   protected:
    ~Events() = default;
  };

  // The most the connection reads at once.
  static constexpr size_t kReadChunkBytes = 16 * 1024;

  // What a handler receives: the request record (ipc/request_record.hpp) and the kConnection flags; and the
  // bytes it was read from, which a takeover passes on when the request goes to no handler.
  struct Request {
    std::string record;
    std::string raw;
    uint32_t flags;
  };

  enum class Resume { kWatching, kReady, kClientLeft };

  // Create with make_loop_owned (reactor/loop_owned.hpp); starts watching for the first request, in poller
  // (borrowed: it outlives its watchers). When poller cannot take the socket (logged), polled() is false, and
  // the connection only needs closing.
  Connection(uv_loop_t* loop, ConnectionId id, ipc::UniqueFd socket, const Config& config, ReadBudget& budget,
             SocketPoller& poller, Events& events, ConnectionStart start = {});

  bool polled() const { return polled_; }

  // Where the connection is in its life; what a socket event means depends on it (on_socket_event).
  enum class State {
    kReading,   // Reads its next request (or waits for it, idle).
    kPaused,    // Reading, but the read budget is spent: resume_reading says when to read on.
    kStopped,   // Neither reads nor watches: its request is ready and not queued or served yet, or it ends.
    kQueued,    // Its request waits for a handler (in the queue, or sent ahead): only its client leaving
                // counts.
    kServed,    // A handler serves it: only its client leaving counts.
    kDraining,  // Closing: what the client still sends is read and dropped, for a moment (close).
    kClosed,    // Its handles close, or it went to the reactor that takes over.
  };
  static constexpr size_t kStates = static_cast<size_t>(State::kClosed) + 1;  // kClosed is the last.
  State state() const { return state_; }
  static const char* state_name(State state);

  ConnectionId id() const { return id_; }
  // The socket, borrowed: it is sent to a handler, and the reactor keeps its own copy here.
  int socket() const { return socket_.get(); }
  // Whether it reads (or waits for) its next request.
  bool reading() const { return state_ == State::kReading || state_ == State::kPaused; }

  // The request waits for a handler from now on, for at most --queue-timeout; a client that leaves
  // meanwhile is reported (on_client_left).
  void wait_in_queue();

  // A handler serves the request from now on; a client that leaves meanwhile is reported (on_client_left),
  // by the same rule as in the queue.
  void watch_while_served();
  // The handler reads the connection's next requests itself (pipelined, or while it lingers): until the
  // connection is back, the poller reports only the client's end, not each request that arrives (one
  // epoll_ctl now and one at resume, instead of a wake-up of the loop for every request).
  void quiet_input_while_served();
  // The client left while its request runs: on_expired(kLeft) after delay, unless the handler is done first.
  void remind_left_after(Milliseconds delay) { expire_after(delay, Expiry::kLeft); }

  // For the access log and the queue-wait histogram: the peer's address, or the client's that its PROXY
  // header named.
  void set_peer(std::string peer) { peer_ = std::move(peer); }
  const std::string& peer() const { return peer_; }
  // Who the client is, for fair queueing: its address without the port (the one its PROXY header named, if
  // any), or "unix:PATH" on a Unix socket; "" when the socket cannot tell.
  std::string client_name();
  const char* protocol_name() const { return protocol_ == Protocol::kHttp ? "http" : "line"; }
  // uv_hrtime() when the current request became complete.
  uint64_t ready_at_ns() const { return ready_at_ns_; }
  // For the access log: the first line of the request a handler got last, cut short; "-" once it has been
  // logged (the next answers of the same hand-off are pipelined requests the reactor did not read). A request
  // no handler got yet (refused, timed out in the queue or while read) gives the first line of what was read.
  std::string take_request_line();
  double queue_wait_ms() const { return queue_wait_ms_; }
  void set_queue_wait_ms(double ms) { queue_wait_ms_ = ms; }

  // The budget has room again: read on, if the connection is still paused (else false).
  bool resume_reading();
  // Reading a request of which it holds more than a small one (ReadBudget::small_request_bytes), and no byte
  // came since since_ms (the loop's clock), while it was free to read: an upload that stalled.
  bool stalled_upload(uint64_t since_ms) const {
    return state_ == State::kReading && received_.size() >= budget_.small_request_bytes() &&
           last_input_ms_ < since_ms;
  }

  // Takes the request for a handler; request_id: the reactor's number for it.
  Request take_request(uint64_t request_id);
  // The request it took last was given to a second handler, its first having died (--retry-crashed): it is
  // not run a third time. Until the next request is taken.
  bool ran_again() const { return ran_again_; }
  // It waits for its second handler from now on (--queue-timeout counts from here).
  void set_ran_again() {
    ran_again_ = true;
    ready_at_ns_ = uv_hrtime();
  }

  // A handler finished its turn with the connection, having written bytes_written to it.
  void count_handler_bytes(uint64_t bytes_written) { bytes_written_ += bytes_written; }

  // The handler is done and the client may send more: unconsumed is what the handler read but did not use.
  // What the client sent meanwhile is read at once (its edge is spent), if an edge says it sent anything.
  // kReady when that makes a complete request, kClientLeft when the client is gone; on_request_ready and
  // on_client_left are not called then.
  Resume resume(std::string unconsumed);

  // What the socket has sent in the hand-off of a handler that died before it reported the connection back,
  // having reported answered_bytes of complete answers and noted (ipc/answer_record.hpp) that an answer would
  // end at noted_end (0: none noted).
  enum class Sent {
    kReported,        // Exactly what the handler reported: nothing of an unreported answer is on the wire.
    kNotedAnswer,     // Exactly up to noted_end: the noted answer went out whole.
    kPartOfAnAnswer,  // Anything else, or not known.
  };
  // On a Unix socket, which counts no bytes sent, the verdict rests on the answer record alone: kReported
  // when no answer was noted past answered_bytes, else kPartOfAnAnswer.
  Sent sent_after(uint64_t answered_bytes, uint64_t noted_end) const;
  bool on_unix_socket() const;

  // Writes the reactor's own answer to the current request, in the connection's protocol, best effort (the
  // connection closes next); returns the bytes the socket took.
  uint64_t refuse(Refusal refusal);
  // The HTTP request is not acceptable (malformed, too large, an unknown method or version: the strict
  // parser's verdict), or the connection's PROXY header is (ProxyHeaderRule); refuse_request() answers the
  // request (a bad PROXY header gets no answer: the peer speaks no protocol of ours yet), and the connection
  // closes next.
  bool request_refused() const { return framing_.refused() || !proxy_refusal_.empty(); }
  int refusal_status() const { return proxy_refusal_.empty() ? framing_.refusal_status() : 400; }
  const std::string& refusal_reason() const {
    return proxy_refusal_.empty() ? framing_.refusal_reason() : proxy_refusal_;
  }
  uint64_t refuse_request();  // Returns the bytes the socket took.
  // Sends the client a FIN now (shutdown(SHUT_WR)), even if another process still holds the socket.
  void end_output();
  // A copy of the socket was sent ahead to a handler and taken back: it may still wait, unread, in that
  // handler's channel, so close() ends the output first.
  void set_copy_in_flight() { copy_in_flight_ = true; }
  // The handler that kept its copy of the socket when it last reported the connection done (ipc kFlagKept),
  // if one did and has not been told to forget it: its next request goes there without a descriptor. While
  // another process holds the socket, close() ends the output first and takes the socket out of epoll.
  std::optional<HandlerId> kept_by() const { return kept_by_; }
  void set_kept_by(std::optional<HandlerId> handler) {
    kept_by_ = handler;
    if (handler) copy_in_flight_ = true;
  }

  // Gives the socket up to the reactor that takes over, with what was read of it that no handler took; before
  // (a request kept, or what a handler read and did not use) comes first in the bytes. Deletes itself
  // afterwards.
  PassedConnection release_to_successor(std::string before);

  // Closes the reactor's copy. When the client sent input that nobody read (it is still sending a request
  // that was refused), the socket is shut down for writing and that input drained for a moment first: closing
  // with unread input sends a reset, which can destroy the last answer before the client reads it (nginx's
  // lingering_close). Deletes itself afterwards.
  void close();

 private:
  friend struct CloseOnLoop;
  ~Connection() = default;

  // What reading the socket came to.
  enum class Input {
    kWouldBlock,  // All read; the next edge says when there is more.
    kPaused,      // The budget is spent: resume_reading says when to read on.
    kReady,       // A request is ready (complete, a line ended by EOF, or refused).
    kLeft,        // EOF before any byte of a request, or an error: the client is gone.
  };

  // SocketPoller::Watcher.
  void on_socket_event(uint32_t events) override;
  void watch();
  void unwatch();
  void read_request();
  Input read_available();
  // Enters state (kQueued or kServed), in which only the client's end is watched.
  void watch_for_leaving(State state);
  void check_client_left();
  // Input edges back on after quiet_input_while_served; the caller reads first (the edge contract).
  void hear_input_again();
  // What close and release_to_successor begin with: every wait ends, and the bytes held of a request go back
  // to the budget; returns them.
  std::string end_waits();
  void expire_after(Milliseconds timeout, Expiry expiry);
  void stop_timer();
  bool request_ready() const;
  size_t read_cap() const;
  void write_record(uint64_t request_id, std::string_view raw, std::string& record);
  void finish_framing();
  void frame_received();
  void account_received();
  bool has_unread_input() const;
  void drain_and_close();
  void close_handles();
  uint64_t send_refusal(const std::string& message);
  // The client: the one its PROXY header named, else the peer (getpeername, once, when first asked).
  const ListenAddress& client();
  // Before the first request, by proxy_rule_: takes the PROXY header off received_ and notes the client it
  // names, or refuses the connection (proxy_refusal_). kWouldBlock while the header is not whole, kReady
  // when the connection is refused, nullopt when the request is read as ever.
  std::optional<Input> take_proxy_header();
  std::optional<Input> refuse_proxy_header();
  // The bytes of a PROXY v1 header that name the client the connection's header named, for the reactor
  // that takes over: it reads the header again, as the balancer sent it.
  std::string proxy_header_again() const;

  const ConnectionId id_;
  ipc::UniqueFd socket_;
  const Config& config_;
  Events& events_;
  SocketPoller& poller_;
  SocketPoller::Key key_ = 0;
  uv_timer_t timer_;
  Expiry pending_expiry_ = Expiry::kIdle;
  std::string received_;  // Of the next request, not handed to a handler yet.
  RequestFraming framing_;
  size_t framed_bytes_ = 0;    // Of received_, how many framing_ has seen.
  size_t budgeted_bytes_ = 0;  // Of received_, how many budget_ counts.
  ReadBudget& budget_;
  std::string peer_ = "-";
  std::optional<ListenAddress> client_;  // The client's address and port, once a request needed them.
  ProxyHeaderRule proxy_rule_;           // Until the header is taken (or known absent); then kNone.
  bool proxy_peer_trusted_ = false;      // It came with ProxyHeaderRule::kRequired.
  bool ran_again_ = false;               // ran_again().
  bool passed_ran_again_ = false;        // ConnectionStart::ran_again, until its request is taken.
  bool proxy_named_client_ = false;      // client_ is what the connection's PROXY header said.
  std::string proxy_refusal_;            // Why its PROXY header is refused; empty: it is not.
  std::string request_line_ = "-";
  uint64_t ready_at_ns_ = 0;
  // On the loop's clock (uv_now, milliseconds: no clock read of its own on the hot path). When the first byte
  // of the request being read came (0: none yet); and its last read that got bytes, or the start of its
  // watch or of a resume (bytes it did not read itself are no stall).
  uint64_t request_began_ms_ = 0;
  uint64_t last_input_ms_ = 0;
  double queue_wait_ms_ = 0;
  Protocol protocol_ = Protocol::kUnknown;  // Decided by the first bytes, then kept.
  State state_ = State::kStopped;
  // In kQueued and kServed: the client's end was looked at (or its input had closed) and is not again, until
  // the state is entered anew.
  bool leaving_checked_ = false;
  bool hangup_seen_ = false;     // An edge said EPOLLRDHUP, EPOLLHUP or EPOLLERR (it will not again).
  bool copy_in_flight_ = false;  // set_copy_in_flight: a handler may hold a copy.
  std::optional<HandlerId> kept_by_;
  bool input_closed_ = false;  // The client sent EOF (or reset the connection).
  bool polled_ = false;        // The socket is in poller_.
  bool input_quiet_ = false;   // The poller reports no input edges (quiet_input_while_served).
  // The socket may hold bytes the reactor has not read: an input edge came since its last read that drained
  // it (a short read, or one that would block), or that read did not drain it (a full chunk). Resuming a
  // connection reads first only then: a request's last read usually drains the socket, and the next request's
  // edge, whether it comes before or after the hand-off ends, is seen.
  bool may_have_input_ = true;
  uint64_t bytes_written_ = 0;  // By handlers in their finished turns, and the reactor's "100 Continue":
                                // all the socket sent before the reactor's last answer.
};

}  // namespace handoff::reactor
