#pragma once

// Internal to the reactor. Server: the reactor's whole job on one event loop. It accepts connections, lets each
// read its request head, asks the Dispatcher who serves it, hands the socket to that handler, takes the socket
// back when the handler reports done, and answers the client itself when a handler cannot (crash, timeout,
// overload). It keeps the pool at its size (respawn with backoff, recycling, SIGHUP reload) and shuts down on
// SIGINT/SIGTERM.
//
// Ownership: connections_ owns every open client socket (the reactor's copy), also while a handler serves it;
// handlers_ owns every child process until it has been reaped. The Dispatcher knows who holds what, by id.
// server.cpp holds the connection side; server_pool.cpp the handler side.

#include <uv.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "reactor/admin_server.hpp"
#include "reactor/config.hpp"
#include "reactor/connection.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/handler_process.hpp"
#include "reactor/listener.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/metrics.hpp"

namespace handoff::reactor {

class Server final : Connection::Events, HandlerProcess::Events {
 public:
  Server(uv_loop_t* loop, Config config);

  // Listens, starts the handlers and prints "listening on HOST:PORT". The failed step is logged; the caller
  // then calls stop() and runs the loop until it is empty.
  std::error_code start();

  // Stops at once: handlers are killed, their clients told "ERR shutting down", other connections closed.
  // The loop ends once every handler has been reaped.
  void stop();

  // The reactor's exit status once the loop has ended.
  int exit_status() const { return exit_status_; }

 private:
  enum class State { kServing, kDraining, kStopping };

  // Connections (server.cpp).
  void accept(ipc::UniqueFd client);
  void on_request_ready(Connection& connection) override;
  void on_client_left(Connection& connection) override;
  void on_expired(Connection& connection, Connection::Expiry expiry) override;
  void hand_off(Assignment assignment);
  void finish_request(ConnectionId id, bool keep_open, std::string unconsumed);
  void answer_orphan(ConnectionId id, const HandlerProcess& handler);
  void refuse(Connection& connection, Refusal refusal);
  void count_refusal(const Connection& connection, Refusal refusal, int handler_pid);

  // Handlers (server_pool.cpp).
  void on_handler_ready(HandlerProcess& handler) override;
  void on_request_answered(HandlerProcess& handler, int status, double service_ms) override;
  void on_handler_done(HandlerProcess& handler, ipc::Message done) override;
  void on_handler_broken(HandlerProcess& handler, std::error_code why) override;
  void on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) override;
  void offer_work(HandlerProcess& handler);
  std::error_code spawn_handler();
  void spawn_missing_handlers();
  void schedule_respawn(bool started_badly);
  void retire(HandlerProcess& handler);
  void reload();
  size_t serving_handlers() const;
  // Sets the pool's size: more handlers start at once; surplus ones retire, idle ones first.
  void resize_pool(unsigned size);

  // The admin port (server_admin.cpp).
  std::error_code start_admin();
  AdminResponse admin_request(std::string_view method, std::string_view path, std::string_view query);
  StatsSnapshot snapshot() const;

  // Signals and shutdown (server.cpp).
  void start_watchers();
  void on_signal(int signal_number);
  void begin_draining();
  void finish_when_idle();

  uv_loop_t* loop_;
  const Config config_;
  const std::vector<std::string> handler_environment_;
  State state_ = State::kServing;
  int exit_status_ = 0;
  unsigned target_handlers_;  // --handlers, changed by SIGTTIN, SIGTTOU and POST /pool.
  const uint64_t started_ns_;
  Metrics metrics_;
  std::unique_ptr<AdminServer> admin_;

  Dispatcher dispatcher_;
  LoopOwned<Listener> listener_;
  std::unordered_map<ConnectionId, LoopOwned<Connection>> connections_;
  std::unordered_map<HandlerId, LoopOwned<HandlerProcess>> handlers_;
  ConnectionId next_connection_id_ = 1;
  HandlerId next_handler_id_ = 1;

  // Respawn backoff: handlers that died soon after they started, in a row.
  unsigned early_exits_in_a_row_ = 0;
  bool any_handler_ready_ = false;
  std::mt19937_64 random_{std::random_device{}()};

  // These handles live as long as the Server, which outlives the loop run; they are closed last.
  uv_signal_t sigint_watcher_{};
  uv_signal_t sigterm_watcher_{};
  uv_signal_t sighup_watcher_{};
  uv_signal_t sigttin_watcher_{};
  uv_signal_t sigttou_watcher_{};
  uv_timer_t respawn_timer_{};
  uv_timer_t shutdown_timer_{};
  bool watchers_open_ = false;
};

}  // namespace handoff::reactor
