#include "reactor/admin/admin_routes.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <optional>
#include <string>

#include "reactor/admin/stats_report.hpp"
#include "reactor/admin/status_page.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

// The waiting clients /stats lists: enough to tell one client crowding the queue from many.
constexpr size_t kBusiestClientsShown = 5;

http::Response text(int status, std::string body) {
  return {.status = status, .body = std::move(body)};
}

http::Response wrong_method(const char* allowed) {
  return {.status = 405,
          .body = std::string("method not allowed: use ") + allowed + "\n",
          .extra_headers = std::string("Allow: ") + allowed + "\r\n"};
}

// The value of name in a query string ("size=4&x=1"), if there.
std::optional<std::string_view> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::string_view pair = query.substr(0, query.find('&'));
    if (pair.substr(0, pair.find('=')) == name && pair.find('=') != std::string_view::npos) {
      return pair.substr(pair.find('=') + 1);
    }
    if (pair.size() == query.size()) break;
    query.remove_prefix(pair.size() + 1);
  }
  return std::nullopt;
}

}  // namespace

AdminRoutes::AdminRoutes(uv_loop_t* loop, HandlerPool& pool, const Frontend& frontend,
                         const Dispatcher& dispatcher, const Metrics& metrics, ipc::SharedState& state_page)
    : loop_(loop),
      pool_(pool),
      frontend_(frontend),
      dispatcher_(dispatcher),
      metrics_(metrics),
      state_page_(state_page),
      started_ns_(uv_hrtime()) {}

http::Response AdminRoutes::answer(std::string_view method, std::string_view path, std::string_view query) {
  const bool get = method == "GET" || method == "HEAD";
  if (path == "/healthz") {
    if (!get) return wrong_method("GET, HEAD");
    if (pool_.phase() != Phase::kServing || leaving_) return text(503, "draining\n");
    return pool_.any_ready() ? text(200, "ok\n") : text(503, "no handler is ready\n");
  }
  if (path == "/stats") {
    if (!get) return wrong_method("GET, HEAD");
    return {.content_type = "application/json", .body = render_stats_json(snapshot())};
  }
  if (path == "/metrics") {
    if (!get) return wrong_method("GET, HEAD");
    return {.content_type = "text/plain; version=0.0.4; charset=utf-8",
            .body = render_prometheus(snapshot())};
  }
  if (path == "/") {
    if (!get) return wrong_method("GET, HEAD");
    return {.content_type = "text/html; charset=utf-8", .body = status_page_html()};
  }
  if (path == "/pool") {
    if (method != "POST") return wrong_method("POST");
    return resize_pool(query);
  }
  if (path == "/drain") {
    if (method != "POST") return wrong_method("POST");
    return leave_rotation();
  }
  return text(404, "not found: try /, /healthz, /stats, /metrics, POST /pool?size=N or POST /drain\n");
}

// One way: a reactor taken out of rotation goes back by a restart (or a takeover, SIGUSR2).
http::Response AdminRoutes::leave_rotation() {
  if (pool_.phase() != Phase::kServing) return text(503, "the server is shutting down\n");
  if (!leaving_) {
    leaving_ = true;
    state_page_.set_draining();
    log_at(LogLevel::kInfo,
           "POST /drain: /healthz says 503 from now on, and answers close their connections; new connections "
           "are still served (SIGTERM to stop)");
  }
  return text(200,
              "draining: /healthz says 503 and answers close their connections; new connections are "
              "still served until SIGTERM\n");
}

http::Response AdminRoutes::resize_pool(std::string_view query) {
  const std::optional<std::string_view> value = query_value(query, "size");
  unsigned size = 0;
  const auto [end, error] =
      value ? std::from_chars(value->data(), value->data() + value->size(), size) : std::from_chars_result{};
  const unsigned most = pool_.max_size();
  if (!value || error != std::errc() || end != value->data() + value->size() || size < 1 || size > most) {
    return text(400, "size must be a whole number from 1 to " + std::to_string(most) +
                         " (--max-handlers): POST /pool?size=N\n");
  }
  if (pool_.phase() != Phase::kServing) return text(503, "the server is shutting down\n");
  pool_.resize(size);
  return text(200, "pool size " + std::to_string(size) + "\n");
}

StatsSnapshot AdminRoutes::snapshot() const {
  StatsSnapshot s{};
  s.status = leaving_ && pool_.phase() == Phase::kServing ? "leaving" : phase_name(pool_.phase());
  const uint64_t now_ns = uv_hrtime();
  s.uptime_seconds = (now_ns - started_ns_) / 1e9;
  s.target_handlers = pool_.target();
  s.queue_length = dispatcher_.waiting_connections();
  s.busiest_clients = dispatcher_.busiest_clients(kBusiestClientsShown);
  s.longest_queue = metrics_.longest_queue;
  s.open_connections = frontend_.open_connections();
  s.buffered_bytes = frontend_.buffered_bytes();
  s.paused_connections = frontend_.paused_connections();
  const auto by_state = frontend_.connections_by_state();
  for (size_t index = 0; index < by_state.size(); ++index) {
    const auto state = static_cast<Connection::State>(index);
    if (state == Connection::State::kClosed) continue;  // A closed connection is no longer open.
    s.connections_by_state.emplace_back(Connection::state_name(state), by_state[index]);
  }
  s.metrics = &metrics_;
  s.reload = &pool_.last_reload();
  const double wall_now = static_cast<double>(std::time(nullptr));
  const uint64_t loop_now_ms = uv_now(loop_);
  for (const auto& [id, handler] : pool_.handlers()) {
    HandlerSnapshot h{};
    h.pid = handler->pid();
    h.requests = handler->requests_served();
    h.started_at_unix = wall_now - (loop_now_ms - handler->started_at()) / 1e3;
    h.resident_bytes = resident_bytes(h.pid);
    if (handler->retiring()) {
      h.state = "retiring";
      ++s.retiring;
    } else if (!handler->said_hello()) {
      h.state = "starting";
      ++s.starting;
    } else if (handler->busy()) {
      // Lingering (--linger) on a keep-alive connection, waiting for its next request: busy for the pool,
      // but free to be reclaimed at once.
      h.state = handler->lingering() ? "lingering" : "busy";
      h.current_request_seconds = (now_ns - handler->request_started_ns()) / 1e9;
      ++s.busy;
    } else {
      h.state = "idle";
      ++s.idle;
    }
    s.handlers.push_back(std::move(h));
  }
  for (const auto& handler_template : pool_.templates()) {
    s.templates.push_back({.pid = handler_template->pid(),
                           .state = handler_template->ending()  ? "ending"
                                    : handler_template->ready() ? "ready"
                                                                : "loading",
                           .handlers = handler_template->children()});
  }
  return s;
}

}  // namespace handoff::reactor
