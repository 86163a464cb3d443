#pragma once

// Internal to the reactor. HandlerProcess: one handler child. It starts the child with its channel at
// descriptor 3, speaks the handler protocol over that channel (a HandlerChannel moves the frames), times its
// requests, and is told when it exits (libuv reaps it). What was sent ahead to it is kept by AheadOffers, the
// sockets it keeps between hand-offs by KeptCopies. It never decides what to hand out: the Frontend and the
// Dispatcher do, and the HandlerPool decides its life.

#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "ipc/answer_record.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"
#include "reactor/config.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/forked_process.hpp"
#include "reactor/handler_channel.hpp"
#include "reactor/handler_output.hpp"
#include "reactor/kept_copies.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/route_table.hpp"
#include "reactor/send_ahead.hpp"

namespace handoff::reactor {

class HandlerProcess final : HandlerChannel::Events {
 public:
  class Events {
   public:
    // The handler said hello: it is ready for its first connection.
    virtual void on_handler_ready(HandlerProcess& handler) = 0;
    // The handler answered a request (status as HTTP says it), having worked on it for service_ms; with
    // more_follows (kAnswered) it goes on with the connection (a pipelined request, or it lingers).
    virtual void on_request_answered(HandlerProcess& handler, int status, double service_ms,
                                     bool more_follows) = 0;
    // The handler reported it is done with a connection.
    virtual void on_handler_done(HandlerProcess& handler, ipc::Message done) = 0;
    // Its channel broke (it is gone, or broke the protocol): it takes no more work, and its exit follows.
    virtual void on_handler_broken(HandlerProcess& handler) = 0;
    // The process exited and was reaped: drop the HandlerProcess now.
    virtual void on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) = 0;

   protected:
    ~Events() = default;
  };

  // Create with make_loop_owned (reactor/loop_owned.hpp), then spawn. batches (borrowed) outlives it.
  HandlerProcess(uv_loop_t* loop, HandlerId id, const Config& config, WriteBatches& batches, Events& events);

  // Starts the child: argv[0] is its executable, environment extends the reactor's own, and it inherits
  // state_page (borrowed; ipc/shared_state.hpp) at kHandlerStateFd and an answer record of its own at
  // kHandlerRecordFd. Its stdout and stderr are the reactor's stderr, or with --log-format json a pipe of its
  // own that the reactor logs as JSON records (reactor/handler_output.hpp), read to the end at its exit. The
  // failed call is logged; after a failure the object only needs closing.
  std::error_code spawn(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
                        int state_page);
  // The same, forked from a template (--preload) rather than started: it inherited the state page from the
  // template, and serves once the template forked it and it said hello; with --log-format json the template
  // gives it its own output pipe, else it writes where the template does. A failure shows as its exit.
  std::error_code fork_from(HandlerTemplate& from);

  HandlerId id() const { return id_; }
  // 0 until a template reported the fork of a forked handler.
  int pid() const { return forked_.started() ? forked_.pid() : process_.pid; }
  bool said_hello() const { return said_hello_; }
  // Milliseconds on the loop's clock when the process was started.
  uint64_t started_at() const { return started_at_; }
  // Requests answered since the process started.
  uint64_t requests_served() const { return requests_served_; }
  // Whether it serves a connection now, and since when (uv_hrtime) it works on the current request.
  bool busy() const { return busy_; }
  uint64_t request_started_ns() const { return request_started_ns_; }
  // The time between its last two answers: under saturation, what one request costs it.
  uint64_t answer_interval_ns() const { return answer_interval_ns_; }
  // Bytes written to the current connection in this hand-off, as the handler last reported (kAnswered, or
  // kDone at the end).
  uint64_t answered_bytes() const { return answered_bytes_; }
  // The bytes of the answer reported last (on_request_answered): what its report added to answered_bytes.
  uint64_t last_answer_bytes() const { return last_answer_bytes_; }
  // The number of the route or command that made the answer reported last, in its route table (0: none).
  uint16_t last_answer_route() const { return last_answer_route_; }
  // Its route table, from its hello (reactor/route_table.hpp); empty before the hello, and for a handler
  // that names no routes. The name of a route number: null for 0 and for a number the table does not have.
  const RouteTable& routes() const { return *routes_; }
  const std::string* route_name(uint16_t route) const { return routes_->name(route); }
  // Whether its hello marked name, a line command ("fib" for the line "fib 30"), as safe to run again on
  // another handler (ipc::kRouteRetryable).
  bool retryable_command(std::string_view name) const { return routes_->retryable_command(name); }
  // The last answer the handler noted, in its answer record, that it was writing to connection in this
  // hand-off (ipc/answer_record.hpp); read once the handler died without reporting the connection back.
  std::optional<ipc::NotedAnswer> last_noted_answer(ConnectionId connection) const {
    return answer_record_.last_noted(connection);
  }
  // It waits on its connection for the client's next request (--linger), having read nothing of it: a
  // request that waits may take it back (reclaim), and if it dies now, no request was lost.
  bool lingering() const { return busy_ && answer_record_.lingering(current_); }
  // Asks a lingering handler to end its hand-off of connection now (kReclaim); once a hand-off. False when
  // asked already, or when it is not busy.
  bool reclaim(ConnectionId connection);

  // Tells the handler, in its answer record, that the client of connection left (Request::cancelled()), so
  // that its code may stop early; the first time in this hand-off, client_left_ns() starts (--cancel-grace).
  void tell_client_left(ConnectionId connection);
  // When (uv_hrtime) it was first told, in this hand-off, that its client left; 0: not told. Its answers from
  // then on go to nobody.
  uint64_t client_left_ns() const { return client_left_ns_; }
  // Kills the handler because the client of its request left before any answer began and it did not end the
  // request within --cancel-grace (counted apart from crashes, and no sign of a bad start).
  void cancel();
  bool cancelled() const { return cancelled_; }
  // Whether the process was killed for exceeding --request-timeout.
  bool timed_out() const { return timed_out_; }

  // A retiring handler gets no more work; it is told to exit once it is idle (the pool decides when).
  bool retiring() const { return retiring_; }
  bool exited() const { return exited_; }
  // Its channel broke (a send found it gone, or it broke the protocol): its exit is on the way.
  bool broken() const { return broken_; }
  void set_retiring() { retiring_ = true; }

  // Hands a client socket to the handler, with the bytes read from it so far (ipc kConnection). The handler
  // gets its own copy of the socket; the caller keeps client_socket open at least until the handler reports.
  // If a request of it takes longer than --request-timeout, the handler is killed.
  void send_connection(ConnectionId connection, int client_socket, std::string bytes, uint32_t flags);
  // The same for a busy handler that takes connections ahead: it takes this one once done with its current
  // connection, unless withdraw_ahead succeeds first. The caller keeps client_socket open and the request's
  // bytes at hand until it knows which.
  void send_ahead(ConnectionId connection, int client_socket, std::string bytes, uint32_t flags);
  // Whether a frame sent to it now goes in one write with a frame sent before it.
  bool joins_batch() const { return channel_.joins_batch(); }
  // Takes back a connection sent ahead to it: true when this handler will not serve it (it had not taken it
  // yet).
  bool withdraw_ahead(ConnectionId connection);
  // It reported its current connection done and goes on with connection, the oldest one sent ahead: from
  // now on that is its current connection, and its request timer runs.
  void begin_offered(ConnectionId connection);
  // For a handler that died: true when its current connection came ahead and it had not taken it yet (then
  // nothing of it was begun, and it is withdrawn now).
  bool withdraw_unbegun(ConnectionId connection) { return offers_.withdraw_unbegun(connection); }
  // How many connections it can hold sent ahead at once, as it said in its hello.
  unsigned ahead_capacity() const { return offers_.capacity(); }

  // Whether it kept its copy of connection's socket when it last reported the connection done (ipc
  // kFlagKept): then the connection goes to it again without a descriptor.
  bool keeps(ConnectionId connection) const { return kept_.contains(connection); }
  // Asks it to close its kept copy of connection (ipc kForget): the connection closes, or another handler
  // serves it. Sent now when the handler is idle, otherwise with the next frame or once it reports.
  void forget(ConnectionId connection);

  // Closes the reactor's end of the channel: the handler reads EOF when it next waits for work, and exits.
  void end_channel() { channel_.end(); }

  void kill(int signal);
  // The handler said something its books refute (a report of a connection it was not given): nothing more of
  // it is read, and it is killed (counted as broken).
  void reject(std::string why) { break_off(std::move(why)); }
  // Kills the handler with SIGKILL for a reason of the reactor's, which kill_reason() keeps (the first given)
  // for the one log line of its exit.
  void kill_for(std::string reason);
  // Why the reactor killed it ("it exceeded --request-timeout (30000 ms)"); empty when it did not.
  const std::string& kill_reason() const { return kill_reason_; }

  // How many requests it serves before it retires: --max-requests plus this handler's own jitter, drawn once
  // when it starts; 0 for no limit.
  uint64_t request_limit() const { return request_limit_; }
  void set_request_limit(uint64_t limit) { request_limit_ = limit; }

  void close();  // Deletes the object once libuv is done with it; call after on_handler_exited.

 private:
  friend struct CloseOnLoop;
  ~HandlerProcess() = default;

  // HandlerChannel::Events.
  void on_frame(ipc::Message message) override;
  void on_channel_broken(std::string why) override { break_off(std::move(why)); }

  // Its hello: flags, its capabilities; payload, its route table.
  void on_hello(ipc::Message hello);
  // Its template reported the fork: its pid is known.
  void on_forked();
  void on_progress(ipc::Message message, const ipc::Progress& progress);
  // From now on it serves connection: its bookkeeping and its request timer start.
  void begin_hand_off(ConnectionId connection);
  // Sends message, with client_socket (borrowed, -1 for none), and the kForget frames due after it.
  void send_frame(const ipc::Message& message, int client_socket);
  // The kForget frames due, now.
  void send_forgets();
  void start_request_timer();
  void on_request_timeout();
  void start_start_timer();
  // The handler's end of a fresh channel, with the reactor's end read from now on, and its answer record.
  std::error_code open_channel(ipc::UniqueFd& child_end);
  // With --log-format json, its output pipe, whose write end becomes its stdout and stderr; else nothing.
  std::error_code open_output(ipc::UniqueFd& write_end);
  // The process is gone (libuv or the template reaped it, or it was never forked).
  void on_exit(int64_t exit_status, int term_signal);
  // Stops reading the channel and kills the handler for why. Empty why: its channel closed (it exits, or the
  // reactor ended the channel), and it is killed only if it has not exited kExitGraceMs later.
  void break_off(std::string why);
  void lower_priority();

  uv_loop_t* loop_;
  const HandlerId id_;
  const Config& config_;
  Events& events_;
  uv_process_t process_{};  // Started with uv_spawn; else forked_ is.
  ForkedProcess forked_;
  uv_timer_t request_timer_{};
  // Runs once its channel closed (break_off without a reason): it is exiting, and is killed only if it has
  // not exited kExitGraceMs later. A SIGKILL at once would race its own exit and hide how it ended.
  uv_timer_t exit_timer_{};
  static constexpr uint64_t kExitGraceMs = 2000;
  ipc::AnswerRecord answer_record_;  // Inherited by the child at kHandlerRecordFd.
  HandlerChannel channel_;
  HandlerOutput output_;  // Opened with --log-format json only.
  AheadOffers offers_{answer_record_};
  KeptCopies kept_;
  uint64_t started_at_ = 0;
  uint64_t requests_served_ = 0;
  uint64_t answered_bytes_ = 0;
  uint64_t last_answer_bytes_ = 0;
  uint16_t last_answer_route_ = 0;
  std::shared_ptr<const RouteTable> routes_ = std::make_shared<RouteTable>();
  uint64_t request_started_ns_ = 0;
  uint64_t client_left_ns_ = 0;  // In this hand-off; see client_left_ns().
  uint64_t last_answer_ns_ = 0;
  uint64_t answer_interval_ns_ = 0;
  ConnectionId current_ = 0;  // While busy_.
  bool said_hello_ = false;
  std::optional<ipc::Message> early_hello_;  // A forked handler's hello, read before its pid was known.
  bool busy_ = false;
  bool reclaimed_ = false;  // kReclaim was sent in this hand-off.
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool retiring_ = false;
  bool broken_ = false;
  bool exited_ = false;
  std::string kill_reason_;
  uint64_t request_limit_ = 0;
};

}  // namespace handoff::reactor
