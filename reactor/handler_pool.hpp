#pragma once

// Internal to the reactor. HandlerPool: the life of every handler process. It starts the pool, takes each
// handler's hello and reports, replaces handlers that die (at once after a healthy life, with a doubling
// delay after a bad start), recycles worn handlers (--max-requests), replaces them all on SIGHUP, resizes the
// pool (SIGTTIN/SIGTTOU, POST /pool) and winds it down at shutdown. It never touches a client connection: it
// tells its Events when a handler can take work, hands back a connection, or died holding one.
//
// Replacing never costs capacity: a reload or a recycling starts the new handler first and retires the old
// one only once the new one said hello. Until then the new one is a pending replacement and does not count
// towards the pool's size. A reload whose new handlers fail to start is abandoned and the old ones serve on.
//
// With --preload, handlers are forked from a template (reactor/handler_template.hpp; the pool's part is in
// preload.cpp): a reload starts a new template, and its replacements are forked from that one once it loaded
// the new code; a template that fails to load abandons the reload. A template that dies is started again.
//
// Ownership: handlers_ and templates_ own every child process until it has been reaped.

#include <uv.h>

#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ipc/shared_state.hpp"
#include "ipc/wire.hpp"
#include "reactor/config.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/handler_channel.hpp"
#include "reactor/handler_process.hpp"
#include "reactor/handler_template.hpp"
#include "reactor/loop_owned.hpp"
#include "reactor/metrics.hpp"
#include "reactor/phase.hpp"

namespace handoff::reactor {

class HandlerPool final : HandlerProcess::Events, HandlerTemplate::Events {
 public:
  // What the pool tells the connection side (the Frontend) about the connections handlers hold.
  class ConnectionEvents {
   public:
    // The handler said hello, or finished a connection, and can take work now.
    virtual void on_handler_free(HandlerProcess& handler) = 0;
    // A handler handed back a connection it was given (kDone), having written answered_bytes to it in this
    // hand-off. Comes after on_handler_free for that handler, which may already serve another connection.
    virtual void on_connection_returned(const HandlerProcess& handler, ipc::Message done,
                                        uint64_t answered_bytes) = 0;
    // The handler that held connection is dead and reaped: nothing else can write to the socket now.
    virtual void on_connection_orphaned(ConnectionId connection, const HandlerProcess& handler) = 0;
    // The handler reported its connection done and went on with the one sent ahead to it, which it serves
    // now; it may be sent its next one ahead.
    virtual void on_handler_goes_on(HandlerProcess& handler) = 0;
    // A connection sent ahead will not be served by the handler it was sent to (withdrawn from a handler
    // that retires, or that handler died before it took it): its request is ready again, first in line.
    virtual void on_ahead_returned(ConnectionId connection) = 0;
    // The handler answered a request (status as HTTP says it), having worked on it for service_ms.
    virtual void on_request_answered(HandlerProcess& handler, int status, double service_ms,
                                     bool more_follows) = 0;

   protected:
    ~ConnectionEvents() = default;
  };

  // What the pool tells the Server about its own life.
  class LifeEvents {
   public:
    // The handler command failed again and again before any handler was ready: the pool cannot serve.
    virtual void on_pool_failed() = 0;
    // The first time as many handlers as the pool's size have said hello: the server is ready.
    virtual void on_pool_ready() = 0;
    // Once draining or stopping: the last handler has exited and the pool closed its handles.
    virtual void on_pool_empty() = 0;

   protected:
    ~LifeEvents() = default;
  };

  // The dispatcher is shared with the connection side: the pool withdraws handlers from it and checks kDone
  // reports against it. Every handler inherits the shared state page. The connection side listens from
  // set_connection_events on, before start.
  HandlerPool(uv_loop_t* loop, const Config& config, const ipc::SharedState& state_page,
              Dispatcher& dispatcher, Metrics& metrics, LifeEvents& life_events);
  void set_connection_events(ConnectionEvents& events) { connection_events_ = &events; }

  // Starts --handlers processes. The failed spawn is logged.
  std::error_code start();

  // Sets the pool's size: more handlers start at once; surplus ones retire, idle ones first.
  void resize(unsigned size);
  // SIGHUP: every handler is replaced by a fresh process of --handler-cmd.
  void reload();
  // No more replacements (unless requests still wait); each handler exits once nothing is left for it.
  void drain();
  // Every busy handler ends its hand-off at the next chance (kReclaim): it lingers no more on its connection,
  // which then comes back (for a takeover to pass on).
  void end_hand_offs_soon();
  // Kills every handler; their connections are reported orphaned once they are reaped.
  void stop();

  HandlerProcess& at(HandlerId id) { return *handlers_.at(id); }
  // The handler with that id, or null when it is gone.
  HandlerProcess* find(HandlerId id) {
    const auto it = handlers_.find(id);
    return it == handlers_.end() ? nullptr : it->second.get();
  }
  // Lingering (reactor/lingering.cpp).
  // A request waits and no handler is idle: one handler lingering on its connection, if any, is asked to end
  // its hand-off (it then takes the longest waiting request). True when one was asked.
  bool reclaim_lingering();
  // The same, before a request is refused for a full queue: every handler is looked at, also one whose
  // kAnswered is not read yet.
  bool reclaim_any_lingering();
  // A handler lingering on its connection, if one is (a connection sent ahead to it ends its linger).
  std::optional<HandlerId> lingering_handler();
  // Send-ahead (reactor/send_ahead.cpp).
  // Takes back connection, sent ahead to holder, unless holder took it already: true when taken back
  // (counted; the caller hands it on or closes it).
  bool withdraw_ahead(HandlerProcess& holder, ConnectionId connection);
  // The same for every connection sent ahead to holder: those taken back, oldest first.
  std::vector<ConnectionId> withdraw_aheads(HandlerProcess& holder);
  const std::unordered_map<HandlerId, LoopOwned<HandlerProcess>>& handlers() const { return handlers_; }
  // --preload: the templates, oldest first.
  const std::vector<LoopOwned<HandlerTemplate>>& templates() const { return templates_; }
  unsigned target() const { return target_; }
  // The largest size resize() takes (--max-handlers).
  unsigned max_size() const { return config_.max_handlers; }
  Phase phase() const { return phase_; }
  // Whether some handler has said hello and is not retiring.
  bool any_ready() const;
  // Whether the handler is a replacement that has not said hello yet.
  bool is_pending_replacement(HandlerId id) const { return replacing_.contains(id); }
  // How the last SIGHUP went, for /stats and the status page.
  const ReloadReport& last_reload() const { return last_reload_; }

 private:
  // HandlerProcess::Events.
  void on_handler_ready(HandlerProcess& handler) override;
  void on_request_answered(HandlerProcess& handler, int status, double service_ms,
                           bool more_follows) override;
  void on_handler_done(HandlerProcess& handler, ipc::Message done) override;
  void on_handler_broken(HandlerProcess& handler) override;
  void on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) override;

  // HandlerTemplate::Events (preload.cpp).
  void on_template_ready(HandlerTemplate& handler_template) override;
  void on_template_exited(HandlerTemplate& handler_template, int64_t exit_status, int term_signal) override;
  // The template a new handler is forked from: the newest for a reload, else the newest ready one (the
  // newest when none is ready yet). One is started when none lives. Null when that fails (logged).
  HandlerTemplate* template_for(bool for_reload);
  HandlerTemplate* start_template();
  // Every template but the newest ready one is ended (all of them when the pool winds down): each exits once
  // the last handler forked from it is gone.
  void end_old_templates(bool all);

  // Starts a handler; with replaces, as the replacement of that handler (for a reload when for_reload).
  std::error_code spawn(std::optional<HandlerId> replaces = std::nullopt, bool for_reload = false);
  void spawn_missing();
  // A replacement said hello: the handler it replaces retires now.
  void promote_replacement(HandlerProcess& replacement);
  void retire(HandlerProcess& handler);
  void abandon_reload(const std::string& what_failed);
  void log_exit(const HandlerProcess& handler, int64_t exit_status, int term_signal) const;
  void schedule_respawn(bool started_badly);
  // The handler can take work: offered to the connections, or told to exit when it is retiring or nothing
  // is left to do in a stop.
  void offer(HandlerProcess& handler);
  void retire_if_worn(HandlerProcess& handler);
  // How many connections the handler may hold sent ahead, from its hello, --send-ahead and the time between
  // its last two answers: more than one only pay while requests are short, since the reactor refills one in
  // far less time than a long request takes, and each one more held costs the admin port's latency under
  // load (a /healthz p99 of 1.2-1.4 ms with four ahead behind fib(27), 0.5 ms with one).
  void set_ahead_depth(const HandlerProcess& handler, uint64_t answer_interval_ns);
  static constexpr uint64_t kShortAnswerIntervalNs = 100'000;
  // Handlers that count towards the pool's size: neither retiring nor a pending replacement.
  size_t serving_count() const;
  size_t ready_count() const;
  void finish_if_empty();
  // Asserts that the handler is busy exactly when the Dispatcher has a connection for it.
  void check_books(const HandlerProcess& handler) const;
  bool reclaim_if_lingering(HandlerId id);

  uv_loop_t* loop_;
  const Config& config_;
  const ipc::SharedState& state_page_;
  Dispatcher& dispatcher_;
  Metrics& metrics_;
  LifeEvents& life_events_;
  ConnectionEvents* connection_events_ = nullptr;  // Set before start.
  // Frames for handlers gathered in a loop turn, sent before the loop goes on; closed with the pool.
  WriteBatches batches_;
  const std::vector<std::string> environment_;  // What handlers get beside the reactor's environment.
  Phase phase_ = Phase::kServing;
  unsigned target_;  // --handlers, changed by SIGTTIN, SIGTTOU and POST /pool.
  std::unordered_map<HandlerId, LoopOwned<HandlerProcess>> handlers_;
  HandlerId next_id_ = 1;
  std::vector<LoopOwned<HandlerTemplate>> templates_;  // --preload: oldest first.

  struct Replacement {
    HandlerId old;    // Retires once the replacement said hello.
    bool for_reload;  // Part of a SIGHUP reload (else a recycling).
  };
  std::unordered_map<HandlerId, Replacement> replacing_;  // Keyed by the replacement's id.
  // Handlers that reported an answer in their current hand-off (kAnswered): only they can be lingering, so a
  // request that waits looks at these alone — none at all under saturation, where a hand-off is one request.
  std::unordered_set<HandlerId> may_linger_;
  ReloadReport last_reload_;
  bool announced_ready_ = false;

  // Respawn backoff: handlers that died soon after they started, in a row.
  unsigned early_exits_in_a_row_ = 0;
  bool any_handler_ready_ = false;
  std::mt19937_64 random_{std::random_device{}()};
  uv_timer_t respawn_timer_{};  // Closed once the pool is empty after a stop began.
  // Starts the next few handlers of a large resize on each loop turn (an idle handle runs once per turn,
  // after the turn's I/O; a 0 ms timer would run again within the same turn).
  uv_idle_t spawn_turn_{};
  bool finished_ = false;
};

}  // namespace handoff::reactor
