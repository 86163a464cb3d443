#include "reactor/server.hpp"

#include <signal.h>

#include <cstdio>
#include <cstring>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// "127.0.0.1:53124" or "[::1]:53124" for the access log.
std::string peer_address(int socket) {
  const std::optional<ListenAddress> peer = socket_address(socket, true);
  return peer ? peer->to_string() : "-";
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(std::move(config)),
      handler_environment_{
          std::string(ipc::kChannelFdVariable) + "=" + std::to_string(ipc::kHandlerChannelFd),
          "HANDOFF_MAX_REQUEST_BYTES=" + std::to_string(config_.max_request_bytes),
          "HANDOFF_MAX_HEAD_BYTES=" + std::to_string(config_.max_head_bytes),
          "HANDOFF_READ_TIMEOUT_MS=" + std::to_string(config_.read_timeout.count()),
      },
      target_handlers_(config_.handlers),
      started_ns_(uv_hrtime()) {}

std::error_code Server::start() {
  start_watchers();
  ipc::UniqueFd socket;
  if (auto error = Listener::open(config_.listen, socket)) return error;
  listener_ = make_loop_owned<Listener>(loop_, std::move(socket),
                                        [this](ipc::UniqueFd client) { accept(std::move(client)); });
  for (unsigned i = 0; i < config_.handlers; ++i) {
    if (auto error = spawn_handler()) return error;
  }
  if (auto error = start_admin()) return error;
  std::printf("listening on %s\n", listener_->local_address().to_string().c_str());
  if (admin_) std::printf("admin listening on %s\n", admin_->local_address().to_string().c_str());
  std::fflush(stdout);
  log_at(LogLevel::kInfo, "serving with %u handlers: %s", config_.handlers, config_.handler_command[0].c_str());
  return {};
}

// --- Connections ---

void Server::accept(ipc::UniqueFd client) {
  const ConnectionId id = next_connection_id_++;
  ++metrics_.counters.accepted;
  const std::string peer = config_.access_log ? peer_address(client.get()) : std::string();
  auto connection = make_loop_owned<Connection>(loop_, id, std::move(client), config_,
                                                static_cast<Connection::Events&>(*this));
  if (config_.access_log) connection->set_peer(peer);
  connections_.emplace(id, std::move(connection));
}

void Server::on_request_ready(Connection& connection) {
  if (dispatcher_.idle_handlers() == 0 && dispatcher_.waiting_connections() >= config_.max_queue) {
    refuse(connection, Refusal::kBusy);  // The queue is full: a clear answer now beats an unbounded wait.
    return;
  }
  if (auto assignment = dispatcher_.connection_ready(connection.id())) {
    hand_off(*assignment);
  } else {
    connection.wait_in_queue();
    metrics_.longest_queue = std::max(metrics_.longest_queue, dispatcher_.waiting_connections());
  }
}

void Server::on_client_left(Connection& connection) {
  dispatcher_.connection_gone(connection.id());
  connections_.erase(connection.id());
}

void Server::on_expired(Connection& connection, Connection::Expiry expiry) {
  switch (expiry) {
    case Connection::Expiry::kIdle:
      connections_.erase(connection.id());
      break;
    case Connection::Expiry::kRead:
      refuse(connection, Refusal::kReadTimeout);
      break;
    case Connection::Expiry::kQueue:
      dispatcher_.connection_gone(connection.id());
      refuse(connection, Refusal::kBusy);
      break;
  }
}

void Server::refuse(Connection& connection, Refusal refusal) {
  count_refusal(connection, refusal, 0);
  connection.refuse(refusal);
  connections_.erase(connection.id());
}

void Server::hand_off(Assignment assignment) {
  Connection& connection = *connections_.at(assignment.connection);
  const double waited_seconds = (uv_hrtime() - connection.ready_at_ns()) / 1e9;
  metrics_.queue_wait.observe(waited_seconds);
  connection.set_queue_wait_ms(waited_seconds * 1e3);
  Connection::Request request = connection.take_request();
  handlers_.at(assignment.handler)
      ->send_connection(connection.id(), connection.socket(), std::move(request.bytes), request.flags);
}

// The handler reported done with the connection: watch it for the next request, or close it.
void Server::finish_request(ConnectionId id, bool keep_open, std::string unconsumed) {
  const auto it = connections_.find(id);
  if (!keep_open || state_ != State::kServing) {
    connections_.erase(it);
    return;
  }
  switch (it->second->resume(std::move(unconsumed))) {
    case Connection::Resume::kWatching:
      break;
    case Connection::Resume::kReady:
      on_request_ready(*it->second);
      break;
    case Connection::Resume::kClientLeft:
      connections_.erase(it);
      break;
  }
}

// The handler serving connection id is gone and reaped, so nothing else can write to the socket now. The
// client gets an error line unless the handler had begun an answer it did not finish: an error in the middle
// of an answer would be worse than none, so such a connection is only closed.
void Server::answer_orphan(ConnectionId id, const HandlerProcess& handler) {
  Connection& connection = *connections_.at(id);
  const Refusal refusal = handler.timed_out()          ? Refusal::kTimeout
                          : state_ == State::kStopping ? Refusal::kShuttingDown
                                                       : Refusal::kHandlerCrashed;
  count_refusal(connection, refusal, handler.pid());
  if (connection.may_answer_after(handler.answered_bytes())) connection.refuse(refusal);
  connections_.erase(id);
}

void Server::count_refusal(const Connection& connection, Refusal refusal, int handler_pid) {
  Counters& counters = metrics_.counters;
  const char* outcome = "ERR";
  switch (refusal) {
    case Refusal::kBusy: ++counters.busy; outcome = "ERR busy"; break;
    case Refusal::kReadTimeout: ++counters.read_timeouts; outcome = "ERR read timeout"; break;
    case Refusal::kHandlerCrashed: ++counters.crashed; outcome = "ERR handler crashed"; break;
    case Refusal::kTimeout: ++counters.timeouts; outcome = "ERR timeout"; break;
    case Refusal::kShuttingDown: ++counters.shutting_down; outcome = "ERR shutting down"; break;
  }
  if (!config_.access_log) return;
  log_access({.peer = connection.peer(), .protocol = connection.protocol_name(), .request = "-",
              .outcome = outcome, .queue_ms = 0, .service_ms = 0, .handler_pid = handler_pid});
}

// --- Signals and shutdown ---

void Server::start_watchers() {
  for (uv_signal_t* watcher :
       {&sigint_watcher_, &sigterm_watcher_, &sighup_watcher_, &sigttin_watcher_, &sigttou_watcher_}) {
    uv_signal_init(loop_, watcher);
    watcher->data = this;
  }
  for (uv_timer_t* timer : {&respawn_timer_, &shutdown_timer_}) {
    uv_timer_init(loop_, timer);
    timer->data = this;
  }
  const auto on_signal = [](uv_signal_t* watcher, int signal_number) {
    static_cast<Server*>(watcher->data)->on_signal(signal_number);
  };
  uv_signal_start(&sigint_watcher_, on_signal, SIGINT);
  uv_signal_start(&sigterm_watcher_, on_signal, SIGTERM);
  uv_signal_start(&sighup_watcher_, on_signal, SIGHUP);
  uv_signal_start(&sigttin_watcher_, on_signal, SIGTTIN);
  uv_signal_start(&sigttou_watcher_, on_signal, SIGTTOU);
  watchers_open_ = true;
}

void Server::on_signal(int signal_number) {
  if (signal_number == SIGHUP) {
    if (state_ == State::kServing) reload();
  } else if (signal_number == SIGTTIN || signal_number == SIGTTOU) {
    // As gunicorn does: one handler more, or one fewer.
    const unsigned size = signal_number == SIGTTIN ? target_handlers_ + 1 : target_handlers_ - 1;
    if (state_ != State::kServing || size < 1 || size > kMaxHandlers) {
      log_at(LogLevel::kWarn, "%s: the pool stays at %u handlers (it must be from 1 to %u)",
             strsignal(signal_number), target_handlers_, kMaxHandlers);
    } else {
      resize_pool(size);
    }
  } else if (state_ == State::kServing) {
    log_at(LogLevel::kInfo, "%s: finishing %zu requests in progress and %zu waiting, then exiting (signal again to stop now)",
             strsignal(signal_number), dispatcher_.busy_handlers(), dispatcher_.waiting_connections());
    begin_draining();
  } else if (state_ == State::kDraining) {
    log_at(LogLevel::kWarn, "%s again: stopping now", strsignal(signal_number));
    exit_status_ = 1;
    stop();
  }
}

void Server::begin_draining() {
  state_ = State::kDraining;
  listener_.reset();
  // Connections between requests (or in the middle of sending one) are closed; those waiting for a handler
  // or being served are finished first.
  std::erase_if(connections_, [](const auto& entry) { return entry.second->watching(); });
  uv_timer_start(
      &shutdown_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Server*>(timer->data);
        log_at(LogLevel::kWarn, "--shutdown-timeout (%lld ms) reached with %zu requests in progress; stopping them",
                 static_cast<long long>(self->config_.shutdown_timeout.count()), self->dispatcher_.busy_handlers());
        self->exit_status_ = 1;
        self->stop();
      },
      static_cast<uint64_t>(config_.shutdown_timeout.count()), 0);
  finish_when_idle();
}

void Server::stop() {
  state_ = State::kStopping;
  listener_.reset();
  // Connections held by a handler are answered once that handler has been killed and reaped.
  std::erase_if(connections_, [this](const auto& entry) {
    if (dispatcher_.is_being_served(entry.first)) return false;
    dispatcher_.connection_gone(entry.first);
    return true;
  });
  for (auto& [id, handler] : handlers_) handler->kill(SIGKILL);
  finish_when_idle();
}

// Once no request is in progress or waiting, the handlers are told to exit; once they all have, the last
// handles close and the loop ends.
void Server::finish_when_idle() {
  if (state_ == State::kServing) return;
  if (dispatcher_.busy_handlers() == 0 && dispatcher_.waiting_connections() == 0) {
    for (auto& [id, handler] : handlers_) {
      if (handler->said_hello()) handler->end_channel();
    }
  }
  if (handlers_.empty() && watchers_open_) {
    watchers_open_ = false;
    admin_.reset();
    for (uv_signal_t* watcher :
         {&sigint_watcher_, &sigterm_watcher_, &sighup_watcher_, &sigttin_watcher_, &sigttou_watcher_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(watcher), nullptr);
    }
    for (uv_timer_t* timer : {&respawn_timer_, &shutdown_timer_}) {
      uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
    }
  }
}

}  // namespace handoff::reactor
