#pragma once

// Internal to the reactor. Takeover: a new reactor takes the running one's place, and no connection is
// dropped (docs/operations.md, "Upgrading the reactor"). On SIGUSR2 the running reactor starts its successor:
// the executable path and the arguments it was itself started with, so that a rebuilt or reinstalled binary
// goes live, with one end of a socketpair at descriptor 3, named in HANDOFF_TAKEOVER_FD. Then:
//
//   1. The old reactor has sent its listening sockets (kTakeoverListener) before the successor starts. It
//      keeps accepting on them too.
//   2. The successor starts its handlers. Once they are ready it accepts on those sockets, and says so
//      (kTakeoverReady). Until then it accepts nothing, so that one which fails costs no connection.
//   3. The old reactor stops accepting and passes every connection no handler holds, with the bytes it read
//      of it that no handler took (kTakeoverConnection, then kTakeoverBytes for what does not fit in one
//      frame); the successor reads each on from there. A connection that a handler serves follows once the
//      handler is done with it. The frames wait in an outbox and go out as the channel takes them: the old
//      reactor's loop never waits for the successor, and serves the connections not passed yet meanwhile.
//   4. With no connection left, the old reactor says kTakeoverEnd, and exits once its handlers have and the
//      outbox is empty.
//
// A successor that fails before it is ready (it cannot start, its handlers do not, or it is not ready in
// time) leaves the old reactor as it was: it never stopped accepting; it is killed and reaped. One that dies
// after it was ready loses the connections it took; the old reactor then serves on with the rest, those
// still in the outbox included. What bounds a hand-over: --shutdown-timeout from the successor's readiness
// for the requests in progress (then they are cut off, as at a stop), and a successor that takes no byte of
// the outbox for --shutdown-timeout, or breaks the channel, is killed.

#include <uv.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "ipc/blocking_channel.hpp"
#include "ipc/unique_fd.hpp"
#include "reactor/config.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/passed_connection.hpp"

namespace handoff::reactor {

// The environment variable in which a reactor tells its successor the descriptor of their channel.
inline constexpr const char* kTakeoverFdVariable = "HANDOFF_TAKEOVER_FD";
// And the one in which it tells the size of its pool: the successor keeps the size in force (POST /pool,
// SIGTTIN), not --handlers.
inline constexpr const char* kTakeoverHandlersVariable = "HANDOFF_TAKEOVER_HANDLERS";

// The old reactor's end: the successor process and the channel to it.
class Successor {
 public:
  class Events {
   public:
    // The successor accepts on the listening sockets: the connections may follow.
    virtual void on_successor_ready(Successor& successor) = 0;
    // It exited, or closed the channel, before it was ready.
    virtual void on_successor_failed(Successor& successor) = 0;
    // It took every connection passed to it, and kTakeoverEnd.
    virtual void on_successor_took_all(Successor& successor) = 0;
    // It exited after it was ready: the connections it took are lost; unpassed are those passed to it whose
    // first frame it had not taken whole (their sockets come back), and the others are still here.
    virtual void on_successor_lost(Successor& successor, std::vector<PassedConnection> unpassed) = 0;

   protected:
    ~Events() = default;
  };

  struct Options {
    std::vector<std::string> argv;  // argv[0] is started: the binary now at the reactor's path.
    std::vector<int> serve;         // The listening sockets, borrowed; admin may be -1.
    int admin = -1;
    unsigned pool_size = 0;        // The handlers the successor starts.
    Milliseconds ready_timeout{};  // One not ready this long after its start is killed.
    Milliseconds stall_timeout{};  // One that takes nothing of the outbox this long is killed.
  };

  // Sends the listening sockets, then starts the successor. One that is not ready in time is killed (it
  // holds no connection yet). The failed call is logged.
  static std::error_code start(uv_loop_t* loop, Options options, Events& events,
                               LoopOwned<Successor>& successor);

  int pid() const { return process_.pid; }
  bool ready() const { return ready_; }

  // Passes a client connection on: its frames join the outbox, and go out as the channel takes them. The
  // outbox owns the socket until its first frame is taken whole; then the successor does. A successor that
  // breaks the channel or takes nothing for the stall timeout is killed (logged): its exit gives the
  // connections not taken back (on_successor_lost).
  void pass(PassedConnection connection);
  // A stop began before the successor was ready: it is asked to stop too (SIGTERM); it holds no connection.
  void stop();
  // Every connection has been passed: kTakeoverEnd follows them, and on_successor_took_all once it is taken.
  void finish();

  // Lets the successor be (it runs on); what the outbox holds is sent first, and one that never got ready is
  // killed (unless a stop asked it to exit) and reaped first. The object deletes itself once that is done
  // and libuv is done with it.
  void close();

 private:
  friend struct CloseOnLoop;
  Successor(ipc::UniqueFd channel, Events& events, Milliseconds stall_timeout);
  ~Successor() = default;

  // A frame in the outbox, and how much of it the channel took. Its descriptor goes with its first byte, and
  // is kept until the frame is taken whole: a successor that dies before that never had the connection.
  struct Outgoing {
    std::string frame;
    ipc::UniqueFd descriptor;
    size_t sent = 0;
  };
  void queue(ipc::Message message);
  void flush();
  void flush_unless_waiting();
  // The channel broke or stalled: the successor is killed, and the outbox kept for its exit.
  void give_up_passing(const std::string& why);
  // The connections of the outbox whose first frame was not taken whole; the outbox is emptied.
  std::vector<PassedConnection> take_back_unpassed();
  void on_channel_readable();
  void on_exit(int64_t exit_status, int term_signal);
  void fail_unless_ready();
  void close_if_done();

  ipc::BlockingChannel channel_;  // Blocking until the successor runs, then non-blocking (uv_poll).
  Events& events_;
  const Milliseconds stall_timeout_;
  std::deque<Outgoing> outbox_;
  uint64_t passed_ = 0;  // Connections passed: the connection_id of their frames.
  uv_process_t process_{};
  uv_poll_t channel_poll_{};
  uv_timer_t ready_timer_{};
  uv_timer_t
      stall_timer_{};  // Runs while the outbox waits for room; restarts whenever the channel takes some.
  bool spawned_ = false;
  bool exited_ = false;
  bool polling_ = false;
  bool ready_ = false;
  bool failed_ = false;
  bool send_failed_ = false;
  bool asked_to_stop_ = false;    // stop() sent SIGTERM: close() lets it exit by itself.
  bool finishing_ = false;        // kTakeoverEnd is in the outbox.
  bool closing_ = false;          // close() was called: no event is reported any more.
  bool handles_closing_ = false;  // The object deletes itself in their close callbacks.
};

// The new reactor's end: the channel from the reactor it takes over from.
class Predecessor {
 public:
  // Receives each connection the old reactor passes: the socket (non-blocking, close-on-exec) and the rest.
  using AdoptCallback = std::function<void(PassedConnection connection)>;

  // The pool size the old reactor had (HANDOFF_TAKEOVER_HANDLERS), within 1..max, for a reactor started to
  // take over (HANDOFF_TAKEOVER_FD set); nullopt when none is given or it is out of range (logged). The
  // variable is unset.
  static std::optional<unsigned> pool_size_from_environment(unsigned max);

  // The channel named in HANDOFF_TAKEOVER_FD: nullopt when this reactor was not started to take over. The
  // variable is unset, so that no handler takes it for its own.
  static std::optional<ipc::UniqueFd> channel_from_environment();

  // Receives the listening sockets the old reactor sent (blocking, for at most kListenersTimeoutSeconds).
  // The failed call is logged.
  static std::error_code receive_listeners(ipc::BlockingChannel& channel, ListenSockets& sockets);

  // Create with make_loop_owned once the handlers are ready: says so to the old reactor, then adopts every
  // connection it sends until kTakeoverEnd, or until it closes the channel.
  Predecessor(uv_loop_t* loop, ipc::BlockingChannel channel, AdoptCallback adopt);

  bool finished() const { return finished_; }
  void close();

 private:
  friend struct CloseOnLoop;
  ~Predecessor() = default;

  void on_channel_readable();
  // Takes one kTakeoverConnection or kTakeoverBytes frame; false when it breaks the order of those frames.
  bool take(ipc::Message message);
  void end(const char* how);

  static constexpr int kListenersTimeoutSeconds = 10;
  ipc::BlockingChannel channel_;  // Non-blocking once ready: receive says "try again" mid-frame.
  AdoptCallback adopt_;
  std::optional<PassedConnection> arriving_;  // Its kTakeoverBytes frames are still to come.
  uint64_t arriving_id_ = 0;
  uv_poll_t channel_poll_{};
  size_t adopted_ = 0;
  bool finished_ = false;
};

}  // namespace handoff::reactor
