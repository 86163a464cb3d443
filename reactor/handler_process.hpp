#pragma once

// Internal to the reactor. HandlerProcess: one handler child and the reactor's end of its channel. It starts
// the child with the channel at descriptor 3, sends it connections, decodes its reports, and is told when it
// exits (libuv reaps it). It never decides what to hand out: the Server and its Dispatcher do.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "ipc/answer_record.hpp"
#include "ipc/frame_decoder.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"
#include "reactor/config.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

class HandlerProcess {
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

  // Create with make_loop_owned (reactor/loop_owned.hpp), then spawn.
  HandlerProcess(uv_loop_t* loop, HandlerId id, const Config& config, Events& events);

  // Starts the child: argv[0] is its executable, environment extends the reactor's own, and it inherits
  // state_page (borrowed; ipc/shared_state.hpp) at kHandlerStateFd and an answer record of its own at
  // kHandlerRecordFd. The failed call is logged; after a
  // failure the object only needs closing.
  std::error_code spawn(const std::vector<std::string>& argv, const std::vector<std::string>& environment,
                        int state_page);

  HandlerId id() const { return id_; }
  int pid() const { return process_.pid; }
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

  // Kills the handler because the client of its request left before any answer began (counted apart from
  // crashes, and no sign of a bad start).
  void cancel();
  bool cancelled() const { return cancelled_; }
  // Whether the process was killed for exceeding --request-timeout.
  bool timed_out() const { return timed_out_; }

  // A retiring handler gets no more work; it is told to exit once it is idle (the Server decides when).
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
  // Whether a frame queued now goes in one write with a frame queued before it: a batch is being gathered
  // (the reactor reads this handler's reports) and has room.
  bool gathering_batch() const {
    return batching() && !batch_.empty() && batch_descriptors_.size() < ipc::kMaxDescriptorsPerWrite;
  }
  // Takes back a connection sent ahead to it: true when this handler will not serve it (it had not taken it
  // yet).
  bool withdraw_ahead(ConnectionId connection);
  // It reported its current connection done and goes on with connection, the oldest one sent ahead: from
  // now on that is its current connection, and its request timer runs.
  void begin_ahead(ConnectionId connection);
  // For a handler that died: true when its current connection came ahead and it had not taken it yet (then
  // nothing of it was begun, and it is withdrawn now).
  bool withdraw_unbegun(ConnectionId connection) {
    return begun_offer_ && begun_offer_->connection == connection &&
           answer_record_.withdraw(begun_offer_->slot, ipc::offer_word(connection, begun_offer_->number));
  }
  // How many connections it can hold sent ahead at once, as it said in its hello: 0 (it takes none), 1, or
  // one less than the answer record's offer slots (kFlagTakesAheadDeep).
  unsigned ahead_capacity() const;

  // Whether it kept its copy of connection's socket when it last reported the connection done (ipc
  // kFlagKept): then the connection goes to it again without a descriptor. It keeps at most
  // kMaxKeptConnections, and only if it said in its hello that it can.
  bool keeps(ConnectionId connection) const { return kept_.contains(connection); }
  static constexpr size_t kMaxKeptConnections = 256;
  // Asks it to close its kept copy of connection (ipc kForget): the connection closes, or another handler
  // serves it. Sent now when the handler is idle, otherwise with the next frame or once it reports.
  void forget(ConnectionId connection);

  // Closes the reactor's end of the channel: the handler reads EOF when it next waits for work, and exits.
  void end_channel();

  void kill(int signal);
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

  // From now on it serves connection: its bookkeeping and its request timer start.
  void begin_hand_off(ConnectionId connection);
  void on_message(ipc::Message message);
  void start_request_timer();
  void on_request_timeout();
  void on_channel_event(int status, int events);
  // Reads up to max_reads times and acts on each frame; what that sends the handler goes in one write.
  void read_channel(int max_reads);
  void read_frames(int max_reads);
  // Reads every frame still in the channel: the handler is gone or going.
  void read_rest_of_channel();
  void flush_outbox();
  void start_start_timer();
  // Stops reading the channel and kills the handler for why. Empty why: its channel closed (it exits, or the
  // reactor ended the channel), and it is killed only if it has not exited kExitGraceMs later.
  void break_off(std::string why);
  void update_polling();
  void lower_priority();
  // The flags and descriptor of a kConnection frame for connection: without a descriptor when the handler
  // kept its copy, and asking it to keep its copy when it can.
  uint32_t keep_flags(ConnectionId connection, int& client_socket);
  void send_forgets();

  uv_loop_t* loop_;
  const HandlerId id_;
  const Config& config_;
  Events& events_;
  uv_process_t process_{};
  uv_poll_t channel_poll_{};
  uv_timer_t request_timer_{};
  // Runs once its channel closed (break_off without a reason): it is exiting, and is killed only if it has
  // not exited kExitGraceMs later. A SIGKILL at once would race its own exit and hide how it ended.
  uv_timer_t exit_timer_{};
  static constexpr uint64_t kExitGraceMs = 2000;
  ipc::UniqueFd channel_;
  ipc::AnswerRecord answer_record_;  // Inherited by the child at kHandlerRecordFd.
  ipc::FrameDecoder decoder_;
  // Writes not yet taken by the channel, each with copies of the descriptors that go with its first byte,
  // until that byte is sent.
  struct Outgoing {
    std::string bytes;
    std::vector<ipc::UniqueFd> descriptors;
  };
  // Sends the frame now as far as the channel takes it, with descriptor (borrowed; -1 for none) attached to
  // its first byte; the rest waits in the outbox. While the channel is read (corked_), a handler that takes
  // batches gets it in the batch instead.
  void queue_frame(const ipc::Message& message, int descriptor);
  // Sends the batch as one write, as far as the channel takes it; the rest waits in the outbox.
  void send_batch();
  // As much of bytes as the channel takes now, descriptors attached to the first byte; breaks off on an
  // error.
  size_t send_now(std::string_view bytes, std::span<const int> descriptors);
  // Puts what the channel did not take of a write in the outbox: with copies of its descriptors of the
  // outbox's own when none of it was sent (their connections may close before it goes).
  void keep_unsent(std::string_view rest, std::span<const int> descriptors, bool any_sent);
  std::deque<Outgoing> outbox_;
  // Frames queued while its reports are read, sent in one write once they are: the requests their answers
  // make room for (kFlagTakesBatches). The descriptors are borrowed: a Connection closes its socket in a
  // libuv close callback, after the callback that read the reports has sent the batch; the one close that is
  // at once (a connection passed to a new reactor) takes only a connection just reported or withdrawn, and a
  // withdrawal sends the batch first.
  bool corked_ = false;
  bool takes_batches_ = false;
  // Frames queued now go in the batch: its reports are being read, and nothing waits in the outbox.
  bool batching() const { return corked_ && takes_batches_ && outbox_.empty(); }
  std::string batch_;
  std::vector<int> batch_descriptors_;
  bool said_hello_ = false;
  bool takes_ahead_ = false;
  // (kFlagTakesAheadDeep)
  bool keeps_connections_ = false;
  std::unordered_set<ConnectionId> kept_;  // The connections it holds a copy of between hand-offs.
  std::vector<ConnectionId> forgets_;      // Of those, the ones it is to close: sent with the next frame.
  bool takes_ahead_deep_ = false;
  // A connection sent ahead: the slot of the answer record its offer is in, and the offer's number.
  struct Offer {
    ConnectionId connection;
    unsigned slot;
    uint32_t number;
  };
  std::deque<Offer> offers_;  // Sent ahead and not begun (nor withdrawn), oldest first.
  uint32_t last_offer_number_ = 0;
  std::optional<Offer> begun_offer_;  // The current connection's, when it came ahead.
  uint64_t started_at_ = 0;
  uint64_t requests_served_ = 0;
  uint64_t answered_bytes_ = 0;
  uint64_t request_started_ns_ = 0;
  uint64_t last_answer_ns_ = 0;
  uint64_t answer_interval_ns_ = 0;
  bool busy_ = false;
  ConnectionId current_ = 0;  // While busy_.
  bool reclaimed_ = false;    // kReclaim was sent in this hand-off.
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool retiring_ = false;
  bool broken_ = false;
  // It was found gone by a send (EPIPE): what it wrote before it died is still read at its exit, since a
  // report may be on its way while the reactor sends ahead.
  bool gone_with_reports_ = false;
  bool exited_ = false;
  bool channel_polled_ = false;  // channel_poll_ is initialised.
  int polled_events_ = 0;        // The events channel_poll_ watches now.
  bool channel_ended_ = false;
  std::string kill_reason_;
  uint64_t request_limit_ = 0;
};

}  // namespace handoff::reactor
