// The handler side of the Server: starting handlers, giving them work, taking their reports, replacing the
// ones that die (with backoff when they die young), recycling, and the SIGHUP reload.

#include <signal.h>

#include <algorithm>
#include <cstring>

#include "reactor/log.hpp"
#include "reactor/server.hpp"

namespace handoff::reactor {
namespace {

// A handler that dies sooner than this after its start without serving a request counts as starting badly.
constexpr uint64_t kHealthyLifetimeMs = 1000;
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 10000;
// Before any handler was ever ready, this many bad starts in a row mean the handler command is broken.
constexpr unsigned kBadStartsBeforeGivingUp = 5;

}  // namespace

std::error_code Server::spawn_handler() {
  const HandlerId id = next_handler_id_++;
  auto handler =
      make_loop_owned<HandlerProcess>(loop_, id, config_, static_cast<HandlerProcess::Events&>(*this));
  if (auto error = handler->spawn(config_.handler_command, handler_environment_)) return error;
  log_at(LogLevel::kDebug, "handler %d started", handler->pid());
  handlers_.emplace(id, std::move(handler));
  return {};
}

void Server::resize_pool(unsigned size) {
  log_at(LogLevel::kInfo, "resizing the pool from %u to %u handlers", target_handlers_, size);
  target_handlers_ = size;
  size_t surplus = serving_handlers() > size ? serving_handlers() - size : 0;
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
  spawn_missing_handlers();
}

size_t Server::serving_handlers() const {
  return std::count_if(handlers_.begin(), handlers_.end(), [](const auto& entry) { return !entry.second->retiring(); });
}

void Server::spawn_missing_handlers() {
  while (serving_handlers() < target_handlers_) {
    if (spawn_handler()) {
      schedule_respawn(true);
      return;
    }
  }
}

// Replaces handlers that died: at once after a healthy life, otherwise after a delay that doubles with every
// bad start in a row, so that a handler that crashes at start-up cannot make the reactor spin.
void Server::schedule_respawn(bool started_badly) {
  early_exits_in_a_row_ = started_badly ? early_exits_in_a_row_ + 1 : 0;
  if (!any_handler_ready_ && early_exits_in_a_row_ >= kBadStartsBeforeGivingUp) {
    log_at(LogLevel::kError, "handler command '%s' failed %u times in a row before it was ready; giving up",
             config_.handler_command[0].c_str(), early_exits_in_a_row_);
    exit_status_ = 1;
    stop();
    return;
  }
  if (early_exits_in_a_row_ == 0) {
    spawn_missing_handlers();
    return;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&respawn_timer_))) return;
  const unsigned doublings = std::min(early_exits_in_a_row_ - 1, 16u);
  const uint64_t delay = std::min(kFirstBackoffMs << doublings, kMaxBackoffMs);
  log_at(LogLevel::kWarn, "handlers failed %u times in a row soon after starting; starting the next in %llu ms",
           early_exits_in_a_row_, static_cast<unsigned long long>(delay));
  uv_timer_start(
      &respawn_timer_, [](uv_timer_t* timer) { static_cast<Server*>(timer->data)->spawn_missing_handlers(); }, delay,
      0);
}

void Server::offer_work(HandlerProcess& handler) {
  if (handler.retiring()) {
    handler.end_channel();
  } else if (auto assignment = dispatcher_.handler_idle(handler.id())) {
    hand_off(*assignment);
  } else if (state_ != State::kServing) {
    finish_when_idle();
  }
}

void Server::on_request_answered(HandlerProcess& handler, int status, double service_ms) {
  Counters& counters = metrics_.counters;
  ++counters.requests;
  if (status >= 400 && status < 500) ++counters.bad_requests;
  if (status >= 500) ++counters.handler_errors;
  metrics_.service.observe(service_ms / 1e3);
  if (!config_.access_log) return;
  const std::optional<ConnectionId> id = dispatcher_.connection_of(handler.id());
  if (!id) return;
  Connection& connection = *connections_.at(*id);
  const std::string request = connection.take_request_line();
  const std::string outcome = std::to_string(status);
  log_access({.peer = connection.peer(), .protocol = connection.protocol_name(), .request = request,
              .outcome = outcome, .queue_ms = connection.queue_wait_ms(), .service_ms = service_ms,
              .handler_pid = handler.pid()});
  connection.set_queue_wait_ms(0);  // Pipelined requests after the first did not wait in the queue.
}

void Server::on_handler_ready(HandlerProcess& handler) {
  any_handler_ready_ = true;
  offer_work(handler);
}

void Server::on_handler_done(HandlerProcess& handler, ipc::Message done) {
  if (!dispatcher_.handler_done(handler.id(), done.connection_id)) {
    log_at(LogLevel::kWarn, "handler %d reported a connection it was not given; replacing it", handler.pid());
    handler.kill(SIGKILL);
    return;
  }
  if (!handler.retiring() && config_.max_requests > 0) {
    std::uniform_int_distribution<uint64_t> jitter(0, config_.max_requests_jitter);
    if (handler.requests_served() >= config_.max_requests + jitter(random_)) retire(handler);
  }
  connections_.at(done.connection_id)->count_handler_bytes(handler.answered_bytes());
  offer_work(handler);
  finish_request(done.connection_id, (done.flags & ipc::kFlagKeepOpen) != 0, std::move(done.payload));
}

void Server::on_handler_broken(HandlerProcess& handler, std::error_code why) {
  log_at(LogLevel::kWarn, "handler %d broke the ipc protocol (%s); killed it", handler.pid(), why.message().c_str());
}

void Server::on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) {
  const HandlerId id = handler.id();
  const bool expected = handler.retiring() || state_ != State::kServing;
  if (term_signal != 0) {
    log_at(LogLevel::kWarn, "handler %d was killed by signal %d (%s)", handler.pid(), term_signal, strsignal(term_signal));
  } else if (exit_status != 0 || !expected) {
    log_at(LogLevel::kWarn, "handler %d exited with status %lld", handler.pid(), static_cast<long long>(exit_status));
  } else {
    log_at(LogLevel::kDebug, "handler %d exited with status 0", handler.pid());
  }
  if (const std::optional<ConnectionId> orphan = dispatcher_.handler_gone(id)) answer_orphan(*orphan, handler);

  // A handler that died before its hello, or young without answering anything, started badly; one that was
  // killed for taking too long, or had served requests, had shown that it works.
  const bool started_badly =
      !handler.said_hello() || (!handler.timed_out() && handler.requests_served() == 0 &&
                                uv_now(loop_) - handler.started_at() < kHealthyLifetimeMs);
  const bool replace = !handler.retiring() && (state_ == State::kServing ||
                                              (state_ == State::kDraining && dispatcher_.waiting_connections() > 0));
  handlers_.erase(id);
  ++metrics_.counters.handler_exits;
  if (replace) {
    ++metrics_.counters.respawns;
    schedule_respawn(started_badly);
  } else {
    finish_when_idle();
  }
}

// The handler takes no new work: it exits once idle, and a replacement is started at once.
void Server::retire(HandlerProcess& handler) {
  handler.set_retiring();
  spawn_missing_handlers();
}

// SIGHUP: every handler is replaced by a fresh process of --handler-cmd. New handlers start at once; each old
// one finishes the request it is serving, if any, and then exits.
void Server::reload() {
  log_at(LogLevel::kInfo, "SIGHUP: replacing %zu handlers with fresh processes of '%s'", serving_handlers(),
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
  spawn_missing_handlers();
}

}  // namespace handoff::reactor
