// The handler loop behind handoff::Handler::run: receive a connection from the reactor, serve its requests
// with the session of its protocol, report done.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <unordered_map>
#include <utility>

#include "handler/http_session.hpp"
#include "handler/line_session.hpp"
#include "handler/linger.hpp"
#include "handler/template.hpp"
#include "handoff/handler.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/request_record.hpp"
#include "ipc/wire.hpp"

namespace handoff {
namespace {

namespace ipc = handoff::ipc;
using handler::Limits;
using handler::SessionOutcome;

constexpr const char* kUsage =
    "usage: %s [ITS OWN ARGUMENTS]\n"
    "A handoff handler process. The reactor starts it (reactor --handler-cmd %s); it is not meant to be\n"
    "run by hand. It reads its settings from the environment the reactor gives it:\n"
    "  HANDOFF_IPC_FD             descriptor of its channel to the reactor (always 3)\n"
    "  HANDOFF_MAX_REQUEST_BYTES  longest request line or HTTP body it serves of those it reads itself\n"
    "                             (default 2097152); the reactor reads and judges every other\n"
    "  HANDOFF_MAX_HEAD_BYTES     longest HTTP request head it serves of those (default 65536)\n"
    "  HANDOFF_WRITE_TIMEOUT_MS   how long a client may take none of an answer (default 5000)\n"
    "  HANDOFF_REACTOR_PID        its reactor; it exits when that is no longer its parent\n"
    "  HANDOFF_STATE_FD           the reactor's state page, shared by all handlers (always 4)\n"
    "  HANDOFF_RECORD_FD          this handler's answer record, read by the reactor if it dies, and where\n"
    "                             the reactor says that a client left (always 5)\n"
    "  HANDOFF_LINGER_US          how long it waits on a connection for its next request (default 0)\n"
    "  HANDOFF_EXPOSE_ERRORS      1: an exception's text goes to the client in the 500 (--expose-errors)\n"
    "  HANDOFF_TEMPLATE           1: it is a --preload template: it forks the handlers, and serves nothing\n"
    "It ignores SIGINT, SIGTERM, SIGHUP and SIGUSR2: it exits when the reactor closes its channel, or dies\n"
    "with it.\n"
    "Commands: %s\n";

// A non-negative whole number from the environment; fallback when unset; exits with a message when malformed.
long long setting(const char* name, long long fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  long long value = -1;
  const std::string_view view(text);
  const auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (error != std::errc() || end != view.data() + view.size() || value < 0) {
    std::fprintf(stderr, "handler: %s must be a non-negative whole number, not '%s'\n", name, text);
    std::exit(2);
  }
  return value;
}

void log_channel_error(const char* what, std::error_code error) {
  std::fprintf(stderr, "handler[%d]: %s: %s\n", getpid(), what, error.message().c_str());
}

// A handler lives and stops as its reactor says, whoever else signals the process group: Ctrl-C in a terminal
// (SIGINT to the foreground group), `timeout`, systemd's KillMode=control-group (SIGTERM to every process)
// and `systemctl kill -s SIGUSR2` (a takeover, to every process unless --kill-whom=main) reach the handlers
// too, and a handler that died of them would fail the request it was computing. The reactor drains and then
// closes the channel, which is what ends a handler. Ignored signals stay ignored in children the handler's
// code starts (signal(7)); such code may restore SIG_DFL in its child.
//
// It also dies with its reactor: PR_SET_PDEATHSIG (prctl(2)) sends SIGKILL when the parent exits, and a
// reactor that died before the call is noticed by the parent pid it left in HANDOFF_REACTOR_PID.
bool follow_the_reactor() {
  for (const int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGUSR2}) signal(signal_number, SIG_IGN);
  // A client that vanishes must not kill the handler; writes report EPIPE instead.
  signal(SIGPIPE, SIG_IGN);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    std::fprintf(stderr, "handler[%d]: prctl(PR_SET_PDEATHSIG): %s\n", getpid(), std::strerror(errno));
  }
  const long long reactor = setting("HANDOFF_REACTOR_PID", 0);
  return reactor == 0 || ::getppid() == reactor;
}

// What a handler started by the reactor gets from it beside its channel: limits, the state page it reads the
// queue from (lingering), and its answer record (offers of connections sent ahead, and its notes).
struct ReactorLink {
  Limits limits;
  std::chrono::microseconds linger_time{0};
  ipc::SharedState state;
  ipc::AnswerRecord answer_record;
};

// Reads the limits the reactor set in the environment and maps what it passed. False (logged) on failure.
// A handler forked by a template (--preload) follows the reactor through the template, which did.
bool attach_to_reactor(int channel_fd, ReactorLink& link, bool forked) {
  link.limits = {
      .max_request_bytes = static_cast<size_t>(setting("HANDOFF_MAX_REQUEST_BYTES", 2 << 20)),
      .max_head_bytes = static_cast<size_t>(setting("HANDOFF_MAX_HEAD_BYTES", 64 << 10)),
      .write_timeout = std::chrono::milliseconds(setting("HANDOFF_WRITE_TIMEOUT_MS", 5000)),
  };
  link.linger_time = std::chrono::microseconds(setting("HANDOFF_LINGER_US", 0));
  if (!forked && !follow_the_reactor()) return false;  // The reactor is gone already.
  if (const long long state_fd = setting(ipc::kStateFdVariable, -1); state_fd >= 0) {
    if (auto error = ipc::SharedState::map_read_only(ipc::UniqueFd(static_cast<int>(state_fd)), link.state)) {
      std::fprintf(stderr, "handler[%d]: mapping the reactor's state page: %s\n", getpid(),
                   error.message().c_str());
      return false;
    }
    link.limits.reactor_state = &link.state;
  }
  if (const long long record_fd = setting(ipc::kRecordFdVariable, -1); record_fd >= 0) {
    if (auto error = ipc::AnswerRecord::map(ipc::UniqueFd(static_cast<int>(record_fd)), link.answer_record)) {
      std::fprintf(stderr, "handler[%d]: mapping its answer record: %s\n", getpid(), error.message().c_str());
      return false;
    }
    link.limits.answer_record = &link.answer_record;
  }
  // Processes that the handler's code starts must not hold the channel open (they would keep the reactor
  // from seeing this handler exit). Client sockets arrive close-on-exec (MSG_CMSG_CLOEXEC).
  if (::fcntl(channel_fd, F_SETFD, FD_CLOEXEC) != 0) {
    std::fprintf(stderr, "handler[%d]: fcntl(F_SETFD, FD_CLOEXEC) on the channel: %s\n", getpid(),
                 std::strerror(errno));
    return false;
  }
  return true;
}

// Its copies of keep-alive connections the reactor asked it to keep (ipc::kFlagKeep), by connection id:
// their next requests come without a descriptor (ipc::kFlagKept).
using KeptSockets = std::unordered_map<uint64_t, ipc::UniqueFd>;

// What the next frame from the reactor asks: serve the connection in it, nothing (a frame of bookkeeping, or
// an offer another handler took), or exit with the code given.
struct Next {
  enum class Action { kServe, kNothing, kExit } action;
  int exit_code = 0;
};

Next receive_connection(ipc::BlockingChannel& channel, KeptSockets& kept, ipc::AnswerRecord& answer_record,
                        ipc::Message& request) {
  if (auto error = channel.receive(request)) {
    if (error == ipc::Errc::kPeerClosed) return {Next::Action::kExit, 0};  // The reactor is done with it.
    log_channel_error("receiving from the reactor", error);
    return {Next::Action::kExit, 1};
  }
  if (request.type == ipc::MessageType::kReclaim) return {Next::Action::kNothing};  // A hand-off that ended.
  if (request.type == ipc::MessageType::kForget) {
    kept.erase(request.connection_id);
    return {Next::Action::kNothing};
  }
  if (request.type != ipc::MessageType::kConnection) {
    std::fprintf(stderr, "handler[%d]: unexpected frame type %u from the reactor\n", getpid(),
                 static_cast<unsigned>(request.type));
    return {Next::Action::kExit, 1};
  }
  // A frame with a descriptor brings a newer copy of the socket than one kept, if any.
  if ((request.flags & ipc::kFlagKept) == 0) kept.erase(request.connection_id);
  // One sent ahead may have gone to another handler meanwhile: then its copy closes, unused.
  if ((request.flags & ipc::kFlagAhead) != 0 &&
      !answer_record.take(ipc::ahead_slot(request.flags),
                          ipc::offer_word(request.connection_id, request.flags >> ipc::kAheadOfferShift),
                          request.connection_id)) {
    return {Next::Action::kNothing};
  }
  if ((request.flags & ipc::kFlagKept) != 0) {
    const auto copy = kept.find(request.connection_id);
    if (copy == kept.end()) {
      std::fprintf(stderr, "handler[%d]: the reactor sent connection %llu as kept, and it was not\n",
                   getpid(), static_cast<unsigned long long>(request.connection_id));
      return {Next::Action::kExit, 1};
    }
    request.descriptor = std::move(copy->second);
    kept.erase(copy);
  }
  return {Next::Action::kServe};
}

// Serves the requests of the connection in request; while no other connection waits, the client's next
// request is served in this hand-off too if it comes soon (lingering).
SessionOutcome serve_connection(const Handler& handler, ipc::Message& request, ReactorLink& link,
                                ipc::BlockingChannel& channel) {
  const auto report_answered = [&](uint64_t bytes_written, int status, uint16_t route) {
    const ipc::Message answered{.type = ipc::MessageType::kAnswered,
                                .connection_id = request.connection_id,
                                .payload = ipc::progress_payload(bytes_written, status, {}, route)};
    if (auto error = channel.send(answered)) {
      log_channel_error("reporting an answer to the reactor", error);
      std::exit(1);
    }
  };
  const auto serve = (request.flags & ipc::kFlagHttp) ? handler::serve_http : handler::serve_lines;
  const int client = request.descriptor.get();
  ipc::RequestView record;
  if (!ipc::decode_request_record(request.payload, record)) {
    std::fprintf(stderr, "handler[%d]: the reactor sent connection %llu with a malformed request record\n",
                 getpid(), static_cast<unsigned long long>(request.connection_id));
    std::exit(1);
  }
  const handler::SessionStart start{.client_address = record.client_address,
                                    .client_port = record.client_port,
                                    .connection_id = request.connection_id};
  SessionOutcome outcome = serve(handler, client, &record, std::string(record.rest), request.flags,
                                 link.limits, report_answered, start);
  while (outcome.keep_open && outcome.unconsumed.empty() && link.linger_time.count() > 0 &&
         handler::begin_lingering(link.state, link.answer_record)) {
    if (outcome.status != 0) {
      report_answered(outcome.bytes_written, std::exchange(outcome.status, 0),
                      std::exchange(outcome.route, 0));
    }
    handler::Lingered lingered = handler::linger(client, channel.fd(), link.linger_time, link.answer_record);
    if (lingered.outcome == handler::Lingered::Outcome::kHandBack) break;
    if (lingered.outcome == handler::Lingered::Outcome::kClientGone) {
      outcome.keep_open = false;
      break;
    }
    outcome = serve(handler, client, nullptr, std::move(lingered.received), 0, link.limits, report_answered,
                    {.bytes_written = outcome.bytes_written,
                     .client_address = start.client_address,
                     .client_port = start.client_port,
                     .connection_id = start.connection_id});
  }
  return outcome;
}

}  // namespace

int Handler::run(int argc, char** argv) {
  const char* self = argc > 0 ? argv[0] : "handler";
  const long long channel_fd = setting(ipc::kChannelFdVariable, -1);
  if (channel_fd < 0) {
    // Started by hand. Started by the reactor, the arguments are the handler's own and run() leaves them be.
    const bool help = argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
    if (!help) {
      std::fprintf(stderr, "handler: %s is not set; a handler is started by the reactor\n",
                   ipc::kChannelFdVariable);
    }
    std::fprintf(help ? stdout : stderr, kUsage, self, self, command_names().c_str());
    return help ? 0 : 2;
  }
  // --preload: what ran before run() is loaded; the template forks the handlers from here.
  const bool forked = setting(ipc::kTemplateVariable, 0) == 1;
  if (forked) {
    if (!follow_the_reactor()) return 1;
    handler::serve_as_template(static_cast<int>(channel_fd));  // Returns in a forked handler.
  }
  ReactorLink link;
  if (!attach_to_reactor(static_cast<int>(channel_fd), link, forked)) return 1;

  ipc::BlockingChannel channel{ipc::UniqueFd(static_cast<int>(channel_fd))};
  channel.wait_in_poll();
  // With its answer record, it can take connections sent ahead while it is busy (ipc::kFlagAhead).
  // Its routes and commands go with it: its reports name the route of each answer by its number there.
  const ipc::Message hello{
      .type = ipc::MessageType::kHello,
      .flags = (link.answer_record.valid() ? ipc::kCanTakeAhead : 0u) | ipc::kCanKeep | ipc::kCanTakeBatches,
      .payload = route_table()};
  if (auto error = channel.send(hello)) {
    log_channel_error("sending hello to the reactor", error);
    return 1;
  }

  KeptSockets kept;
  for (;;) {
    ipc::Message request;
    const Next next = receive_connection(channel, kept, link.answer_record, request);
    if (next.action == Next::Action::kExit) return next.exit_code;
    if (next.action == Next::Action::kNothing) continue;
    const SessionOutcome outcome = serve_connection(*this, request, link, channel);
    // This process's copy of the client socket is closed before reporting, unless the reactor asked to keep
    // it: the reactor decides what happens next.
    const bool keep = outcome.keep_open && (request.flags & ipc::kFlagKeep) != 0;
    if (keep) {
      kept.emplace(request.connection_id, std::move(request.descriptor));
    } else {
      request.descriptor.reset();
    }
    const ipc::Message done{
        .type = ipc::MessageType::kDone,
        .connection_id = request.connection_id,
        .flags = (outcome.keep_open ? ipc::kDoneKeepOpen : 0u) | (keep ? ipc::kDoneKept : 0u) |
                 (outcome.write_timed_out ? ipc::kDoneWriteTimedOut : 0u),
        .payload =
            ipc::progress_payload(outcome.bytes_written, outcome.status, outcome.unconsumed, outcome.route),
    };
    if (auto error = channel.send(done)) {
      log_channel_error("reporting done to the reactor", error);
      return 1;
    }
  }
}

}  // namespace handoff
