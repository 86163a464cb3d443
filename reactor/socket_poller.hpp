#pragma once

// Internal to the reactor. SocketPoller: edge-triggered readiness of client sockets, inside the libuv loop.
//
// libuv's uv_poll_t cannot change what it waits for cheaply: every uv_poll_start deletes the descriptor from
// epoll and adds it again (src/unix/poll.c, uv__poll_stop + uv__platform_invalidate_fd), and a connection
// changes what it waits for four times a request (its request, the client leaving while queued or served, its
// next request): nine epoll_ctl calls per keep-alive request, measured. Here each socket is added once to an
// epoll instance of the poller's own, edge-triggered, for input and for the peer's end (EPOLLIN | EPOLLRDHUP
// | EPOLLET), and stays so until it is closed; the loop watches that instance as one descriptor. No system
// call changes a watch on the way through a one-request hand-off (report_input turns input edges off and on
// around a hand-off whose handler reads several requests itself). The price is the contract of edges
// (epoll(7)): a watcher reads until the socket would block (or a short read says it took all there was), and
// when it starts caring about input again it reads first, since an edge that came while it did not care will
// not come again — unless no edge came since the read that drained the socket: every edge is delivered, in
// whatever state the watcher is, so it can note one it does not act on.
//
// Watchers are found by a key of the poller's, never reused, so an event already fetched for a watcher
// removed meanwhile (in the same batch) is dropped rather than delivered to freed memory.

#include <uv.h>

#include <cstdint>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "ipc/unique_fd.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

class SocketPoller {
 public:
  using Key = uint64_t;

  class Watcher {
   public:
    // events: the epoll bits of an edge (EPOLLIN, EPOLLRDHUP, EPOLLHUP, EPOLLERR), or EPOLLIN alone when the
    // watcher asked for another look (look_again).
    virtual void on_socket_event(uint32_t events) = 0;

   protected:
    ~Watcher() = default;
  };

  // Creates the epoll instance and starts watching it on loop; the failed call is logged.
  static std::error_code open(uv_loop_t* loop, LoopOwned<SocketPoller>& poller);

  // Watches socket (borrowed) for watcher, until forget(key). An edge is reported at once when the socket is
  // ready already. The failed call is logged.
  std::error_code add(int socket, Watcher& watcher, Key& key);
  // No event is delivered for key after this, not even one fetched already; the caller closes the socket
  // next. No epoll_ctl: closing the last descriptor of a socket takes it out of epoll (epoll(7)), and the
  // reactor closes a client socket when no handler holds a copy any more. Should one live on (in a child a
  // dead handler left behind), its events find no watcher and are dropped until that copy closes too.
  void forget(Key key);
  // As forget, for a socket that lives on in another reactor (a takeover): it leaves epoll now, or its
  // events would wake this loop for as long as the other one keeps it open.
  void forget_passed(int socket, Key key);
  // Whether edges of input are reported too (always the peer's end and errors): true when epoll_ctl took the
  // change. For a socket another process reads for a while, whose every arrival would wake the loop.
  bool report_input(int socket, Key key, bool input);
  // Delivers EPOLLIN to the watcher at the start of the next loop turn: for a watcher that stopped reading
  // before the socket would block, and must not wait for an edge that will not come.
  void look_again(Key key);

  size_t watched() const { return watchers_.size(); }

  // Closes once nothing is watched any more (watchers still lingering at close remove themselves later); the
  // object deletes itself then.
  void close();

 private:
  friend struct CloseOnLoop;
  SocketPoller(uv_loop_t* loop, ipc::UniqueFd epoll);
  ~SocketPoller() = default;

  void deliver_ready();
  void deliver_looks();
  void close_if_done();

  ipc::UniqueFd epoll_;
  uv_poll_t poll_;  // On epoll_: readable while any socket has an edge to report.
  uv_idle_t idle_;  // Active while looks_ is not empty, so that the loop does not block before they run.
  std::unordered_map<Key, Watcher*> watchers_;
  std::vector<Key> looks_;
  Key next_key_ = 1;
  bool closing_ = false;
};

}  // namespace handoff::reactor
