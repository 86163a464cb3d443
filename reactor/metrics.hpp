#pragma once

// Internal to the reactor. What the reactor measures while it serves (its counters, reactor/counters.hpp, and
// its latency histograms), and the snapshot of it that /stats and /metrics render
// (reactor/admin/stats_report.hpp), with the tables that name the pool's figures and the histograms in both.
// docs/operations.md explains every field; a unit test checks that it lists every row.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "reactor/counters.hpp"

namespace handoff::reactor {

// A latency histogram with fixed upper bounds, as Prometheus histograms are.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBoundsSeconds = {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                            0.25,  0.5,   1,     2.5,  5,     10,   30};
  void observe(double seconds);
  // Observations at or under each bound, cumulative, then all of them (+Inf).
  std::array<uint64_t, kBoundsSeconds.size() + 1> cumulative() const;
  uint64_t count() const { return count_; }
  double sum_seconds() const { return sum_; }
  // The q-quantile (0 < q < 1) as Prometheus's histogram_quantile estimates it: linear within the bucket it
  // falls in; the largest bound when it falls past it; 0 with no observation.
  double quantile(double q) const;

 private:
  std::array<uint64_t, kBoundsSeconds.size() + 1> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The requests handlers answered, by the route or command that answered each — its name in the handler's
// route table (reactor/route_table.hpp), never the request's path, so that there are as many figures as
// routes — and by status class, with a service-time histogram per route. The requests the reactor answers
// itself (refusals, a crashed handler's) are counted elsewhere, and not here.
class RouteMetrics {
 public:
  // The most route names kept. A reload may bring names of its own, and old ones stay; past this many, the
  // requests of a route not counted yet count under kOtherRoutes.
  static constexpr size_t kMaxRoutes = 256;
  static constexpr std::string_view kNoRoute = "(none)";  // Route 0: an unknown command, a 404, a fallback.
  static constexpr std::string_view kOtherRoutes = "(other)";
  // Status classes: below 300 counts as 2xx, 600 and above as 5xx (a handler of one's own may say anything).
  static constexpr std::array<std::string_view, 4> kClassNames = {"2xx", "3xx", "4xx", "5xx"};
  static size_t status_class(int status);

  struct Route {
    std::array<uint64_t, kClassNames.size()> by_class{};
    LatencyHistogram service;
    uint64_t requests() const;
  };

  // Counts an answer of route (its name; null for none) with status, after service_seconds of work.
  void observe(const std::string* route, int status, double service_seconds);
  // The routes counted, by name, in no order.
  const std::unordered_map<std::string, Route>& routes() const { return routes_; }

 private:
  std::unordered_map<std::string, Route> routes_;
  size_t named_ = 0;  // Routes in routes_ counted by their own name: all but kNoRoute and kOtherRoutes.
};

struct Metrics {
  Counters counters;
  size_t longest_queue = 0;
  LatencyHistogram queue_wait;  // From a complete request head to its hand-off.
  LatencyHistogram service;     // From the hand-off (or the previous answer) to the handler's answer.
  RouteMetrics routes;
};

struct HandlerSnapshot {
  int pid;
  std::string state;  // "starting", "idle", "busy", "retiring"
  uint64_t requests;
  double current_request_seconds;  // 0 unless busy.
  double started_at_unix;
  uint64_t resident_bytes;
};

// One --preload template, for /stats.
struct TemplateSnapshot {
  int pid;
  std::string state;  // "loading", "ready", "ending"
  size_t handlers;    // Forked by it (or asked of it) and not exited.
};

// How the last SIGHUP reload went.
struct ReloadReport {
  std::string state = "none";  // "none", "in progress", "done", "abandoned"
  std::string error;           // Why it was abandoned.
  double at_unix = 0;          // When it began, or was abandoned.
};

struct StatsSnapshot {
  std::string status;  // "serving", "leaving" (POST /drain), "handing over", "draining", "stopping"
  double uptime_seconds;
  size_t target_handlers;
  size_t idle, busy, starting, retiring;
  size_t queue_length;
  size_t longest_queue;
  size_t open_connections;
  size_t buffered_bytes;      // Of requests read and not handed off yet.
  size_t paused_connections;  // Not read from: buffered_bytes is at --max-buffered-bytes.
  // The open connections by state (Connection::state_name, count), in the states' order.
  std::vector<std::pair<const char*, size_t>> connections_by_state;
  const Metrics* metrics;
  const ReloadReport* reload;
  std::vector<HandlerSnapshot> handlers;
  std::vector<TemplateSnapshot> templates;  // Empty without --preload.
  // The clients with the most requests queued, most first (fair queueing: Dispatcher::busiest_clients).
  std::vector<std::pair<std::string, size_t>> busiest_clients;
};

// The pool's figures: in /stats, "pool": {KEY: n}; in Prometheus a gauge of its own, or for a handler state a
// sample of kHandlersByState.
inline constexpr LabelledMetric kHandlersByState = {"handoff_handlers", "state",
                                                    "Handler processes by state."};

using PoolRow = FigureRow<StatsSnapshot, size_t>;

// In the order /stats and /metrics show them.
// clang-format off
inline constexpr std::array kPoolTable = std::to_array<PoolRow>({
  {&StatsSnapshot::target_handlers, "target", "handoff_handlers_target", "The pool size the reactor keeps."},
  {&StatsSnapshot::idle, "idle", kHandlersByState.metric, "Handlers waiting for a request."},
  {&StatsSnapshot::busy, "busy", kHandlersByState.metric,
   "Handlers serving a connection, lingering on one included."},
  {&StatsSnapshot::starting, "starting", kHandlersByState.metric,
   "Handlers that have not said hello yet."},
  {&StatsSnapshot::retiring, "retiring", kHandlersByState.metric,
   "Handlers replaced, which exit once idle."},
  {&StatsSnapshot::queue_length, "queue_length", "handoff_queue_length", "Requests waiting for a handler."},
  {&StatsSnapshot::longest_queue, "longest_queue", "handoff_queue_length_max",
   "The longest the queue has been."},
  {&StatsSnapshot::open_connections, "open_connections", "handoff_open_connections",
   "Client connections open now."},
  {&StatsSnapshot::buffered_bytes, "buffered_bytes", "handoff_buffered_bytes",
   "Bytes of requests read and not handed off yet."},
  {&StatsSnapshot::paused_connections, "paused_connections", "handoff_paused_connections",
   "Connections not read from because --max-buffered-bytes is reached."},
});
// clang-format on

// The latency histograms: in /stats, "histograms": {KEY: {...}}; in Prometheus a histogram of its own.
using HistogramRow = FigureRow<Metrics, LatencyHistogram>;

inline constexpr std::array kHistogramTable = std::to_array<HistogramRow>({
    {&Metrics::queue_wait, "queue_wait", "handoff_queue_wait_seconds",
     "Time a complete request waited for a handler."},
    {&Metrics::service, "service", "handoff_service_seconds", "Time a handler worked on a request."},
});

// The per-route figures (RouteMetrics): in /stats, "routes": [{"route": NAME, KEY: ...}]; in Prometheus, a
// metric of its own, labelled route="NAME" (and class="2xx" for requests).
struct RouteFigure {
  std::string_view key;
  std::string_view metric;
  std::string_view help;
};
inline constexpr RouteFigure kRouteRequests = {"by_class", "handoff_route_requests_total",
                                               "Requests answered by handlers, by route and status class."};
inline constexpr RouteFigure kRouteService = {"p50_seconds", "handoff_route_service_seconds",
                                              "Time a handler worked on a request, by route."};

// The resident memory of a process, from /proc/PID/statm; 0 when it cannot be read.
uint64_t resident_bytes(int pid);

}  // namespace handoff::reactor
