#include "reactor/server.hpp"

#include <signal.h>

#include <cstdio>
#include <cstring>

#include "reactor/log.hpp"

namespace handoff::reactor {

Server::Server(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(std::move(config)),
      handler_environment_{
          std::string(ipc::kChannelFdVariable) + "=" + std::to_string(ipc::kHandlerChannelFd),
          "HANDOFF_MAX_REQUEST_BYTES=" + std::to_string(config_.max_request_bytes),
      } {}

std::error_code Server::start() {
  ipc::UniqueFd socket;
  if (auto error = Listener::open(config_.listen, socket)) return error;
  listener_ = make_loop_owned<Listener>(loop_, std::move(socket),
                                        [this](ipc::UniqueFd client) { accept(std::move(client)); });
  for (unsigned i = 0; i < config_.handlers; ++i) {
    if (auto error = spawn_handler()) return error;
  }
  start_signal_watchers();

  std::printf("listening on %s\n", listener_->local_address().to_string().c_str());
  std::fflush(stdout);
  log_line("serving with %u handlers: %s", config_.handlers, config_.handler_command[0].c_str());
  return {};
}

// --- Connections ---

void Server::accept(ipc::UniqueFd client) {
  const ConnectionId id = next_connection_id_++;
  connections_.emplace(id, make_loop_owned<Connection>(loop_, id, std::move(client), config_.max_head_bytes,
                                                       static_cast<Connection::Events&>(*this)));
}

void Server::on_request_ready(Connection& connection) {
  if (auto assignment = dispatcher_.connection_ready(connection.id())) hand_off(*assignment);
}

void Server::on_client_left(Connection& connection) {
  dispatcher_.connection_gone(connection.id());
  connections_.erase(connection.id());
}

void Server::hand_off(Assignment assignment) {
  Connection& connection = *connections_.at(assignment.connection);
  Connection::Request request = connection.take_request();
  handlers_.at(assignment.handler)
      ->send_connection(connection.id(), connection.socket(), std::move(request.bytes), request.flags);
}

// --- Handlers ---

std::error_code Server::spawn_handler() {
  const HandlerId id = next_handler_id_++;
  auto handler = make_loop_owned<HandlerProcess>(loop_, id, static_cast<HandlerProcess::Events&>(*this));
  if (auto error = handler->spawn(config_.handler_command, handler_environment_)) return error;
  handlers_.emplace(id, std::move(handler));
  return {};
}

void Server::offer_work(HandlerId handler) {
  if (auto assignment = dispatcher_.handler_idle(handler)) {
    hand_off(*assignment);
  } else if (state_ == State::kDraining) {
    finish_when_idle();
  }
}

void Server::on_handler_ready(HandlerProcess& handler) { offer_work(handler.id()); }

void Server::on_handler_done(HandlerProcess& handler, ipc::Message done) {
  if (!dispatcher_.handler_done(handler.id(), done.connection_id)) {
    log_line("handler %d reported a connection it was not given; replacing it", handler.pid());
    handler.kill(SIGKILL);
    return;
  }
  const ConnectionId id = done.connection_id;
  const bool keep_open = (done.flags & ipc::kFlagKeepOpen) && state_ == State::kServing;
  offer_work(handler.id());

  const auto it = connections_.find(id);
  if (!keep_open) {
    connections_.erase(it);
    return;
  }
  switch (it->second->resume(std::move(done.payload))) {
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

void Server::on_handler_broken(HandlerProcess& handler, std::error_code why) {
  log_line("handler %d broke its channel (%s); it was killed", handler.pid(), why.message().c_str());
}

void Server::on_handler_exited(HandlerProcess& handler, int64_t exit_status, int term_signal) {
  const HandlerId id = handler.id();
  if (term_signal != 0) {
    log_line("handler %d was killed by signal %d (%s)", handler.pid(), term_signal, strsignal(term_signal));
  } else if (exit_status != 0 || state_ == State::kServing) {
    log_line("handler %d exited with status %lld", handler.pid(), static_cast<long long>(exit_status));
  }
  // The connection it was serving cannot be finished by anyone else: close it.
  if (const std::optional<ConnectionId> orphan = dispatcher_.handler_gone(id)) connections_.erase(*orphan);
  handlers_.erase(id);

  if (state_ == State::kServing) {
    if (spawn_handler()) log_line("the pool is one handler short");
  } else {
    finish_when_idle();
  }
}

// --- Shutdown ---

void Server::start_signal_watchers() {
  for (uv_signal_t* watcher : {&sigint_watcher_, &sigterm_watcher_}) {
    uv_signal_init(loop_, watcher);
    watcher->data = this;
  }
  const auto on_signal = [](uv_signal_t* watcher, int signal_number) {
    static_cast<Server*>(watcher->data)->on_signal(signal_number);
  };
  uv_signal_start(&sigint_watcher_, on_signal, SIGINT);
  uv_signal_start(&sigterm_watcher_, on_signal, SIGTERM);
  signals_watched_ = true;
}

void Server::on_signal(int signal_number) {
  if (state_ == State::kServing) {
    log_line("%s: finishing %zu requests in progress and %zu waiting, then exiting (signal again to stop now)",
             strsignal(signal_number), dispatcher_.busy_handlers(), dispatcher_.waiting_connections());
    begin_draining();
  } else {
    log_line("%s again: stopping now", strsignal(signal_number));
    exit_status_ = 1;
    stop();
  }
}

void Server::begin_draining() {
  state_ = State::kDraining;
  listener_.reset();
  // Connections between requests (or in the middle of sending one) are closed; those waiting for a handler
  // or being served are finished first.
  std::erase_if(connections_, [this](const auto& entry) {
    const ConnectionId id = entry.first;
    if (dispatcher_.is_waiting(id)) return false;
    for (const auto& [handler, process] : handlers_) {
      if (dispatcher_.connection_of(handler) == id) return false;
    }
    return true;
  });
  finish_when_idle();
}

void Server::stop() {
  state_ = State::kStopping;
  listener_.reset();
  connections_.clear();
  for (auto& [id, handler] : handlers_) handler->kill(SIGKILL);
  finish_when_idle();
}

// Once no request is in progress or waiting, the handlers are told to exit; once they all have, the last
// handles close and the loop ends.
void Server::finish_when_idle() {
  if (state_ == State::kServing) return;
  if (dispatcher_.busy_handlers() == 0 && dispatcher_.waiting_connections() == 0) {
    for (auto& [id, handler] : handlers_) handler->end_channel();
  }
  if (handlers_.empty() && signals_watched_) {
    signals_watched_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&sigint_watcher_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_watcher_), nullptr);
  }
}

}  // namespace handoff::reactor
