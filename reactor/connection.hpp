#pragma once

// Internal to the reactor. Connection: one client socket, owned by the reactor for its whole life. Between
// requests the reactor watches it and reads the next request head itself; while a handler serves it, the
// reactor keeps its copy of the socket but leaves it alone (one descriptor, one reader at a time).

#include <uv.h>

#include <cstdint>
#include <string>

#include "ipc/unique_fd.hpp"
#include "reactor/dispatcher.hpp"

namespace handoff::reactor {

class Connection {
 public:
  class Events {
   public:
    // The connection holds a complete request head (or as much as the cap allows); it stopped watching.
    virtual void on_request_ready(Connection& connection) = 0;
    // The client left (EOF with nothing pending, or a reset) while the reactor watched it.
    virtual void on_client_left(Connection& connection) = 0;

   protected:
    ~Events() = default;
  };

  // What a handler receives: the bytes read so far and the kConnection flags that describe them.
  struct Request {
    std::string bytes;
    uint32_t flags;
  };

  enum class Resume { kWatching, kReady, kClientLeft };

  // Create with make_loop_owned (reactor/loop_owned.hpp); starts watching for the first request.
  Connection(uv_loop_t* loop, ConnectionId id, ipc::UniqueFd socket, size_t max_head_bytes, Events& events);

  ConnectionId id() const { return id_; }
  // The socket, borrowed: it is sent to a handler, and the reactor keeps its own copy here.
  int socket() const { return socket_.get(); }
  // Whether the client is between requests: watched, with no byte of a next request read yet.
  bool between_requests() const { return watching_ && head_.empty(); }

  // Takes the request head for a handler.
  Request take_request();

  // The handler is done and the client may send more: unconsumed is what the handler read but did not use.
  // kReady when that already holds a complete head (on_request_ready is not called then).
  Resume resume(std::string unconsumed);

  // Closes the reactor's copy. When the client sent input that nobody read (it is still sending a request
  // that was refused), the socket is shut down for writing and that input drained for a moment first: closing
  // with unread input sends a reset, which can destroy the last answer before the client reads it (nginx's
  // lingering_close). Deletes itself afterwards.
  void close();

 private:
  ~Connection() = default;

  void watch();
  void unwatch();
  void read_head();
  bool has_unread_input() const;
  void drain_and_close();
  bool head_complete() const;
  void close_handles();

  const ConnectionId id_;
  ipc::UniqueFd socket_;
  const size_t max_head_bytes_;
  Events& events_;
  uv_poll_t poll_;
  uv_timer_t linger_timer_;
  std::string head_;
  bool watching_ = false;
  bool input_closed_ = false;  // The client sent EOF (or reset the connection).
  int open_handles_ = 2;
};

}  // namespace handoff::reactor
