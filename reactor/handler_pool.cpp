#include "reactor/handler_pool.hpp"

#include <signal.h>

#include <algorithm>
#include <cstring>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// A handler that dies sooner than this after its start without serving a request counts as starting badly.
constexpr uint64_t kHealthyLifetimeMs = 1000;
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 10000;
// Before any handler was ever ready, this many bad starts in a row mean the handler command is broken.
constexpr unsigned kBadStartsBeforeGivingUp = 5;

}  // namespace

HandlerPool::HandlerPool(uv_loop_t* loop, const Config& config, Dispatcher& dispatcher, Metrics& metrics,
                         Events& events)
    : loop_(loop),
      config_(config),
      dispatcher_(dispatcher),
      metrics_(metrics),
      events_(events),
      environment_{
          std::string(ipc::kChannelFdVariable) + "=" + std::to_string(ipc::kHandlerChannelFd),
          "HANDOFF_MAX_REQUEST_BYTES=" + std::to_string(config.max_request_bytes),
          "HANDOFF_MAX_HEAD_BYTES=" + std::to_string(config.max_head_bytes),
          "HANDOFF_READ_TIMEOUT_MS=" + std::to_string(config.read_timeout.count()),
      },
      target_(config.handlers) {
  uv_timer_init(loop_, &respawn_timer_);
  respawn_timer_.data = this;
}

std::error_code HandlerPool::start() {
  for (unsigned i = 0; i < target_; ++i) {
    if (auto error = spawn()) return error;
  }
  return {};
}

// --- The life of one handler: spawn, hello, reports, exit ---

std::error_code HandlerPool::spawn() {
  const HandlerId id = next_id_++;
  auto handler =
      make_loop_owned<HandlerProcess>(loop_, id, config_, static_cast<HandlerProcess::Events&>(*this));
  if (auto error = handler->spawn(config_.handler_command, environment_)) return error;
  log_at(LogLevel::kDebug, "handler %d started", handler->pid());
  handlers_.emplace(id, std::move(handler));
  return {};
}

void HandlerPool::on_handler_ready(HandlerProcess& handler) {
  any_handler_ready_ = true;
  offer(handler);
}

void HandlerPool::offer(HandlerProcess& handler) {
  if (!handler.retiring()) events_.on_handler_free(handler);
  const bool nothing_left = phase_ != Phase::kServing && !dispatcher_.connection_of(handler.id());
  if (handler.retiring() || nothing_left) {
    dispatcher_.handler_gone(handler.id());  // Withdrawn from the idle handlers, if it was one.
    handler.end_channel();
  }
}

void HandlerPool::on_request_answered(HandlerProcess& handler, int status, double service_ms) {
  events_.on_request_answered(handler, status, service_ms);
}

void HandlerPool::on_handler_done(HandlerProcess& handler, ipc::Message done) {
  if (!dispatcher_.handler_done(handler.id(), done.connection_id)) {
    log_at(LogLevel::kWarn, "handler %d reported a connection it was not given; replacing it", handler.pid());
    handler.kill(SIGKILL);
    return;
  }
  const uint64_t answered_bytes = handler.answered_bytes();
  retire_if_worn(handler);
  offer(handler);
  events_.on_connection_returned(std::move(done), answered_bytes);
}

void HandlerPool::on_handler_broken(HandlerProcess& handler, std::error_code why) {
  log_at(LogLevel::kWarn, "handler %d broke the ipc protocol (%s); killed it", handler.pid(),
         why.message().c_str());
}

void HandlerPool::on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) {
  const HandlerId id = handler.id();
  const bool expected = handler.retiring() || phase_ != Phase::kServing;
  if (term_signal != 0) {
    log_at(LogLevel::kWarn, "handler %d was killed by signal %d (%s)", handler.pid(), term_signal,
           strsignal(term_signal));
  } else if (exit_status != 0 || !expected) {
    log_at(LogLevel::kWarn, "handler %d exited with status %lld", handler.pid(),
           static_cast<long long>(exit_status));
  } else {
    log_at(LogLevel::kDebug, "handler %d exited with status 0", handler.pid());
  }
  if (const std::optional<ConnectionId> orphan = dispatcher_.handler_gone(id)) {
    events_.on_connection_orphaned(*orphan, handler);
  }

  // A handler that died before its hello, or young without answering anything, started badly; one that was
  // killed for taking too long, or had served requests, had shown that it works.
  const bool started_badly =
      !handler.said_hello() || (!handler.timed_out() && handler.requests_served() == 0 &&
                                uv_now(loop_) - handler.started_at() < kHealthyLifetimeMs);
  const bool replace =
      !handler.retiring() &&
      (phase_ == Phase::kServing || (phase_ == Phase::kDraining && dispatcher_.waiting_connections() > 0));
  handlers_.erase(id);
  ++metrics_.counters.handler_exits;
  if (replace) {
    ++metrics_.counters.respawns;
    schedule_respawn(started_badly);
  } else {
    finish_if_empty();
  }
}

// --- Keeping the pool at its size ---

size_t HandlerPool::serving_count() const {
  return std::count_if(handlers_.begin(), handlers_.end(),
                       [](const auto& entry) { return !entry.second->retiring(); });
}

bool HandlerPool::any_ready() const {
  return std::any_of(handlers_.begin(), handlers_.end(), [](const auto& entry) {
    return entry.second->said_hello() && !entry.second->retiring();
  });
}

void HandlerPool::spawn_missing() {
  if (phase_ != Phase::kServing && dispatcher_.waiting_connections() == 0) {
    finish_if_empty();  // In a stop, handlers are started only for requests that still wait.
    return;
  }
  while (serving_count() < target_) {
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
           config_.handler_command[0].c_str(), early_exits_in_a_row_);
    events_.on_pool_failed();
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

// A handler that has served --max-requests (plus its jitter) takes no new work: it exits once idle, and a
// replacement is started at once.
void HandlerPool::retire_if_worn(HandlerProcess& handler) {
  if (handler.retiring() || config_.max_requests == 0) return;
  std::uniform_int_distribution<uint64_t> jitter(0, config_.max_requests_jitter);
  if (handler.requests_served() < config_.max_requests + jitter(random_)) return;
  handler.set_retiring();
  spawn_missing();
}

void HandlerPool::resize(unsigned size) {
  log_at(LogLevel::kInfo, "resizing the pool from %u to %u handlers", target_, size);
  target_ = size;
  size_t surplus = serving_count() > size ? serving_count() - size : 0;
  // Idle handlers go first, then those still starting, and busy ones last (they finish their request first).
  for (const auto wanted : {0, 1, 2}) {
    for (auto& [id, handler] : handlers_) {
      if (surplus == 0) break;
      if (handler->retiring()) continue;
      const int kind = !handler->said_hello() ? 1 : dispatcher_.connection_of(id) ? 2 : 0;
      if (kind != wanted) continue;
      handler->set_retiring();
      --surplus;
      if (kind == 0) {
        dispatcher_.handler_gone(id);
        handler->end_channel();
      }
    }
  }
  spawn_missing();
}

// New handlers start at once; each old one finishes the request it is serving, if any, and then exits.
void HandlerPool::reload() {
  log_at(LogLevel::kInfo, "SIGHUP: replacing %zu handlers with fresh processes of '%s'", serving_count(),
         config_.handler_command[0].c_str());
  for (auto& [id, handler] : handlers_) {
    if (handler->retiring()) continue;
    handler->set_retiring();
    if (handler->said_hello() && !dispatcher_.connection_of(id)) {
      dispatcher_.handler_gone(id);  // Idle: withdrawn from the idle list, told to exit.
      handler->end_channel();
    }
  }
  early_exits_in_a_row_ = 0;
  spawn_missing();
}

// --- Winding down ---

void HandlerPool::drain() {
  phase_ = Phase::kDraining;
  if (dispatcher_.waiting_connections() == 0) {
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
  for (auto& [id, handler] : handlers_) handler->kill(SIGKILL);
  finish_if_empty();
}

void HandlerPool::finish_if_empty() {
  if (phase_ == Phase::kServing || !handlers_.empty() || finished_) return;
  finished_ = true;
  uv_close(as_handle(&respawn_timer_), nullptr);
  events_.on_pool_empty();
}

}  // namespace handoff::reactor
