#include "reactor/frontend.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// "127.0.0.1:53124" or "[::1]:53124" for the access log.
std::string peer_address(int socket) {
  const std::optional<ListenAddress> peer = socket_address(socket, true);
  return peer ? peer->to_string() : "-";
}

}  // namespace

Frontend::Frontend(uv_loop_t* loop, const Config& config, Dispatcher& dispatcher, HandlerPool& pool,
                   Metrics& metrics)
    : loop_(loop),
      config_(config),
      dispatcher_(dispatcher),
      pool_(pool),
      metrics_(metrics),
      budget_(config.max_buffered_bytes, Connection::kReadChunkBytes, [this](ConnectionId id) {
        const auto it = connections_.find(id);
        return it != connections_.end() && it->second->resume_reading();
      }) {
  dispatcher_.look_up_kept_by([this](ConnectionId id) -> std::optional<HandlerId> {
    const auto it = connections_.find(id);
    return it != connections_.end() ? it->second->kept_by() : std::nullopt;
  });
  dispatcher_.look_up_client([this](ConnectionId id) {
    const auto it = connections_.find(id);
    return it != connections_.end() ? it->second->client_name() : std::string();
  });
  uv_timer_init(loop_, &stall_timer_);
  stall_timer_.data = this;
  budget_.on_pressure([this] {
    if (uv_is_active(as_handle(&stall_timer_))) return;
    uv_timer_start(
        &stall_timer_,
        [](uv_timer_t* timer) { static_cast<Frontend*>(timer->data)->check_stalled_uploads(); },
        kStallCheckMs, kStallCheckMs);
  });
}

// A closing connection gives its bytes back to the budget, which may resume another one by looking it up in
// connections_: the map must not be in the middle of its own destruction then.
Frontend::~Frontend() {
  dispatcher_.look_up_kept_by(nullptr);
  dispatcher_.look_up_client(nullptr);
  std::unordered_map<ConnectionId, LoopOwned<Connection>> closing;
  closing.swap(connections_);
}

std::error_code Frontend::listen(std::vector<ipc::UniqueFd> sockets, DescriptorReserve& reserve,
                                 bool accept_now) {
  if (auto error = SocketPoller::open(loop_, poller_)) return error;
  for (ipc::UniqueFd& socket : sockets) {
    listeners_.push_back(make_loop_owned<Listener>(
        loop_, std::move(socket), reserve, Listener::ReserveUse::kTakeBack, [this](ipc::UniqueFd client) {
          ++metrics_.counters.accepted;
          accept(std::move(client), {}, true);
        }));
    if (!accept_now) listeners_.back()->hold(Listener::Hold::kTakeover);
  }
  return {};
}

std::vector<ListenAddress> Frontend::local_addresses() const {
  std::vector<ListenAddress> addresses;
  for (const auto& listener : listeners_) addresses.push_back(listener->local_address());
  return addresses;
}

std::vector<int> Frontend::listening_sockets() const {
  std::vector<int> sockets;
  for (const auto& listener : listeners_) sockets.push_back(listener->socket());
  return sockets;
}

void Frontend::hold_listeners(Listener::Hold reason) {
  for (auto& listener : listeners_) listener->hold(reason);
}

void Frontend::release_listeners(Listener::Hold reason) {
  for (auto& listener : listeners_) listener->release(reason);
}

std::array<size_t, Connection::kStates> Frontend::connections_by_state() const {
  std::array<size_t, Connection::kStates> counts{};
  for (const auto& [id, connection] : connections_) ++counts.at(static_cast<size_t>(connection->state()));
  return counts;
}

void Frontend::start_accepting() {
  release_listeners(Listener::Hold::kTakeover);
}

// --- The life of one connection: accept, request ready, dispatch, hand-off, done ---

void Frontend::accept(ipc::UniqueFd client, ConnectionStart start, bool fresh) {
  const ConnectionId id = next_id_++;
  start.proxy = proxy_header_rule(client.get(), fresh);
  // TCP_NODELAY comes from the listening socket (Listener::open).
  const std::string peer = config_.access_log ? peer_address(client.get()) : std::string();
  auto connection = make_loop_owned<Connection>(loop_, id, std::move(client), config_, budget_, *poller_,
                                                static_cast<Connection::Events&>(*this), std::move(start));
  if (!connection->polled()) return;  // Logged; the client sees the connection close.
  if (config_.access_log) connection->set_peer(peer);
  connections_.emplace(id, std::move(connection));
  hold_at_capacity();
}

ProxyHeaderRule Frontend::proxy_header_rule(int client, bool fresh) const {
  if (!config_.proxy_protocol_from.empty()) {
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    if (::getpeername(client, reinterpret_cast<sockaddr*>(&peer), &length) == 0 &&
        any_contains(config_.proxy_protocol_from, reinterpret_cast<const sockaddr*>(&peer))) {
      return ProxyHeaderRule::kRequired;
    }
  }
  // Another peer's header was looked for already when the connection is taken over.
  return fresh ? ProxyHeaderRule::kRefused : ProxyHeaderRule::kNone;
}

void Frontend::hold_at_capacity() {
  if (config_.max_connections != 0 && connections_.size() >= config_.max_connections && !listeners_.empty()) {
    // More clients wait in the listen backlog (TCP holds them, at no cost to the reactor) until one closes.
    // Said when it first happens and then at most every 10 s: under overload it happens at every accept.
    const uint64_t now = uv_hrtime();
    if (last_capacity_report_ns_ == 0 || now - last_capacity_report_ns_ >= kCapacityReportIntervalNs) {
      log_at(LogLevel::kWarn, "%zu connections open (--max-connections): new ones wait in the listen backlog",
             connections_.size());
      last_capacity_report_ns_ = now;
    }
    at_capacity_ = true;
    hold_listeners(Listener::Hold::kCapacity);
  }
}

void Frontend::close_connection(ConnectionId id) {
  kept_requests_.erase(id);
  if (const auto it = connections_.find(id); it != connections_.end()) forget_kept_copy(*it->second);
  connections_.erase(id);
  release_below_capacity();
  report_if_all_passed();
}

void Frontend::release_below_capacity() {
  if (at_capacity_ && connections_.size() < config_.max_connections && !listeners_.empty()) {
    at_capacity_ = false;
    release_listeners(Listener::Hold::kCapacity);
  }
}

void Frontend::forget_kept_copy(Connection& connection) {
  const std::optional<HandlerId> holder = connection.kept_by();
  if (!holder) return;
  connection.set_kept_by(std::nullopt);
  if (HandlerProcess* handler = pool_.find(*holder)) handler->forget(connection.id());
}

void Frontend::on_request_ready(Connection& connection) {
  if (connection.request_refused()) {
    // Malformed or too large: answered here, at no handler's cost, and the same whichever handler runs.
    ++metrics_.counters.bad_requests;
    const uint64_t bytes = connection.refuse_request();
    log_ending(
        connection,
        {.status = connection.refusal_status(), .reason = connection.refusal_reason(), .bytes = bytes});
    close_connection(connection.id());
    return;
  }
  // The queue is full: a clear answer now beats an unbounded wait. A handler that only lingers is not taken:
  // it is reclaimed for this request, which waits for it.
  const bool queue_full =
      dispatcher_.idle_handlers() == 0 && dispatcher_.waiting_connections() >= config_.max_queue;
  if (queue_full && !pool_.reclaim_any_lingering()) {
    refuse(connection, Refusal::kBusy, "busy: the queue is full");
    return;
  }
  // One client may not fill the queue either: its excess is refused at once, and the others' still waits.
  if (config_.max_queue_per_client != 0 && dispatcher_.idle_handlers() == 0 &&
      dispatcher_.queued_of(connection.client_name()) >= config_.max_queue_per_client) {
    ++metrics_.counters.busy_client;
    refuse(connection, Refusal::kBusy, "busy: the client has --max-queue-per-client requests waiting");
    return;
  }
  // Sent ahead, a request wakes a lingering handler by itself: that one is preferred.
  const std::optional<HandlerId> lingering =
      dispatcher_.idle_handlers() == 0 && !queue_full ? pool_.lingering_handler() : std::nullopt;
  if (auto assignment = dispatcher_.connection_ready(connection.id(),
                                                     {.may_go_ahead = !queue_full, .preferred = lingering})) {
    if (assignment->ahead && assignment->handler == lingering) ++metrics_.counters.reclaims;
    send_to_handler(*assignment);
  } else {
    connection.wait_in_queue();
    metrics_.longest_queue = std::max(metrics_.longest_queue, dispatcher_.waiting_connections());
    if (!queue_full) pool_.reclaim_lingering();  // (A full queue reclaimed one above.)
  }
}

void Frontend::on_handler_free(HandlerProcess& handler) {
  // A request sent ahead to a handler stuck on a long one is older than the whole queue.
  requeue_stuck_ahead(handler.id());
  if (auto assignment = dispatcher_.handler_idle(handler.id())) {
    send_to_handler(*assignment);
    // More wait: the next go ahead, so that the handler need not wait for the reactor after this one.
    send_aheads(handler.id());
    return;
  }
  // Nothing queued: the oldest request sent ahead is this one's, unless its handler took it already.
  requeue_if_withdrawn(dispatcher_.oldest_ahead(handler.id(), [](HandlerId) { return true; }));
}

void Frontend::send_to_handler(Assignment assignment) {
  Connection& connection = *connections_.at(assignment.connection);
  Connection::Request request = take_request(connection);
  ++metrics_.counters.hand_offs;
  HandlerProcess& handler = pool_.at(assignment.handler);
  // Another handler kept a copy: it closes it, and this one gets the socket (and may keep it in turn).
  if (connection.kept_by() != assignment.handler) forget_kept_copy(connection);
  if (handler.keeps(connection.id())) ++metrics_.counters.kept;
  if (handler.joins_batch()) ++metrics_.counters.batched;
  if (assignment.ahead) {
    // It still waits, and may come back until its handler takes it.
    ++metrics_.counters.sent_ahead;
    kept_requests_.emplace(connection.id(), request);
    handler.send_ahead(connection.id(), connection.socket(), std::move(request.record), request.flags);
    connection.wait_in_queue();
    return;
  }
  observe_queue_wait(connection);
  // Kept until the handler answers, to run it again should the handler die before it does.
  if (may_run_again(request, handler)) kept_requests_.emplace(connection.id(), request);
  handler.send_connection(connection.id(), connection.socket(), std::move(request.record), request.flags);
  connection.watch_while_served();
}

bool Frontend::may_run_again(const Connection::Request& request, const HandlerProcess& handler) const {
  if (!config_.retry_crashed || request.raw.size() > kLongestRetriedRequest) return false;
  std::string_view raw = request.raw;
  if ((request.flags & ipc::kFlagHttp) != 0) {
    // RFC 9110 section 9.2.1: safe methods, which the client expects to change nothing. (Empty lines may
    // come before a request line: RFC 9112 section 2.2.)
    raw.remove_prefix(std::min(raw.find_first_not_of("\r\n"), raw.size()));
    return raw.starts_with("GET ") || raw.starts_with("HEAD ") || raw.starts_with("OPTIONS ");
  }
  raw.remove_prefix(std::min(raw.find_first_not_of(" \t"), raw.size()));
  return handler.retryable_command(raw.substr(0, raw.find_first_of(" \t\r\n")));
}

void Frontend::observe_queue_wait(Connection& connection) {
  const double waited_seconds = (uv_hrtime() - connection.ready_at_ns()) / 1e9;
  metrics_.queue_wait.observe(waited_seconds);
  connection.set_queue_wait_ms(waited_seconds * 1e3);
}

void Frontend::on_request_answered(HandlerProcess& handler, int status, double service_ms,
                                   bool more_follows) {
  const std::optional<ConnectionId> id = dispatcher_.connection_of(handler.id());
  if (id) kept_requests_.erase(*id);  // Begun: it cannot come back.
  Connection* connection = id ? connections_.at(*id).get() : nullptr;
  if (connection != nullptr && more_follows) connection->quiet_input_while_served();
  if (handler.client_left_ns() != 0) {
    record_departed(connection, handler, service_ms);
  } else {
    record_answer(connection, handler, status, service_ms, handler.last_answer_bytes());
  }
  // Only here: an answer the reactor learns of otherwise (a dead handler's, noted in its answer record) has
  // no route.
  metrics_.routes.observe(handler.route_name(handler.last_answer_route()), status, service_ms / 1e3);
}

void Frontend::record_answer(Connection* connection, const HandlerProcess& handler, int status,
                             double service_ms, uint64_t bytes) {
  Counters& counters = metrics_.counters;
  ++counters.requests;
  if (status >= 400 && status < 500) ++counters.bad_requests;
  if (status >= 500) ++counters.handler_errors;
  metrics_.service.observe(service_ms / 1e3);
  if (connection == nullptr) return;
  log_ending(*connection, {.status = status, .handler = &handler, .service_ms = service_ms, .bytes = bytes});
}

void Frontend::log_ending(Connection& connection, const Ending& ending) {
  const int pid = ending.handler != nullptr ? ending.handler->pid() : 0;
  if (!config_.access_log) {
    // The reactor's own verdicts are still told somewhere: at debug, one line each.
    if (!ending.reason.empty() && log_enabled(LogLevel::kDebug)) {
      log_at(LogLevel::kDebug, "%s request from %s: %d (%.*s), handler pid %d", connection.protocol_name(),
             peer_address(connection.socket()).c_str(), ending.status, static_cast<int>(ending.reason.size()),
             ending.reason.data(), pid);
    }
    return;
  }
  const std::string request = connection.take_request_line();
  log_access({.peer = connection.peer(),
              .protocol = connection.protocol_name(),
              .request = request,
              .status = ending.status,
              .reason = ending.reason,
              .queue_ms = connection.queue_wait_ms(),
              .service_ms = ending.service_ms,
              .bytes = ending.bytes,
              .handler_pid = pid});
  connection.set_queue_wait_ms(0);  // Pipelined requests after the first did not wait in the queue.
}

void Frontend::on_connection_returned(const HandlerProcess& handler, ipc::Message done,
                                      uint64_t answered_bytes) {
  kept_requests_.erase(done.connection_id);
  const auto it = connections_.find(done.connection_id);
  it->second->set_kept_by(handler.keeps(done.connection_id) ? std::optional(handler.id()) : std::nullopt);
  it->second->count_handler_bytes(answered_bytes);
  if ((done.flags & ipc::kDoneWriteTimedOut) != 0) ++metrics_.counters.write_timeouts;
  if ((done.flags & ipc::kDoneKeepOpen) == 0) {
    // The handler ended the connection: a child it forked (not exec'd) may still hold a copy of the socket,
    // and closing ours and the handler's would not end it for the client then. A FIN does, whoever holds it.
    it->second->end_output();
    close_connection(it->first);
    return;
  }
  if (!keeps_connections()) {
    close_connection(it->first);
    return;
  }
  resume(*it->second, std::move(done.payload));
}

void Frontend::resume(Connection& connection, std::string unconsumed) {
  if (phase_ == Phase::kHandingOver) {
    pass_to_successor(connection.id(), std::move(unconsumed));
    return;
  }
  switch (connection.resume(std::move(unconsumed))) {
    case Connection::Resume::kWatching: break;
    case Connection::Resume::kReady: on_request_ready(connection); break;
    case Connection::Resume::kClientLeft: close_connection(connection.id()); break;
  }
}

// The client of a connection that a handler serves has gone: if the handler still computes the answer, nobody
// will read it. The handler is told at once (Request::cancelled()), and its code may end the request early;
// with --cancel on, one still at it --cancel-grace later is killed and replaced. One that has begun writing
// an answer (noted in its record, or on the wire) is about to report, and is let be.
void Frontend::cancel_unanswered(HandlerProcess& handler, Connection& connection) {
  if (handler.lingering()) {
    // It has no request of this client: it sees the client leave itself and hands the connection back.
    // Looked at again later, in case it began one meanwhile.
    connection.remind_left_after(kCancelAfter);
    return;
  }
  const std::optional<ipc::NotedAnswer> noted = handler.last_noted_answer(connection.id());
  const bool answering = noted && noted->answer_end > handler.answered_bytes();
  if (answering || connection.sent_after(handler.answered_bytes(), 0) != Connection::Sent::kReported) return;
  handler.tell_client_left(connection.id());
  if (!config_.cancel) return;  // --cancel off: the request runs to its end.
  // A request that ends soon is cheaper to let finish than a handler to start again, and a cancel storm of
  // short requests must not turn into a storm of process starts: only work that has run kCancelAfter, and
  // has gone on for --cancel-grace since its client left, is cut off.
  const uint64_t now = uv_hrtime();
  const uint64_t left_ns = handler.client_left_ns() != 0 ? handler.client_left_ns() : now;
  const Milliseconds running((now - handler.request_started_ns()) / 1'000'000);
  const Milliseconds since_left((now - left_ns) / 1'000'000);
  const Milliseconds wait = std::max(kCancelAfter - running, config_.cancel_grace - since_left);
  if (wait > Milliseconds(0)) {
    connection.remind_left_after(wait);
    return;
  }
  ++metrics_.counters.cancelled;
  log_ending(connection, {.status = kClientLeftStatus,
                          .reason = "cancelled: the client left",
                          .handler = &handler,
                          .service_ms = running_ms(handler),
                          .bytes = handler.answered_bytes()});
  handler.cancel();
}

// The handler ended a request whose client had left: nobody read its answer, whatever its status, and the
// request counts as cancelled gently (the handler lives on) rather than as answered. A handler killed for
// it already (a report read at its exit) had its request's line written then.
void Frontend::record_departed(Connection* connection, const HandlerProcess& handler, double service_ms) {
  if (handler.cancelled()) return;
  ++metrics_.counters.cancelled_gently;
  if (connection == nullptr) return;
  log_ending(*connection, {.status = kClientLeftStatus,
                           .reason = "the client left; its handler ended the request itself",
                           .handler = &handler,
                           .service_ms = service_ms,
                           .bytes = handler.last_answer_bytes()});
}

// What the client gets depends on what the socket sent after the dead handler's last report. Nothing more:
// the reactor answers the request itself. Exactly the answer the handler noted in its answer record: that
// answer went out whole, and the connection goes on as the handler would have let it. Anything else is part
// of an answer, and an error after it would be worse than none, so the connection is only closed.
void Frontend::on_connection_orphaned(ConnectionId id, const HandlerProcess& handler) {
  Connection& connection = *connections_.at(id);
  if (run_again(connection, handler)) return;
  kept_requests_.erase(id);   // Sent ahead and taken, or kept to run again: it was begun.
  if (handler.cancelled()) {  // Its client is gone.
    connection.end_output();
    close_connection(id);
    return;
  }
  if (handler.lingering() &&
      connection.sent_after(handler.answered_bytes(), 0) == Connection::Sent::kReported) {
    // It died waiting for the client's next request, having read none of it: nothing was lost.
    connection.count_handler_bytes(handler.answered_bytes());
    if (keeps_connections()) {
      resume(connection, {});
      return;
    }
    connection.end_output();
    close_connection(id);
    return;
  }
  const Refusal refusal = handler.timed_out()          ? Refusal::kTimeout
                          : phase_ == Phase::kStopping ? Refusal::kShuttingDown
                                                       : Refusal::kHandlerCrashed;
  const std::optional<ipc::NotedAnswer> noted = handler.last_noted_answer(id);
  switch (connection.sent_after(handler.answered_bytes(), noted ? noted->answer_end : 0)) {
    case Connection::Sent::kReported: answer_refusal(connection, refusal, &handler); break;
    case Connection::Sent::kNotedAnswer: {
      record_answer(&connection, handler, static_cast<int>(noted->status), running_ms(handler),
                    noted->answer_end - std::min(noted->answer_end, handler.answered_bytes()));
      connection.count_handler_bytes(noted->answer_end);
      const bool pending = (noted->flags & ipc::kAnswerInputPending) != 0;
      if ((noted->flags & ipc::kAnswerEndsConnection) == 0 && !pending && keeps_connections()) {
        resume(connection, {});
        return;
      }
      // The handler held a pipelined request it never answered: it gets the error, then the connection ends.
      // After an answer that ended the connection, nothing more is written.
      if (pending && (noted->flags & ipc::kAnswerEndsConnection) == 0) {
        answer_refusal(connection, refusal, &handler);
      }
      break;
    }
    case Connection::Sent::kPartOfAnAnswer: {
      // The client got the beginning of an answer, and then the end of the connection.
      count_refusal(refusal);
      const std::string reason = std::string(refusal_reason(refusal)) + " after part of the answer";
      log_ending(connection, {.status = noted ? static_cast<int>(noted->status) : refusal_status(refusal),
                              .reason = reason,
                              .handler = &handler,
                              .service_ms = running_ms(handler)});
      break;
    }
  }
  // The dead handler may have left a copy of the socket in a child of its own: closing ours would not end
  // the connection then. Shutting the socket down for writing does, whoever else holds it.
  connection.end_output();
  close_connection(id);
}

// A request is run again, once, on another handler when the one that ran it crashed (not killed for a
// timeout or a stop, its client still there) before it reported any answer of the hand-off and before any
// byte of one reached the socket, and the request is one that may run twice (may_run_again kept it). The
// client sees one answer, the second handler's; HAProxy's retry-on would do it blind to whether an answer had
// begun.
bool Frontend::run_again(Connection& connection, const HandlerProcess& handler) {
  const auto kept = kept_requests_.find(connection.id());
  const std::optional<ipc::NotedAnswer> noted = handler.last_noted_answer(connection.id());
  if (kept == kept_requests_.end() || connection.ran_again() || phase_ != Phase::kServing ||
      (noted && noted->answer_end != 0) || handler.cancelled() || handler.client_left_ns() != 0 ||
      handler.timed_out() || handler.lingering() || handler.answered_bytes() != 0 ||
      !may_run_again(kept->second, handler) || connection.sent_after(0, 0) != Connection::Sent::kReported) {
    return false;
  }
  ++metrics_.counters.retried;
  log_at(LogLevel::kInfo, "handler %d died before answering '%s': the request runs again on another handler",
         handler.pid(), printable_first_line(kept->second.raw).c_str());
  connection.set_ran_again();
  dispatch_first_in_line(connection.id());
  return true;
}

// --- Connections that end without a handler ---

void Frontend::on_client_left(Connection& connection) {
  if (const std::optional<HandlerId> serving = dispatcher_.handler_of(connection.id())) {
    cancel_unanswered(pool_.at(*serving), connection);
    return;
  }
  if (dispatcher_.ahead_holder(connection.id())) {
    if (!withdraw_ahead(connection.id())) {
      // Its handler began it and is reporting the one before: looked at again once it is served.
      connection.remind_left_after(kCancelAfter);
      return;
    }
    ++metrics_.counters.abandoned;
    log_abandoned(connection);
  }
  if (dispatcher_.is_waiting(connection.id())) {
    ++metrics_.counters.abandoned;
    log_abandoned(connection);
  }
  dispatcher_.connection_gone(connection.id());
  close_connection(connection.id());
}

void Frontend::on_expired(Connection& connection, Connection::Expiry expiry) {
  switch (expiry) {
    case Connection::Expiry::kIdle: close_connection(connection.id()); break;
    case Connection::Expiry::kRead: refuse(connection, Refusal::kReadTimeout, "read timeout"); break;
    case Connection::Expiry::kLeft:
      if (dispatcher_.is_being_served(connection.id())) on_client_left(connection);
      break;
    case Connection::Expiry::kQueue:
      if (dispatcher_.ahead_holder(connection.id()) && !withdraw_ahead(connection.id())) break;  // Taken.
      dispatcher_.connection_gone(connection.id());
      connection.set_queue_wait_ms((uv_hrtime() - connection.ready_at_ns()) / 1e6);
      refuse(connection, Refusal::kBusy, "busy: waited --queue-timeout");
      break;
  }
}

void Frontend::check_stalled_uploads() {
  if (!budget_.pressure()) {
    uv_timer_stop(&stall_timer_);
    return;
  }
  const uint64_t since = uv_now(loop_) - kStalledAfterMs;
  std::vector<ConnectionId> stalled;
  for (const auto& [id, connection] : connections_) {
    if (connection->stalled_upload(since)) stalled.push_back(id);
  }
  if (stalled.empty()) return;
  log_at(
      LogLevel::kInfo,
      "%zu uploads stalled for %llu ms while %zu connections wait for room (--max-buffered-bytes): refused "
      "as read timeouts",
      stalled.size(), static_cast<unsigned long long>(kStalledAfterMs), budget_.paused());
  for (const ConnectionId id : stalled) {
    refuse(*connections_.at(id), Refusal::kReadTimeout, "read timeout: the upload stalled under pressure");
  }
}

void Frontend::refuse(Connection& connection, Refusal refusal, std::string_view reason) {
  answer_refusal(connection, refusal, nullptr, reason);
  close_connection(connection.id());
}

void Frontend::answer_refusal(Connection& connection, Refusal refusal, const HandlerProcess* handler,
                              std::string_view reason) {
  count_refusal(refusal);
  const uint64_t bytes = connection.refuse(refusal);
  log_ending(connection, {.status = refusal_status(refusal),
                          .reason = reason.empty() ? refusal_reason(refusal) : reason,
                          .handler = handler,
                          .service_ms = handler != nullptr ? running_ms(*handler) : 0,
                          .bytes = bytes});
}

void Frontend::count_refusal(Refusal refusal) {
  Counters& counters = metrics_.counters;
  switch (refusal) {
    case Refusal::kBusy: ++counters.busy; break;
    case Refusal::kReadTimeout: ++counters.read_timeouts; break;
    case Refusal::kHandlerCrashed: ++counters.crashed; break;
    case Refusal::kTimeout: ++counters.timeouts; break;
    case Refusal::kShuttingDown: ++counters.shutting_down; break;
  }
}

void Frontend::log_abandoned(Connection& connection) {
  connection.set_queue_wait_ms((uv_hrtime() - connection.ready_at_ns()) / 1e6);
  log_ending(connection, {.status = kClientLeftStatus, .reason = "the client left while its request waited"});
}

double Frontend::running_ms(const HandlerProcess& handler) {
  return (uv_hrtime() - handler.request_started_ns()) / 1e6;
}

// --- Winding down ---

void Frontend::drain() {
  phase_ = Phase::kDraining;
  listeners_.clear();
  // Connections between requests (or in the middle of sending one) are closed; those waiting for a handler
  // or being served are finished first.
  std::erase_if(connections_, [](const auto& entry) { return entry.second->reading(); });
}

void Frontend::finish() {
  poller_.reset();
  uv_close(as_handle(&stall_timer_), nullptr);
}

void Frontend::stop() {
  phase_ = Phase::kStopping;
  listeners_.clear();
  std::erase_if(connections_, [this](const auto& entry) {
    if (dispatcher_.is_being_served(entry.first)) return false;
    // A request still waiting for a handler gets a clear answer, never a silent close.
    if (dispatcher_.is_waiting(entry.first)) answer_refusal(*entry.second, Refusal::kShuttingDown, nullptr);
    dispatcher_.connection_gone(entry.first);
    kept_requests_.erase(entry.first);
    return true;
  });
}

}  // namespace handoff::reactor
