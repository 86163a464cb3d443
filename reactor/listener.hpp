#pragma once

// Internal to the reactor. Listener: the listening TCP socket and its accept loop on the event loop.

#include <uv.h>

#include <functional>
#include <optional>
#include <system_error>
#include <vector>

#include "ipc/unique_fd.hpp"
#include "reactor/config.hpp"
#include "reactor/descriptor_reserve.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::reactor {

// The reactor's listening sockets: bound by Listener::open, passed by systemd (reactor/systemd.hpp), or by
// the reactor this one takes over from (reactor/takeover.hpp).
struct ListenSockets {
  std::vector<ipc::UniqueFd> serve;  // The service's (--listen), at least one.
  ipc::UniqueFd admin;               // The admin port (--admin); not set when there is none.
};

// The address of a socket (getsockname) or of its peer (getpeername); nullopt when the call fails.
std::optional<ListenAddress> socket_address(int socket, bool peer);

class Listener {
 public:
  // Receives each accepted connection: non-blocking, close-on-exec, owned by the callee.
  using AcceptCallback = std::function<void(ipc::UniqueFd client)>;

  // Binds and listens on address; the failed call is logged. reuse_port: other sockets may bind the same
  // address too (SO_REUSEPORT), and the kernel spreads new connections among them. A Unix socket's file
  // gets address.mode; a socket file already at its path is replaced only when nobody listens on it.
  static std::error_code open(const ListenAddress& address, bool reuse_port, ipc::UniqueFd& socket);

  // What the listener does with the reactor's DescriptorReserve (borrowed; it outlives the listener): every
  // listener takes it back first when it is missing; the admin port's also spends it when out of descriptors.
  enum class ReserveUse { kTakeBack, kSpendWhenShort };

  // Create with make_loop_owned (reactor/loop_owned.hpp).
  Listener(uv_loop_t* loop, ipc::UniqueFd socket, DescriptorReserve& reserve, ReserveUse use,
           AcceptCallback on_accept);

  // The listening socket, borrowed: a takeover passes it on.
  int socket() const { return socket_.get(); }
  // The address actually bound (with the real port when 0 was asked for).
  ListenAddress local_address() const;

  // Why a listener does not accept (HAProxy's listener states, kept as reasons): each hold is lifted by a
  // release for the same reason only, and the listener accepts while no reason holds it. Connections wait in
  // the listen backlog meanwhile.
  enum class Hold : unsigned {
    kCapacity = 1u << 0,  // --max-connections are open; lifted when one closes.
    kTakeover = 1u << 1,  // A takeover: the successor is not ready yet, or the old reactor hands over.
  };
  void hold(Hold reason);
  void release(Hold reason);
  bool held() const { return holds_ != 0; }

  void close();  // Stops accepting; the object deletes itself once libuv is done with it.

 private:
  friend struct CloseOnLoop;
  ~Listener() = default;

  void start_polling();
  void accept_pending();
  void pause_accepting();
  void report_shortage(int error);

  ipc::UniqueFd socket_;
  DescriptorReserve& reserve_;
  const ReserveUse reserve_use_;
  AcceptCallback on_accept_;
  uv_poll_t poll_;
  uv_timer_t resume_timer_;  // Accepting resumes on it after running out of descriptors.
  static constexpr uint64_t kShortageReportIntervalNs = 10'000'000'000;
  uint64_t last_shortage_report_ns_ = 0;
  uint64_t pauses_unreported_ = 0;
  unsigned holds_ = 0;  // Hold reasons, or'ed.
};

}  // namespace handoff::reactor
