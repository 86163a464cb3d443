#include "reactor/handler_pool.hpp"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <ctime>

#include "reactor/child_command.hpp"
#include "reactor/log.hpp"
#include "reactor/metrics.hpp"

namespace handoff::reactor {
namespace {

// A handler that dies sooner than this after its start without serving a request counts as starting badly.
constexpr uint64_t kHealthyLifetimeMs = 1000;
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 10000;
// Before any handler was ever ready, this many bad starts in a row mean the handler command is broken.
constexpr unsigned kBadStartsBeforeGivingUp = 5;
constexpr unsigned kSpawnsPerLoopTurn = 4;

}  // namespace

HandlerPool::HandlerPool(uv_loop_t* loop, const Config& config, const ipc::SharedState& state_page,
                         Dispatcher& dispatcher, Metrics& metrics, LifeEvents& life_events)
    : loop_(loop),
      config_(config),
      state_page_(state_page),
      dispatcher_(dispatcher),
      metrics_(metrics),
      life_events_(life_events),
      batches_(loop),
      environment_{
          std::string(ipc::kChannelFdVariable) + "=" + std::to_string(ipc::kHandlerChannelFd),
          std::string(ipc::kStateFdVariable) + "=" + std::to_string(ipc::kHandlerStateFd),
          std::string(ipc::kRecordFdVariable) + "=" + std::to_string(ipc::kHandlerRecordFd),
          "HANDOFF_MAX_REQUEST_BYTES=" + std::to_string(config.max_request_bytes),
          "HANDOFF_MAX_HEAD_BYTES=" + std::to_string(config.max_head_bytes),
          "HANDOFF_WRITE_TIMEOUT_MS=" + std::to_string(config.write_timeout.count()),
          // A linger as long as --request-timeout would be killed as a request that hangs.
          "HANDOFF_LINGER_US=" +
              std::to_string(std::min(config.linger, Microseconds(config.request_timeout) / 2).count()),
          "HANDOFF_REACTOR_PID=" + std::to_string(uv_os_getpid()),
          std::string("HANDOFF_EXPOSE_ERRORS=") + (config.expose_errors ? "1" : "0"),
      },
      target_(config.handlers) {
  uv_timer_init(loop_, &respawn_timer_);
  uv_idle_init(loop_, &spawn_turn_);
  respawn_timer_.data = spawn_turn_.data = this;
}

std::error_code HandlerPool::start() {
  assert(connection_events_ != nullptr && "the pool started before the connection side listens");
  for (unsigned i = 0; i < target_; ++i) {
    if (auto error = spawn()) return error;
  }
  return {};
}

// --- The life of one handler: spawn, hello, reports, exit ---

std::error_code HandlerPool::spawn(std::optional<HandlerId> replaces, bool for_reload) {
  const HandlerId id = next_id_++;
  auto handler = make_loop_owned<HandlerProcess>(loop_, id, config_, batches_,
                                                 static_cast<HandlerProcess::Events&>(*this));
  if (config_.preload) {
    HandlerTemplate* from = template_for(for_reload);
    if (from == nullptr) return std::make_error_code(std::errc::no_child_process);
    if (auto error = handler->fork_from(*from)) return error;
  } else if (auto error = handler->spawn(config_.handler_command, environment_, state_page_.descriptor())) {
    return error;
  }
  if (config_.max_requests > 0) {
    // Drawn once per handler, so that handlers started together retire apart.
    std::uniform_int_distribution<uint64_t> jitter(0, config_.max_requests_jitter);
    handler->set_request_limit(config_.max_requests + jitter(random_));
  }
  log_at(LogLevel::kDebug, "handler %d started%s", handler->pid(), replaces ? " as a replacement" : "");
  if (replaces) replacing_.emplace(id, Replacement{*replaces, for_reload});
  handlers_.emplace(id, std::move(handler));
  return {};
}

// The handler's own books and the Dispatcher's agree: it is busy exactly when the Dispatcher has a connection
// for it.
void HandlerPool::check_books(const HandlerProcess& handler) const {
  assert(handler.busy() == dispatcher_.connection_of(handler.id()).has_value() &&
         "a handler's busy state and the Dispatcher's books disagree");
  (void)handler;
}

void HandlerPool::on_handler_ready(HandlerProcess& handler) {
  if (handler.exited()) return;  // A hello read after its exit: on_handler_exited follows.
  check_books(handler);
  any_handler_ready_ = true;
  set_ahead_depth(handler, 0);
  if (replacing_.contains(handler.id())) promote_replacement(handler);
  offer(handler);
  if (!announced_ready_ && ready_count() >= target_) {
    announced_ready_ = true;
    life_events_.on_pool_ready();
  }
}

// A replacement said hello: the handler it replaces retires now, so the pool's size holds throughout.
void HandlerPool::promote_replacement(HandlerProcess& replacement) {
  const Replacement replaced = replacing_.at(replacement.id());
  replacing_.erase(replacement.id());
  if (const auto old = handlers_.find(replaced.old); old != handlers_.end() && !old->second->retiring()) {
    retire(*old->second);
  }
  if (!replaced.for_reload || last_reload_.state != "in progress") return;
  const bool more = std::any_of(replacing_.begin(), replacing_.end(),
                                [](const auto& entry) { return entry.second.for_reload; });
  if (!more) {
    last_reload_.state = "done";
    log_at(LogLevel::kInfo, "reload done: every handler is a fresh process");
  }
}

// An idle handler whose channel broke leaves the idle handlers at once: a request given to it would only get
// "ERR handler crashed" at its exit, while another handler could serve it. A busy one's connections are
// answered or queued again at its exit (on_handler_exited).
void HandlerPool::on_handler_broken(HandlerProcess& handler) {
  if (!dispatcher_.connection_of(handler.id())) (void)dispatcher_.handler_gone(handler.id());
}

void HandlerPool::offer(HandlerProcess& handler) {
  // Its last reports were read after its exit, or after its channel broke with its exit on the way: it takes
  // nothing more, and on_handler_exited follows.
  if (handler.exited() || handler.broken()) return;
  if (!handler.retiring()) connection_events_->on_handler_free(handler);
  const bool nothing_left = phase_ != Phase::kServing && !dispatcher_.connection_of(handler.id());
  if (handler.retiring() || nothing_left) {
    dispatcher_.handler_gone(handler.id());  // Withdrawn from the idle handlers, if it was one.
    handler.end_channel();
  }
}

void HandlerPool::on_request_answered(HandlerProcess& handler, int status, double service_ms,
                                      bool more_follows) {
  check_books(handler);
  connection_events_->on_request_answered(handler, status, service_ms, more_follows);
  if (!more_follows) return;  // kDone follows, which checks the rest.
  may_linger_.insert(handler.id());
  // A hand-off may go on for many requests (the handler lingers): the limits on a handler's life are checked
  // at each answer, not only at the end of a hand-off.
  retire_if_worn(handler);
  // A request that waits already was queued before this report was read, or its reclaim found this handler
  // serving its own client: a handler that lingers now is asked for it.
  if (dispatcher_.waiting_connections() > 0) reclaim_lingering();
}

void HandlerPool::on_handler_done(HandlerProcess& handler, ipc::Message done) {
  may_linger_.erase(handler.id());
  const Dispatcher::Done outcome = dispatcher_.handler_done(handler.id(), done.connection_id);
  if (outcome == Dispatcher::Done::kNotHeld) {
    handler.reject("it reported a connection it was not given");
    return;
  }
  const uint64_t answered_bytes = handler.answered_bytes();
  if (!handler.retiring()) set_ahead_depth(handler, handler.answer_interval_ns());
  if (outcome == Dispatcher::Done::kGoesOnAhead) {
    handler.begin_offered(*dispatcher_.connection_of(handler.id()));
    check_books(handler);
    retire_if_worn(handler);
    connection_events_->on_handler_goes_on(handler);  // (A retiring one is sent nothing more ahead.)
  } else {
    retire_if_worn(handler);
    offer(handler);
  }
  connection_events_->on_connection_returned(handler, std::move(done), answered_bytes);
}

void HandlerPool::on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) {
  const HandlerId id = handler.id();
  may_linger_.erase(id);
  log_exit(handler, exit_status, term_signal);
  // What came ahead and was not taken lost nothing: it waits again, first in line. The rest is judged by
  // what the socket sent. One sent ahead and taken while its kDone was lost (a handler that broke the
  // protocol) is judged as an orphan too.
  const std::vector<ConnectionId> returned = withdraw_aheads(handler);
  const Dispatcher::Held held = dispatcher_.handler_gone(id);
  if (held.current && handler.withdraw_unbegun(*held.current)) {
    ++metrics_.counters.withdrawn;
    connection_events_->on_ahead_returned(*held.current);
  } else if (held.current) {
    connection_events_->on_connection_orphaned(*held.current, handler);
  }
  for (const ConnectionId ahead : held.aheads) connection_events_->on_connection_orphaned(ahead, handler);
  for (const ConnectionId ahead : returned) connection_events_->on_ahead_returned(ahead);
  ++metrics_.counters.handler_exits;

  // A replacement that died before its hello replaces nothing: the handler it was to replace serves on, and
  // a reload it belonged to is abandoned.
  if (const auto pending = replacing_.find(id); pending != replacing_.end()) {
    const bool for_reload = pending->second.for_reload;
    replacing_.erase(pending);
    if (for_reload && phase_ == Phase::kServing && last_reload_.state == "in progress") {
      abandon_reload(
          "a new handler " + (handler.pid() != 0 ? "(pid " + std::to_string(handler.pid()) + ") " : "") +
          "did not start: " +
          (handler.kill_reason().empty() ? "it exited before it said hello" : handler.kill_reason()));
    }
    ++early_exits_in_a_row_;
    handlers_.erase(id);
    finish_if_empty();
    return;
  }
  // A handler that dies while its replacement starts leaves the replacement as an ordinary member.
  std::erase_if(replacing_, [id](const auto& entry) { return entry.second.old == id; });

  // A handler that died before its hello, or young without answering anything, started badly; one that was
  // killed for taking too long, or had served requests, had shown that it works.
  const bool started_badly =
      !handler.said_hello() ||
      (!handler.timed_out() && !handler.cancelled() && handler.requests_served() == 0 &&
       uv_now(loop_) - handler.started_at() < kHealthyLifetimeMs);
  const bool replace =
      !handler.retiring() &&
      (phase_ == Phase::kServing || (phase_ == Phase::kDraining && dispatcher_.queued_connections() > 0));
  handlers_.erase(id);
  if (replace) {
    ++metrics_.counters.respawns;
    schedule_respawn(started_badly);
  } else {
    finish_if_empty();
  }
}

// One log line per handler death, with its cause: at info when the reactor retired or stopped it, or it
// exited by itself with status 0; at warn when it died unexpectedly or was killed for what it did.
void HandlerPool::log_exit(const HandlerProcess& handler, int64_t exit_status, int term_signal) const {
  const std::string how = term_signal < 0 ? "exited (how is unknown: the template that forked it is gone)"
                                          : how_it_ended(exit_status, term_signal);
  const uint64_t served = handler.requests_served();
  const std::string after = " after " + std::to_string(served) + (served == 1 ? " request" : " requests") +
                            (handler.said_hello() ? "" : " before it said hello");
  const bool expected = handler.retiring() || handler.cancelled() || phase_ != Phase::kServing;
  const bool clean = term_signal == 0 && exit_status == 0;
  if (handler.pid() == 0) {  // Never forked (--preload): its template failed it.
    log_at(expected ? LogLevel::kInfo : LogLevel::kWarn, "a handler was not forked: %s",
           handler.kill_reason().c_str());
  } else if (!handler.kill_reason().empty()) {
    log_at(expected ? LogLevel::kInfo : LogLevel::kWarn, "handler %d %s: %s", handler.pid(), how.c_str(),
           handler.kill_reason().c_str());
  } else if (clean && handler.retiring()) {
    log_at(LogLevel::kInfo, "handler %d retired%s", handler.pid(), after.c_str());
  } else if ((clean && phase_ != Phase::kServing) || (term_signal == SIGKILL && phase_ == Phase::kStopping)) {
    log_at(LogLevel::kInfo, "handler %d stopped by the reactor%s", handler.pid(), after.c_str());
  } else if (clean) {
    log_at(LogLevel::kInfo, "handler %d exited by itself with status 0%s", handler.pid(), after.c_str());
  } else {
    const bool unknown = term_signal < 0;  // It may well have retired or stopped as asked.
    log_at(unknown && expected ? LogLevel::kInfo : LogLevel::kWarn, "handler %d %s%s", handler.pid(),
           how.c_str(), handler.said_hello() ? "" : " before it said hello");
  }
}

// --- Keeping the pool at its size ---

size_t HandlerPool::serving_count() const {
  return std::count_if(handlers_.begin(), handlers_.end(), [this](const auto& entry) {
    return !entry.second->retiring() && !replacing_.contains(entry.first);
  });
}

size_t HandlerPool::ready_count() const {
  return std::count_if(handlers_.begin(), handlers_.end(), [this](const auto& entry) {
    return entry.second->said_hello() && !entry.second->retiring() && !replacing_.contains(entry.first);
  });
}

bool HandlerPool::any_ready() const {
  return ready_count() > 0;
}

void HandlerPool::spawn_missing() {
  uv_idle_stop(&spawn_turn_);
  if (phase_ != Phase::kServing && dispatcher_.waiting_connections() == 0) {
    finish_if_empty();  // In a stop, handlers are started only for requests that still wait.
    return;
  }
  // A few per loop turn: each uv_spawn costs the loop a fork and an exec (~6 ms here), and a resize to 1,000
  // handlers at once blocked it for 6 s. The rest start on the next turns, after the loop's I/O.
  for (unsigned started = 0; serving_count() < target_; ++started) {
    if (started == kSpawnsPerLoopTurn) {
      uv_idle_start(&spawn_turn_,
                    [](uv_idle_t* idle) { static_cast<HandlerPool*>(idle->data)->spawn_missing(); });
      return;
    }
    if (spawn()) {
      schedule_respawn(true);
      return;
    }
  }
}

// Replaces handlers that died: at once after a healthy life, otherwise after a delay that doubles with every
// bad start in a row, so that a handler that crashes at start-up cannot make the reactor spin.
void HandlerPool::schedule_respawn(bool started_badly) {
  early_exits_in_a_row_ = started_badly ? early_exits_in_a_row_ + 1 : 0;
  if (!any_handler_ready_ && early_exits_in_a_row_ >= kBadStartsBeforeGivingUp) {
    log_at(LogLevel::kError, "handler command '%s' failed %u times in a row before it was ready; giving up",
           command_text(config_.handler_command).c_str(), early_exits_in_a_row_);
    life_events_.on_pool_failed();
    return;
  }
  if (early_exits_in_a_row_ == 0) {
    spawn_missing();
    return;
  }
  if (uv_is_active(as_handle(&respawn_timer_))) return;
  const unsigned doublings = std::min(early_exits_in_a_row_ - 1, 16u);
  const uint64_t delay = std::min(kFirstBackoffMs << doublings, kMaxBackoffMs);
  log_at(LogLevel::kWarn,
         "handlers failed %u times in a row soon after starting; starting the next in %llu ms",
         early_exits_in_a_row_, static_cast<unsigned long long>(delay));
  uv_timer_start(
      &respawn_timer_, [](uv_timer_t* timer) { static_cast<HandlerPool*>(timer->data)->spawn_missing(); },
      delay, 0);
}

// A handler that has served its request limit gets a replacement, and serves on until that one said hello.
// A replacement that fails to start is tried again after a later request, once the backoff allows.
// So does one grown past --handler-max-rss (uWSGI's reload-on-rss): a leaking user function costs a fresh
// process now and then, never the machine's memory. Its size is read after each request only when the option
// is set (three system calls on /proc).
void HandlerPool::retire_if_worn(HandlerProcess& handler) {
  if (handler.exited() || handler.retiring() || phase_ != Phase::kServing ||
      uv_is_active(as_handle(&respawn_timer_)))
    return;
  const HandlerId id = handler.id();
  const bool replacing = std::any_of(replacing_.begin(), replacing_.end(),
                                     [id](const auto& entry) { return entry.second.old == id; });
  if (replacing) return;
  const uint64_t limit = handler.request_limit();
  const bool served_enough = limit != 0 && handler.requests_served() >= limit;
  const uint64_t resident = config_.handler_max_rss != 0 ? resident_bytes(handler.pid()) : 0;
  const bool too_large = resident > config_.handler_max_rss && config_.handler_max_rss != 0;
  if (!served_enough && !too_large) return;
  if (too_large) {
    ++metrics_.counters.rss_recycles;
    log_at(LogLevel::kInfo,
           "handler %d has %llu MiB resident, over --handler-max-rss (%llu MiB): replacing it", handler.pid(),
           static_cast<unsigned long long>(resident >> 20),
           static_cast<unsigned long long>(config_.handler_max_rss >> 20));
  }
  if (spawn(id)) schedule_respawn(true);
}

// The handler takes no new work: it exits once idle (at once when it is idle now).
void HandlerPool::retire(HandlerProcess& handler) {
  handler.set_retiring();
  dispatcher_.set_ahead_depth(handler.id(), 0);
  // Connections sent ahead go to other handlers, unless this one took them already.
  for (const ConnectionId ahead : withdraw_aheads(handler)) connection_events_->on_ahead_returned(ahead);
  if (handler.said_hello() && !dispatcher_.connection_of(handler.id())) {
    dispatcher_.handler_gone(handler.id());  // Withdrawn from the idle handlers.
    handler.end_channel();
    return;
  }
  // A busy one ends its hand-off at the next chance, rather than linger on with its client for ever.
  if (const std::optional<ConnectionId> connection = dispatcher_.connection_of(handler.id())) {
    handler.reclaim(*connection);
  }
}

void HandlerPool::end_hand_offs_soon() {
  for (auto& [id, handler] : handlers_) {
    if (const std::optional<ConnectionId> connection = dispatcher_.connection_of(id))
      handler->reclaim(*connection);
  }
}

void HandlerPool::resize(unsigned size) {
  log_at(LogLevel::kInfo, "resizing the pool from %u to %u handlers", target_, size);
  target_ = size;
  size_t surplus = serving_count() > size ? serving_count() - size : 0;
  // Idle handlers go first, then those still starting, and busy ones last (they finish their request first).
  for (const auto wanted : {0, 1, 2}) {
    for (auto& [id, handler] : handlers_) {
      if (surplus == 0) break;
      if (handler->retiring() || replacing_.contains(id)) continue;
      const int kind = !handler->said_hello() ? 1 : dispatcher_.connection_of(id) ? 2 : 0;
      if (kind != wanted) continue;
      retire(*handler);
      --surplus;
    }
  }
  spawn_missing();
}

// Every handler gets a fresh replacement; each old one serves until its replacement said hello, then
// finishes the request it is serving, if any, and exits. A reload still under way is superseded.
void HandlerPool::reload() {
  std::vector<HandlerId> old;
  for (auto& [id, handler] : handlers_) {
    if (const auto pending = replacing_.find(id); pending != replacing_.end()) {
      handler->set_retiring();
      handler->kill_for("a newer reload replaces it");
      replacing_.erase(pending);
    } else if (!handler->retiring()) {
      old.push_back(id);
    }
  }
  log_at(LogLevel::kInfo,
         "SIGHUP: starting %zu fresh processes of '%s'%s; the old handlers serve until they are ready",
         old.size(), command_text(config_.handler_command).c_str(),
         config_.preload ? ", forked from a new template" : "");
  if (config_.preload && start_template() == nullptr) {
    abandon_reload("a new template could not be started ('" + config_.handler_command[0] + "')");
    return;
  }
  last_reload_ = {.state = "in progress", .at_unix = static_cast<double>(std::time(nullptr))};
  early_exits_in_a_row_ = 0;
  uv_timer_stop(&respawn_timer_);
  for (const HandlerId id : old) {
    if (auto error = spawn(id, true)) {
      abandon_reload("a new handler could not be started ('" + config_.handler_command[0] +
                     "'): " + error.message());
      return;
    }
  }
  if (old.empty()) last_reload_.state = "done";
}

// The reload's new handlers still starting are stopped; the old handlers keep serving.
void HandlerPool::abandon_reload(const std::string& what_failed) {
  size_t stopped = 0;
  for (auto it = replacing_.begin(); it != replacing_.end();) {
    if (!it->second.for_reload) {
      ++it;
      continue;
    }
    HandlerProcess& replacement = *handlers_.at(it->first);
    replacement.set_retiring();
    replacement.kill_for("its reload was abandoned");
    it = replacing_.erase(it);
    ++stopped;
  }
  ++metrics_.counters.failed_reloads;
  last_reload_ = {
      .state = "abandoned", .error = what_failed, .at_unix = static_cast<double>(std::time(nullptr))};
  // The new handler that failed may not be reaped yet: it is no old handler, and neither is a retiring one.
  const size_t old = std::count_if(handlers_.begin(), handlers_.end(), [this](const auto& entry) {
    return !entry.second->exited() && !entry.second->retiring() && !replacing_.contains(entry.first);
  });
  log_at(LogLevel::kError, "reload abandoned: %s; stopped %zu other new handler%s; %zu old handler%s serving",
         last_reload_.error.c_str(), stopped, stopped == 1 ? "" : "s", old, old == 1 ? " keeps" : "s keep");
}

// --- Winding down ---

void HandlerPool::drain() {
  phase_ = Phase::kDraining;
  for (auto& [id, handler] : handlers_) {
    if (replacing_.contains(id)) handler->kill_for("the server is shutting down");
  }
  replacing_.clear();
  // Connections sent ahead are their handlers' to finish (or to give back when they die, which starts a
  // handler for them): only queued ones keep idle handlers.
  if (dispatcher_.queued_connections() == 0) {
    for (auto& [id, handler] : handlers_) {
      if (handler->said_hello() && !dispatcher_.connection_of(id)) {
        dispatcher_.handler_gone(id);
        handler->end_channel();
      }
    }
  }
  finish_if_empty();
}

void HandlerPool::stop() {
  phase_ = Phase::kStopping;
  uv_timer_stop(&respawn_timer_);
  uv_idle_stop(&spawn_turn_);
  for (auto& [id, handler] : handlers_) handler->kill(SIGKILL);
  for (auto& handler_template : templates_) handler_template->kill(SIGKILL);
  finish_if_empty();
}

void HandlerPool::finish_if_empty() {
  if (phase_ == Phase::kServing || !handlers_.empty() || finished_) return;
  end_old_templates(true);
  if (!templates_.empty()) return;  // Each exits now; the last calls this again.
  finished_ = true;
  uv_close(as_handle(&respawn_timer_), nullptr);
  uv_close(as_handle(&spawn_turn_), nullptr);
  batches_.close();
  life_events_.on_pool_empty();
}

}  // namespace handoff::reactor
