#include "reactor/handler_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <span>
#include <utility>

#include "ipc/socket_io.hpp"
#include "reactor/child_command.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

std::error_code errno_code(int value) {
  return {value, std::system_category()};
}

}  // namespace

HandlerProcess::HandlerProcess(uv_loop_t* loop, HandlerId id, const Config& config, WriteBatches& batches,
                               Events& events)
    : loop_(loop),
      id_(id),
      config_(config),
      events_(events),
      forked_(
          loop, [this](int) { on_forked(); },
          [this](int64_t exit_status, int term_signal) { on_exit(exit_status, term_signal); }),
      channel_(loop, batches, *this),
      output_(loop, "handler") {
  process_.data = request_timer_.data = exit_timer_.data = this;
  uv_timer_init(loop_, &request_timer_);
  uv_timer_init(loop_, &exit_timer_);
}

std::error_code HandlerProcess::open_channel(ipc::UniqueFd& child_end) {
  ipc::UniqueFd reactor_end;
  if (auto error = open_channel_pair(reactor_end, child_end, "a handler's")) return error;
  if (auto error = ipc::AnswerRecord::create(answer_record_)) {
    log_at(LogLevel::kError, "creating a handler's answer record (memfd_create, mmap): %s",
           error.message().c_str());
    return error;
  }
  return channel_.start(std::move(reactor_end));
}

std::error_code HandlerProcess::spawn(const std::vector<std::string>& argv,
                                      const std::vector<std::string>& environment, int state_page) {
  ipc::UniqueFd child_end;
  if (auto error = open_channel(child_end)) {
    exited_ = true;
    return error;
  }
  ipc::UniqueFd output;
  if (auto error = open_output(output)) {
    exited_ = true;
    return error;
  }
  // The child gets: no stdin, stdout and stderr both on its output pipe (--log-format json), else on the
  // reactor's stderr (stdout is the reactor's own, for its "listening on" line), the channel at
  // kHandlerChannelFd, the shared state page at kHandlerStateFd and its answer record at kHandlerRecordFd.
  static_assert(ipc::kHandlerChannelFd == 3 && ipc::kHandlerStateFd == 4 && ipc::kHandlerRecordFd == 5);
  const int output_fd = output ? output.get() : STDERR_FILENO;
  ChildCommand command(argv, environment,
                       {-1, output_fd, output_fd, child_end.get(), state_page, answer_record_.descriptor()});
  const uv_exit_cb on_exit = [](uv_process_t* process, int64_t exit_status, int term_signal) {
    static_cast<HandlerProcess*>(process->data)->on_exit(exit_status, term_signal);
  };
  const uv_process_options_t options = command.options(on_exit);

  // uv_spawn initialises the handle even when it fails, so it is closed either way.
  started_at_ = uv_now(loop_);
  if (const int error = uv_spawn(loop_, &process_, &options); error < 0) {
    exited_ = true;
    log_at(LogLevel::kError, "cannot start handler '%s': %s", argv[0].c_str(), uv_strerror(error));
    return errno_code(-error);
  }
  output_.start(process_.pid);
  lower_priority();
  start_start_timer();
  return {};
}

std::error_code HandlerProcess::fork_from(HandlerTemplate& from) {
  ipc::UniqueFd child_end;
  if (auto error = open_channel(child_end)) {
    exited_ = true;
    return error;
  }
  ipc::UniqueFd output;
  if (auto error = open_output(output)) {
    exited_ = true;
    return error;
  }
  started_at_ = uv_now(loop_);
  start_start_timer();
  // Its pid comes later, in the template's report; until then a signal for it waits (ForkedProcess::kill),
  // and what it writes waits in its output pipe.
  forked_.fork_from(from, id_, child_end.get(), answer_record_.descriptor(), output ? output.get() : -1);
  return {};
}

std::error_code HandlerProcess::open_output(ipc::UniqueFd& write_end) {
  return config_.log_format == LogFormat::kJson ? output_.open(write_end) : std::error_code();
}

void HandlerProcess::on_forked() {
  output_.start(pid());
  lower_priority();
  if (early_hello_ && !exited_ && !broken_) on_hello(*std::exchange(early_hello_, std::nullopt));
}

void HandlerProcess::on_exit(int64_t exit_status, int term_signal) {
  exited_ = true;
  if (kill_reason_.empty() && !forked_.failure().empty()) kill_reason_ = forked_.failure();
  // The exit may be noticed before the last frames the handler sent: a handler that reported its answer
  // and then died has answered, and that report must count before the connection is judged orphaned.
  channel_.read_rest();
  // Its last words (a traceback before it died) are logged before its exit is.
  output_.finish();
  events_.on_handler_exited(*this, exit_status, term_signal);
}

// --handler-sched batch: the scheduler always takes handlers for the CPU-bound processes they are and
// disfavours them mildly at wake-ups (sched(7), SCHED_BATCH), so that a reactor that wakes gets the CPU
// sooner, at no cost to their share of it.
// --handler-nice, relative to the reactor's own niceness, lowers that share too. A failure costs only the
// preference, so it is logged and the handler runs on.
void HandlerProcess::lower_priority() {
  if (config_.handler_batch) {
    const sched_param parameters{.sched_priority = 0};
    if (::sched_setscheduler(pid(), SCHED_BATCH, &parameters) != 0) {
      log_at(LogLevel::kWarn, "sched_setscheduler(SCHED_BATCH) for handler %d: %s", pid(),
             std::strerror(errno));
    }
  }
  if (config_.handler_nice == 0) return;
  errno = 0;
  const int own = ::getpriority(PRIO_PROCESS, 0);
  if (own == -1 && errno != 0) return;
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(pid()), std::min(own + config_.handler_nice, 19)) != 0) {
    log_at(LogLevel::kWarn, "setpriority for handler %d (--handler-nice %d): %s", pid(), config_.handler_nice,
           std::strerror(errno));
  }
}

void HandlerProcess::send_connection(ConnectionId connection, int client_socket, std::string bytes,
                                     uint32_t flags) {
  // The hand-off begins in the reactor's books even when the handler's channel has broken (a send found it
  // gone, while its last reports are still read, and one made it free): the Frontend answers the connection
  // at its exit by what the socket sent in this hand-off, and the bytes reported of the connection before it,
  // still in answered_bytes_, would make a socket that sent nothing of this one look like a cut answer,
  // closed with no word to the client.
  assert(!busy_ && "a connection sent to a handler that serves one");
  answer_record_.begin(connection);
  begin_hand_off(connection);
  offers_.begin_directly();
  if (broken_) return;  // Its exit is on the way; the Frontend answers the connection then.
  const KeptCopies::Sending kept = kept_.sending(connection);
  send_frame({.type = ipc::MessageType::kConnection,
              .connection_id = connection,
              .flags = flags | kept.flags,
              .payload = std::move(bytes)},
             kept.without_descriptor ? -1 : client_socket);
}

void HandlerProcess::send_ahead(ConnectionId connection, int client_socket, std::string bytes,
                                uint32_t flags) {
  assert(busy_ && "a connection sent ahead to a handler that serves none");
  const uint32_t offer_flags = offers_.offer(connection);
  if (broken_) return;  // Its exit is on the way; the connection is withdrawn then, and waits again.
  const KeptCopies::Sending kept = kept_.sending(connection);
  send_frame({.type = ipc::MessageType::kConnection,
              .connection_id = connection,
              .flags = flags | kept.flags | offer_flags,
              .payload = std::move(bytes)},
             kept.without_descriptor ? -1 : client_socket);
}

bool HandlerProcess::withdraw_ahead(ConnectionId connection) {
  // The caller may close the connection once it is withdrawn: a batch borrows its descriptor.
  channel_.send_batch_now();
  return offers_.withdraw(connection);
}

void HandlerProcess::forget(ConnectionId connection) {
  if (!kept_.forget(connection)) return;
  if (broken_ || exited_ || !channel_.sends()) {
    (void)kept_.take_forgets();  // Its copies close as it exits.
    return;
  }
  if (!busy_) send_forgets();
}

void HandlerProcess::send_frame(const ipc::Message& message, int client_socket) {
  channel_.send(message, client_socket);
  send_forgets();  // After the frame: a descriptor travels with a write's first byte.
}

void HandlerProcess::send_forgets() {
  for (const ConnectionId forgotten : kept_.take_forgets()) {
    channel_.send({.type = ipc::MessageType::kForget, .connection_id = forgotten});
  }
}

void HandlerProcess::begin_offered(ConnectionId connection) {
  begin_hand_off(connection);
  offers_.begin(connection);
}

void HandlerProcess::begin_hand_off(ConnectionId connection) {
  answered_bytes_ = 0;
  busy_ = true;
  current_ = connection;
  reclaimed_ = false;
  request_started_ns_ = uv_hrtime();
  client_left_ns_ = 0;
  start_request_timer();
}

bool HandlerProcess::reclaim(ConnectionId connection) {
  if (broken_ || reclaimed_ || !busy_) return false;
  reclaimed_ = true;
  send_frame({.type = ipc::MessageType::kReclaim, .connection_id = connection}, -1);
  return true;
}

// --- What the handler says ---

void HandlerProcess::on_frame(ipc::Message message) {
  ipc::Progress progress{};
  const bool report = message.type == ipc::MessageType::kAnswered || message.type == ipc::MessageType::kDone;
  if (message.type == ipc::MessageType::kHello && !said_hello_ && !early_hello_) {
    // A forked handler's hello may come before its template's report of the fork: it is ready once its pid
    // is known too (a handler the reactor cannot signal or name is not one to give work).
    if (forked_.started() && forked_.pid() == 0) {
      early_hello_ = std::move(message);
    } else {
      on_hello(std::move(message));
    }
  } else if (report && said_hello_ && ipc::split_progress_payload(message.payload, progress)) {
    on_progress(std::move(message), progress);
  } else {
    break_off("it sent an unexpected frame (type " + std::to_string(static_cast<unsigned>(message.type)) +
              ", " + std::to_string(message.payload.size()) + " bytes)");
  }
}

void HandlerProcess::on_hello(ipc::Message hello) {
  std::shared_ptr<const RouteTable> routes = RouteTable::decode(hello.payload);
  if (routes == nullptr) {
    break_off("its hello's route table is malformed (" + std::to_string(hello.payload.size()) + " bytes)");
    return;
  }
  routes_ = std::move(routes);
  const uint32_t capabilities = hello.flags;
  said_hello_ = true;
  offers_.set_capability((capabilities & ipc::kCanTakeAhead) != 0);
  kept_.set_capability((capabilities & ipc::kCanKeep) != 0);
  if ((capabilities & ipc::kCanTakeBatches) != 0) channel_.take_batches();
  uv_timer_stop(&request_timer_);  // The start timer.
  events_.on_handler_ready(*this);
}

void HandlerProcess::on_progress(ipc::Message message, const ipc::Progress& progress) {
  last_answer_bytes_ = progress.bytes_written - std::min(progress.bytes_written, answered_bytes_);
  answered_bytes_ = progress.bytes_written;
  last_answer_route_ = progress.route;
  if (progress.status != 0) {
    ++requests_served_;
    const uint64_t now = uv_hrtime();
    answer_interval_ns_ = now - last_answer_ns_;
    last_answer_ns_ = now;
    events_.on_request_answered(*this, progress.status, (now - request_started_ns_) / 1e6,
                                message.type == ipc::MessageType::kAnswered);
    request_started_ns_ = now;
  }
  if (message.type == ipc::MessageType::kAnswered) {
    start_request_timer();  // The next request of this hand-off gets its own --request-timeout.
    return;
  }
  uv_timer_stop(&request_timer_);
  busy_ = false;
  // Before the report is acted on: the connection's next request may go to this handler at once.
  kept_.reported(message.connection_id, (message.flags & ipc::kDoneKept) != 0);
  events_.on_handler_done(*this, std::move(message));
  if (!busy_) send_forgets();
}

void HandlerProcess::start_request_timer() {
  uv_timer_start(
      &request_timer_,
      [](uv_timer_t* timer) { static_cast<HandlerProcess*>(timer->data)->on_request_timeout(); },
      static_cast<uint64_t>(config_.request_timeout.count()), 0);
}

void HandlerProcess::on_request_timeout() {
  if (broken_ || exited_) return;
  timed_out_ = true;
  kill_for("it exceeded --request-timeout (" + std::to_string(config_.request_timeout.count()) + " ms)");
}

// Before its hello the request timer is the start timer: a handler that hangs at start-up is not waited for.
void HandlerProcess::start_start_timer() {
  uv_timer_start(
      &request_timer_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<HandlerProcess*>(timer->data);
        if (self->said_hello_ || self->exited_) return;
        self->kill_for("it did not say hello within --handler-start-timeout (" +
                       std::to_string(self->config_.handler_start_timeout.count()) + " ms)");
      },
      static_cast<uint64_t>(config_.handler_start_timeout.count()), 0);
}

void HandlerProcess::break_off(std::string why) {
  // A handler that broke the protocol is read no more, also when its channel was found gone before (a report
  // after a broken one would meet books it no longer matches). One the handler went away from (kGone) is
  // still read at its exit, for the reports it sent before.
  if (!why.empty()) channel_.stop();
  if (broken_) return;
  broken_ = true;
  if (why.empty()) {
    uv_timer_start(
        &exit_timer_,
        [](uv_timer_t* timer) {
          auto* self = static_cast<HandlerProcess*>(timer->data);
          if (!self->exited_) {
            self->kill_for("it had not exited " + std::to_string(kExitGraceMs) +
                           " ms after its channel closed");
          }
        },
        kExitGraceMs, 0);
  } else {
    kill_for("it broke the ipc protocol: " + why);
  }
  events_.on_handler_broken(*this);
}

void HandlerProcess::tell_client_left(ConnectionId connection) {
  answer_record_.tell_client_left(connection);
  if (busy_ && connection == current_ && client_left_ns_ == 0) client_left_ns_ = uv_hrtime();
}

void HandlerProcess::cancel() {
  cancelled_ = true;
  kill_for("its client left before the answer, and it was still at the request --cancel-grace (" +
           std::to_string(config_.cancel_grace.count()) + " ms) later: the request is cancelled");
}

void HandlerProcess::kill_for(std::string reason) {
  if (kill_reason_.empty()) kill_reason_ = std::move(reason);
  kill(SIGKILL);
}

void HandlerProcess::kill(int signal) {
  if (exited_) return;
  if (forked_.started()) {
    forked_.kill(signal);
  } else if (process_.loop != nullptr) {
    uv_process_kill(&process_, signal);
  }
}

void HandlerProcess::close() {
  channel_.stop();  // Nothing more goes out, and it leaves the batches waiting.
  CloseOnLoop::close_then_delete(
      this,
      {channel_.handle(), process_.loop != nullptr ? as_handle(&process_) : nullptr, forked_.handle(),
       as_handle(&request_timer_), as_handle(&exit_timer_), output_.poll_handle(), output_.timer_handle()});
}

}  // namespace handoff::reactor
