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
//   3. The old reactor stops accepting and sends every connection no handler holds, with the bytes it read of
//      it that no handler took (kTakeoverConnection); the successor reads each on from there. A connection
//      that a handler serves follows once the handler is done with it.
//   4. With no connection left, the old reactor says kTakeoverEnd, and exits once its handlers have.
//
// A successor that fails before it is ready (it cannot start, its handlers do not, or it is not ready in
// time) leaves the old reactor as it was: it never stopped accepting. One that dies after it was ready loses
// the connections passed to it; the old reactor then serves on with the rest.

#include <uv.h>

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

namespace handoff::reactor {

// The environment variable in which a reactor tells its successor the descriptor of their channel.
inline constexpr const char* kTakeoverFdVariable = "HANDOFF_TAKEOVER_FD";

// The old reactor's end: the successor process and the channel to it.
class Successor {
 public:
  class Events {
   public:
    // The successor accepts on the listening sockets: the connections may follow.
    virtual void on_successor_ready(Successor& successor) = 0;
    // It exited, or closed the channel, before it was ready.
    virtual void on_successor_failed(Successor& successor) = 0;
    // It exited after it was ready: the connections passed to it are lost, the others are still here.
    virtual void on_successor_lost(Successor& successor) = 0;

   protected:
    ~Events() = default;
  };

  // Sends the listening sockets (borrowed; admin may be -1), then starts argv[0] with argv, the successor.
  // One that is not ready within ready_timeout is killed (it holds no connection yet). The failed call is
  // logged.
  static std::error_code start(uv_loop_t* loop, const std::vector<std::string>& argv, int serve, int admin,
                               Milliseconds ready_timeout, Events& events, LoopOwned<Successor>& successor);

  int pid() const { return process_.pid; }
  bool ready() const { return ready_; }

  // Sends a client connection (socket borrowed: the caller closes its copy), with the bytes the socket has
  // sent so far and those read of it; flags as kTakeoverConnection's. A successor that does not take it
  // within kSendTimeoutSeconds, or is gone, is an error (logged once).
  std::error_code send_connection(int socket, uint64_t bytes_sent, std::string bytes, uint32_t flags);
  // A stop began before the successor was ready: it is asked to stop too (SIGTERM); it holds no connection.
  void stop();
  // Every connection has been sent: kTakeoverEnd, and the channel closes.
  void finish();

  void close();  // Lets the successor be (it runs on); the object deletes itself once libuv is done.

 private:
  friend struct CloseOnLoop;
  Successor(ipc::UniqueFd channel, Events& events);
  ~Successor() = default;

  void on_channel_readable();
  void fail_unless_ready();

  static constexpr int kSendTimeoutSeconds = 5;
  ipc::BlockingChannel channel_;  // Blocking, with a send timeout: the successor reads it on its loop.
  Events& events_;
  uv_process_t process_{};
  uv_poll_t channel_poll_{};
  uv_timer_t ready_timer_{};
  bool spawned_ = false;
  bool polling_ = false;
  bool ready_ = false;
  bool failed_ = false;
  bool send_failed_ = false;
};

// The new reactor's end: the channel from the reactor it takes over from.
class Predecessor {
 public:
  // Receives each connection the old reactor sends: the socket (non-blocking, close-on-exec), what it has
  // sent so far, the bytes read of it, and kTakeoverConnection's flags.
  using AdoptCallback =
      std::function<void(ipc::UniqueFd socket, uint64_t bytes_sent, std::string bytes, uint32_t flags)>;

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
  void end(const char* how);

  static constexpr int kListenersTimeoutSeconds = 10;
  ipc::BlockingChannel channel_;  // Non-blocking once ready: receive says "try again" mid-frame.
  AdoptCallback adopt_;
  uv_poll_t channel_poll_{};
  size_t adopted_ = 0;
  bool finished_ = false;
};

}  // namespace handoff::reactor
