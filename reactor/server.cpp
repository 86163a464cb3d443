#include "reactor/server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "reactor/log.hpp"
#include "reactor/pid_file.hpp"
#include "reactor/privileges.hpp"
#include "reactor/systemd.hpp"

namespace handoff::reactor {

namespace {

// A reactor that takes over keeps the pool size the old one had in force (POST /pool, SIGTTIN).
Config with_inherited_pool_size(Config config) {
  if (const std::optional<unsigned> size = Predecessor::pool_size_from_environment(config.max_handlers)) {
    config.handlers = *size;
  }
  return config;
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(with_inherited_pool_size(std::move(config))),
      pool_(loop, config_, state_page_, dispatcher_, metrics_, *this),
      frontend_(loop, config_, dispatcher_, pool_, metrics_),
      admin_routes_(loop, pool_, frontend_, dispatcher_, metrics_, state_page_) {
  pool_.set_connection_events(frontend_);
}

std::error_code Server::start() {
  start_watchers();
  if (auto error = ipc::SharedState::create(state_page_)) {
    log_at(LogLevel::kError, "creating the state page shared with handlers (memfd_create, mmap): %s",
           error.message().c_str());
    return error;
  }
  dispatcher_.publish_waiting_to(&state_page_);
  std::optional<Identity> run_as;
  if (config_.user) {
    std::variant<Identity, std::string> resolved = resolve_identity(*config_.user, config_.group);
    if (const auto* error = std::get_if<std::string>(&resolved)) {
      log_at(LogLevel::kError, "%s", error->c_str());
      return std::make_error_code(std::errc::invalid_argument);
    }
    run_as = std::get<Identity>(resolved);
    if (run_as->uid == 0 && !config_.allow_root_handlers) {
      log_at(LogLevel::kError,
             "--user '%s' is root: handlers would run as root; give --allow-root-handlers for that",
             config_.user->c_str());
      return std::make_error_code(std::errc::operation_not_permitted);
    }
  }
  // The ports are bound first, as whoever started the reactor (root may bind ports below 1024); then the
  // reactor drops to --user, and only then starts the handlers.
  ListenSockets sockets;
  if (auto error = open_listen_sockets(sockets)) return error;
  // A successor accepts nothing until it is ready: until then the old reactor serves alone, and a
  // successor that fails costs no connection.
  const bool taking_over = predecessor_channel_.has_value();
  if (auto error = frontend_.listen(std::move(sockets.serve), descriptor_reserve_, !taking_over))
    return error;
  for (const ListenAddress& address : frontend_.local_addresses()) {
    if (address.is_unix() && config_.listen_given &&
        std::find_if(config_.listen.begin(), config_.listen.end(), [&](const ListenAddress& named) {
          return named.path == address.path;
        }) != config_.listen.end()) {
      socket_files_.push_back(address.path);
    }
  }
  // The socket files belong to the user the reactor runs as, with its group: mode=0660 then lets that group
  // connect (a balancer run in it), as it would a socket the user had made.
  if (run_as && !taking_over) {
    for (const std::string& path : socket_files_) {
      if (::chown(path.c_str(), run_as->uid, run_as->gid) != 0) {
        const int error = errno;
        log_at(LogLevel::kError, "--listen unix:%s: chown to --user: %s", path.c_str(), std::strerror(error));
        return {error, std::system_category()};
      }
    }
  }
  if (taking_over) {
    admin_socket_kept_ = std::move(sockets.admin);
  } else if (sockets.admin) {
    start_admin(std::move(sockets.admin));
  }
  // A successor runs as the reactor it takes over from already does: --user is dropped to once only.
  if (run_as && !(taking_over && ::geteuid() == run_as->uid)) {
    if (auto error = drop_privileges(*run_as)) return error;
  }
  // As the reactor runs from now on: it writes the file once ready, and its successor too.
  if (config_.pid_file) {
    if (auto error = check_pid_file(*config_.pid_file)) {
      log_at(LogLevel::kError, "--pid-file %s: cannot create a file there: %s", config_.pid_file->c_str(),
             error.message().c_str());
      return error;
    }
  }
  if (auto error = pool_.start()) return error;
  return {};
}

void Server::start_admin(ipc::UniqueFd socket) {
  admin_ = std::make_unique<AdminServer>(
      loop_, std::move(socket), descriptor_reserve_, config_.admin_token,
      [this](std::string_view method, std::string_view path, std::string_view query) {
        return admin_routes_.answer(method, path, query);
      });
}

std::error_code Server::open_listen_sockets(ListenSockets& sockets) {
  if (std::optional<ipc::UniqueFd> channel = Predecessor::channel_from_environment()) {
    if (!*channel) return std::make_error_code(std::errc::bad_file_descriptor);  // Logged.
    predecessor_channel_.emplace(std::move(*channel));
    return Predecessor::receive_listeners(*predecessor_channel_, sockets);
  }
  std::optional<ListenSockets> passed;
  if (auto error = take_systemd_sockets(passed)) return error;
  if (passed && config_.listen_given) {
    log_at(LogLevel::kError,
           "--listen was given, and systemd passed a socket to listen on: give one of them");
    return std::make_error_code(std::errc::invalid_argument);
  }
  if (passed) {
    sockets = std::move(*passed);
  } else {
    for (const ListenAddress& address : config_.listen) {
      if (auto error = Listener::open(address, config_.reuse_port, sockets.serve.emplace_back()))
        return error;
    }
  }
  // A socket systemd passed as the admin port's is used as that; else --admin is bound.
  if (!sockets.admin && config_.admin) {
    if (auto error = Listener::open(*config_.admin, false, sockets.admin)) return error;
  }
  return {};
}

// Ready means ready: connections were accepted and queued since the listener opened, and now a handler is
// there for each. A reactor that takes over tells the old one only now: until then, that one serves alone.
void Server::on_pool_ready() {
  if (phase_ != Phase::kServing) return;
  const bool taking_over = predecessor_channel_.has_value();
  if (taking_over) {
    frontend_.start_accepting();
    if (admin_socket_kept_) start_admin(std::move(admin_socket_kept_));
  }
  // Before the "listening on" line: whoever waits for that line finds the file written.
  if (config_.pid_file) {
    if (auto error = write_pid_file(*config_.pid_file)) {
      log_at(LogLevel::kError, "--pid-file %s: writing it: %s", config_.pid_file->c_str(),
             error.message().c_str());
    }
  }
  for (const ListenAddress& address : frontend_.local_addresses()) {
    std::printf("listening on %s\n", address.to_string().c_str());
  }
  if (admin_) std::printf("admin listening on %s\n", admin_->local_address().to_string().c_str());
  std::fflush(stdout);
  log_at(LogLevel::kInfo, "serving with %u handler%s: %s", pool_.target(), pool_.target() == 1 ? "" : "s",
         command_text(config_.handler_command).c_str());
  // systemd follows a reactor that takes over first (MAINPID), and then the old one lets go.
  notify_ready(taking_over);
  if (!taking_over) return;
  predecessor_ = make_loop_owned<Predecessor>(
      loop_, std::move(*predecessor_channel_),
      [this](PassedConnection connection) { frontend_.adopt(std::move(connection)); });
  predecessor_channel_.reset();
}

// --- Takeover (reactor/takeover.hpp) ---

void Server::begin_takeover() {
  if (phase_ != Phase::kServing || successor_ || (predecessor_ && !predecessor_->finished()) ||
      predecessor_channel_) {
    log_at(LogLevel::kWarn, "SIGUSR2: no takeover now (%s)",
           successor_                  ? "one is in progress"
           : phase_ != Phase::kServing ? "the reactor is stopping"
                                       : "this reactor is still taking over from the one before");
    return;
  }
  const Successor::Options options{
      .argv = config_.own_command,
      .serve = frontend_.listening_sockets(),
      .admin = admin_ ? admin_->listening_socket() : -1,
      .pool_size = pool_.target(),
      // Twice a handler's start timeout: the successor's pool retries a handler that fails to start once.
      .ready_timeout = 2 * config_.handler_start_timeout,
      .stall_timeout = config_.shutdown_timeout,
  };
  if (auto error = Successor::start(loop_, options, *this, successor_)) {
    successor_.reset();  // Logged; this reactor serves on.
  }
}

// From here the successor accepts too; this reactor stops, and its connections follow their listener.
void Server::on_successor_ready(Successor& successor) {
  if (phase_ != Phase::kServing) return;  // A stop began, and stopped the successor too.
  phase_ = Phase::kHandingOver;
  bound_the_wind_down();
  if (admin_) {
    admin_socket_kept_.reset(::fcntl(admin_->listening_socket(), F_DUPFD_CLOEXEC, 0));
    admin_.reset();
  }
  // A handler lingering on a client that keeps sending in time would otherwise keep the connection here.
  pool_.end_hand_offs_soon();
  frontend_.pass_all_to_successor(
      [&successor](PassedConnection connection) { successor.pass(std::move(connection)); },
      [this] { every_connection_passed(); });
}

void Server::on_successor_failed(Successor&) {
  successor_.reset();
  log_at(LogLevel::kWarn, "takeover abandoned: this reactor serves on");
}

void Server::on_successor_lost(Successor&, std::vector<PassedConnection> unpassed) {
  successor_.reset();
  // Nothing more goes to it: a stop that began during the hand-over closes what is left as any stop does.
  frontend_.stop_passing();
  if (phase_ != Phase::kHandingOver) return;
  const size_t given_back = unpassed.size();
  for (PassedConnection& connection : unpassed) frontend_.accept_passed(std::move(connection));
  log_at(LogLevel::kWarn,
         "takeover abandoned during the hand-over: this reactor serves on with %zu connections (%zu of them "
         "given back unpassed)",
         frontend_.open_connections(), given_back);
  phase_ = Phase::kServing;
  uv_timer_stop(&shutdown_timer_);
  frontend_.start_accepting();
  if (admin_socket_kept_) start_admin(std::move(admin_socket_kept_));
}

// Every connection is in the successor's outbox: kTakeoverEnd follows them.
void Server::every_connection_passed() {
  assert(successor_ != nullptr);  // Lost, it ended the hand-over (on_successor_lost).
  successor_->finish();
}

// The successor took every connection: the handlers finish and this reactor exits.
void Server::on_successor_took_all(Successor& successor) {
  log_at(LogLevel::kInfo, "takeover: the new reactor (pid %d) took every connection; exiting",
         successor.pid());
  admin_socket_kept_.reset();
  handed_over_ = true;
  if (phase_ != Phase::kHandingOver) return;  // A stop signal came meanwhile, and winds the reactor down.
  phase_ = Phase::kDraining;
  stop_signal_at_ns_ = 0;  // No stop was asked for: the first signal now is the first.
  frontend_.drain();
  pool_.drain();
}

// --- Signals ---

void Server::start_watchers() {
  for (uv_signal_t* watcher : {&sigint_watcher_, &sigterm_watcher_, &sighup_watcher_, &sigttin_watcher_,
                               &sigttou_watcher_, &sigusr2_watcher_}) {
    uv_signal_init(loop_, watcher);
    watcher->data = this;
  }
  uv_timer_init(loop_, &shutdown_timer_);
  shutdown_timer_.data = this;
  const auto on_signal = [](uv_signal_t* watcher, int signal_number) {
    static_cast<Server*>(watcher->data)->on_signal(signal_number);
  };
  uv_signal_start(&sigint_watcher_, on_signal, SIGINT);
  uv_signal_start(&sigterm_watcher_, on_signal, SIGTERM);
  uv_signal_start(&sighup_watcher_, on_signal, SIGHUP);
  uv_signal_start(&sigttin_watcher_, on_signal, SIGTTIN);
  uv_signal_start(&sigttou_watcher_, on_signal, SIGTTOU);
  uv_signal_start(&sigusr2_watcher_, on_signal, SIGUSR2);
  watchers_open_ = true;
}

void Server::on_signal(int signal_number) {
  if (signal_number == SIGHUP) {
    if (phase_ == Phase::kServing) pool_.reload();
  } else if (signal_number == SIGUSR2) {
    begin_takeover();
  } else if (signal_number == SIGTTIN || signal_number == SIGTTOU) {
    // As gunicorn does: one handler more, or one fewer.
    const unsigned target = pool_.target();
    const unsigned size = signal_number == SIGTTIN ? target + 1 : target - 1;
    if (phase_ != Phase::kServing || size < 1 || size > config_.max_handlers) {
      log_at(LogLevel::kWarn, "%s: the pool stays at %u handlers (it must be from 1 to --max-handlers, %u)",
             strsignal(signal_number), target, config_.max_handlers);
    } else {
      pool_.resize(size);
    }
  } else if (phase_ == Phase::kServing || phase_ == Phase::kHandingOver) {
    stop_signal_at_ns_ = uv_hrtime();
    log_at(LogLevel::kInfo,
           "%s: finishing %zu requests in progress and %zu waiting, then exiting (signal again to stop now)",
           strsignal(signal_number), dispatcher_.busy_handlers(), dispatcher_.waiting_connections());
    begin_draining();
  } else if (phase_ == Phase::kDraining && stop_signal_at_ns_ == 0) {
    // Exiting after a takeover already: asked to stop, it does what it does.
    stop_signal_at_ns_ = uv_hrtime();
    log_at(LogLevel::kInfo, "%s: exiting after the takeover already (signal again to stop now)",
           strsignal(signal_number));
  } else if (phase_ == Phase::kDraining) {
    // timeout(1) signals its command and then the command's process group, and a script may do the same:
    // the reactor gets one request to stop twice in a row. A person who means "now" signals again later.
    if (uv_hrtime() - stop_signal_at_ns_ < kRepeatedStopSignalNs) {
      log_at(LogLevel::kDebug, "%s again at once: taken as the same request to stop",
             strsignal(signal_number));
      return;
    }
    log_at(LogLevel::kWarn, "%s again: stopping now", strsignal(signal_number));
    exit_status_ = 1;
    stop();
  }
}

// --- Shutdown ---

void Server::begin_draining() {
  phase_ = Phase::kDraining;
  // After a takeover's successor was ready, it is the service's main process: this one's stop is not the
  // service's.
  if (!successor_ || !successor_->ready()) notify_stopping();
  if (successor_) successor_->stop();  // One not ready yet stops too.
  bound_the_wind_down();
  // Answers finished from now on tell keep-alive clients that the connection closes (handlers read it here),
  // so that none sends its next request into a closing socket.
  state_page_.set_draining();
  frontend_.drain();
  pool_.drain();
}

void Server::bound_the_wind_down() {
  if (uv_is_active(as_handle(&shutdown_timer_))) return;
  uv_timer_start(
      &shutdown_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<Server*>(timer->data);
        // In a hand-over with no request in progress, only the outbox is left: the Successor bounds it.
        if (self->phase_ == Phase::kHandingOver && self->dispatcher_.busy_handlers() == 0) return;
        log_at(LogLevel::kWarn,
               "--shutdown-timeout (%lld ms) reached with %zu requests in progress; stopping them",
               static_cast<long long>(self->config_.shutdown_timeout.count()),
               self->dispatcher_.busy_handlers());
        self->exit_status_ = 1;
        self->stop();
      },
      static_cast<uint64_t>(config_.shutdown_timeout.count()), 0);
}

void Server::stop() {
  phase_ = Phase::kStopping;
  frontend_.stop();
  pool_.stop();
}

void Server::on_pool_failed() {
  exit_status_ = 1;
  stop();
}

// Every handler has exited: the last handles close and the loop ends.
void Server::on_pool_empty() {
  admin_.reset();
  successor_.reset();  // The successor runs on; only the handles close.
  predecessor_.reset();
  frontend_.finish();
  close_watchers();
}

void Server::remove_socket_files() const {
  if (handed_over_) return;
  for (const std::string& path : socket_files_) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      log_at(LogLevel::kWarn, "removing the socket file %s (unlink): %s", path.c_str(), std::strerror(errno));
    }
  }
}

void Server::close_watchers() {
  if (!watchers_open_) return;
  watchers_open_ = false;
  for (uv_signal_t* watcher : {&sigint_watcher_, &sigterm_watcher_, &sighup_watcher_, &sigttin_watcher_,
                               &sigttou_watcher_, &sigusr2_watcher_}) {
    uv_close(as_handle(watcher), nullptr);
  }
  uv_close(as_handle(&shutdown_timer_), nullptr);
}

}  // namespace handoff::reactor
