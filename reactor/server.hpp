#pragma once

// Internal to the reactor. Server: the wiring. It owns the parts — the Frontend (every client connection),
// the HandlerPool (every handler process), the Dispatcher between them, the counters and the admin port —
// and runs the reactor's life: start, the signals, a graceful drain, a takeover and a stop. The pool reports
// handlers and their connections to the Frontend directly.

#include <uv.h>

#include <memory>
#include <optional>
#include <system_error>

#include "reactor/admin/admin_routes.hpp"
#include "reactor/admin/admin_server.hpp"
#include "reactor/config.hpp"
#include "reactor/descriptor_reserve.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/frontend.hpp"
#include "reactor/handler_pool.hpp"
#include "reactor/metrics.hpp"
#include "reactor/phase.hpp"
#include "reactor/takeover.hpp"

namespace handoff::reactor {

class Server final : HandlerPool::LifeEvents, Successor::Events {
 public:
  Server(uv_loop_t* loop, Config config);

  // Listens and starts the handlers; once they have all said hello, it prints "listening on HOST:PORT" (and
  // "admin listening on HOST:PORT"), which scripts wait for. The failed step is logged; the caller then calls
  // stop() and runs the loop until it is empty.
  std::error_code start();

  // Stops at once: handlers are killed, their clients told "ERR shutting down", other connections closed.
  // The loop ends once every handler has been reaped.
  void stop();

  // The reactor's exit status once the loop has ended.
  int exit_status() const { return exit_status_; }
  // Once the loop has ended: removes the files of the Unix sockets --listen named, unless a successor took
  // them over (systemd's are systemd's to remove). A failure is logged.
  void remove_socket_files() const;

 private:
  // HandlerPool::LifeEvents.
  void on_pool_failed() override;
  void on_pool_ready() override;
  void on_pool_empty() override;
  // Successor::Events: a takeover of this reactor (SIGUSR2).
  void on_successor_ready(Successor& successor) override;
  void on_successor_failed(Successor& successor) override;
  void on_successor_took_all(Successor& successor) override;
  void on_successor_lost(Successor& successor, std::vector<PassedConnection> unpassed) override;
  void start_admin(ipc::UniqueFd socket);

  // The listening sockets: from the reactor this one takes over from, from systemd, or bound here.
  std::error_code open_listen_sockets(ListenSockets& sockets);
  void begin_takeover();
  void every_connection_passed();
  void start_watchers();
  void close_watchers();
  void on_signal(int signal_number);
  void begin_draining();
  // A drain or takeover waits this long (--shutdown-timeout) for requests in progress, then stops.
  void bound_the_wind_down();

  uv_loop_t* loop_;
  const Config config_;
  Phase phase_ = Phase::kServing;
  int exit_status_ = 0;
  // A stop signal this soon after the first is the same request again (timeout(1) sends two): 250 ms.
  static constexpr uint64_t kRepeatedStopSignalNs = 250'000'000;
  uint64_t stop_signal_at_ns_ = 0;  // uv_hrtime() of the signal that began the drain.
  Metrics metrics_;
  DescriptorReserve descriptor_reserve_;  // For the admin port out of descriptors; outlives the listeners.
  ipc::SharedState state_page_;           // Created by start(); handlers read the queue length from it.
  Dispatcher dispatcher_;
  HandlerPool pool_;
  Frontend frontend_;
  AdminRoutes admin_routes_;
  std::unique_ptr<AdminServer> admin_;
  // A takeover: this reactor's successor, once SIGUSR2 started it; or the channel from the reactor this one
  // takes over, until the handlers are ready (set: this reactor is taking over), and then its end.
  LoopOwned<Successor> successor_;
  std::optional<ipc::BlockingChannel> predecessor_channel_;
  LoopOwned<Predecessor> predecessor_;
  // A successor accepts on the admin port only once ready (until then the old reactor answers there), and
  // an old reactor keeps a copy of it through the hand-over, to serve it again if the successor dies.
  ipc::UniqueFd admin_socket_kept_;
  std::vector<std::string> socket_files_;  // The paths of the Unix sockets of --listen it serves on.
  bool handed_over_ = false;               // A successor took every connection, and the listeners.

  // These handles live as long as the Server, which outlives the loop run; they are closed last.
  uv_signal_t sigint_watcher_{};
  uv_signal_t sigterm_watcher_{};
  uv_signal_t sighup_watcher_{};
  uv_signal_t sigttin_watcher_{};
  uv_signal_t sigttou_watcher_{};
  uv_signal_t sigusr2_watcher_{};
  uv_timer_t shutdown_timer_{};
  bool watchers_open_ = false;
};

}  // namespace handoff::reactor
