#pragma once

// Internal to the reactor. What the reactor counts while it serves, and the one table that names each count:
// its member in Counters, its key in /stats, its Prometheus metric and what it means. /stats and /metrics
// (reactor/admin/stats_report.cpp) are rendered from the table, and a unit test checks that
// docs/operations.md lists every row; a count is added here, as a member and a row, and nowhere else.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace handoff::reactor {

// Each member is explained by its row in kCounterTable.
struct Counters {
  uint64_t accepted = 0;
  uint64_t requests = 0;
  uint64_t bad_requests = 0;
  uint64_t handler_errors = 0;
  uint64_t busy = 0;
  uint64_t timeouts = 0;
  uint64_t crashed = 0;
  uint64_t read_timeouts = 0;
  uint64_t write_timeouts = 0;
  uint64_t shutting_down = 0;
  uint64_t respawns = 0;
  uint64_t handler_exits = 0;
  uint64_t failed_reloads = 0;
  uint64_t abandoned = 0;
  uint64_t busy_client = 0;
  uint64_t retried = 0;
  uint64_t cancelled = 0;
  uint64_t cancelled_gently = 0;
  uint64_t rss_recycles = 0;
  uint64_t hand_offs = 0;
  uint64_t kept = 0;
  uint64_t batched = 0;
  uint64_t reclaims = 0;
  uint64_t sent_ahead = 0;
  uint64_t withdrawn = 0;
  uint64_t taken_over = 0;
  uint64_t handed_over = 0;
};

// One figure the reactor reports, a row of kCounterTable or of a table in reactor/metrics.hpp: the member of
// Owner that keeps it, its key in /stats, its Prometheus metric, and what it means (the metric's HELP line,
// unless the metric is a LabelledMetric).
template <typename Owner, typename Value>
struct FigureRow {
  Value Owner::*member;
  std::string_view key;
  std::string_view metric;
  std::string_view help;
};

// A Prometheus metric that several rows share, each row a sample of it labelled LABEL="KEY".
struct LabelledMetric {
  std::string_view metric;
  std::string_view label;
  std::string_view help;
};

// Every kind of error is a sample of this counter; in /stats, "counters": {"errors": {KEY: n}}. Every other
// counter is a Prometheus counter of its own, and "counters": {KEY: n} in /stats.
inline constexpr LabelledMetric kErrorsByKind = {"handoff_errors_total", "kind",
                                                 "Requests that ended in an error, by kind."};

using CounterRow = FigureRow<Counters, uint64_t>;

constexpr bool is_error(const CounterRow& row) {
  return row.metric == kErrorsByKind.metric;
}

// In the order /stats and /metrics show them.
// clang-format off
inline constexpr std::array kCounterTable = std::to_array<CounterRow>({
  {&Counters::accepted, "accepted", "handoff_connections_accepted_total", "Client connections accepted."},
  {&Counters::requests, "requests", "handoff_requests_total", "Requests answered by handlers."},
  {&Counters::respawns, "respawns", "handoff_handler_respawns_total",
   "Handlers started to replace ones that exited."},
  {&Counters::handler_exits, "handler_exits", "handoff_handler_exits_total",
   "Handler processes that exited."},
  {&Counters::failed_reloads, "failed_reloads", "handoff_reloads_failed_total",
   "Reloads abandoned because their new handlers did not start."},
  {&Counters::abandoned, "abandoned", "handoff_requests_abandoned_total",
   "Requests dropped from the queue because their client left."},
  {&Counters::busy_client, "busy_client", "handoff_requests_refused_per_client_total",
   "Requests refused at once because their client had --max-queue-per-client waiting (also errors busy)."},
  {&Counters::retried, "retried", "handoff_requests_retried_total",
   "Requests run again on another handler because theirs died before any answer began (--retry-crashed)."},
  {&Counters::cancelled, "cancelled", "handoff_requests_cancelled_total",
   "Running requests whose client left before any answer, and whose handler was still at them "
   "--cancel-grace later: it was killed and replaced."},
  {&Counters::cancelled_gently, "cancelled_gently", "handoff_requests_cancelled_gently_total",
   "Running requests whose client left before any answer, ended by their handler itself (within "
   "--cancel-grace, or at all with --cancel off): nothing was killed."},
  {&Counters::rss_recycles, "rss_recycles", "handoff_handler_rss_recycles_total",
   "Handlers replaced for growing past --handler-max-rss."},
  {&Counters::hand_offs, "hand_offs", "handoff_hand_offs_total",
   "Connections passed to a handler; a handler lingering on one (--linger) serves more than a request."},
  {&Counters::kept, "kept", "handoff_kept_hand_offs_total",
   "Hand-offs to the handler that kept the connection's socket, with no descriptor passed."},
  {&Counters::batched, "batched", "handoff_batched_hand_offs_total",
   "Hand-offs sent in one write with a frame before them, to a handler that takes batches."},
  {&Counters::reclaims, "reclaims", "handoff_reclaims_total",
   "Lingering handlers taken back at once for a request that waited."},
  {&Counters::sent_ahead, "sent_ahead", "handoff_sent_ahead_total",
   "Hand-offs sent to a busy handler, which takes them once done (--send-ahead)."},
  {&Counters::withdrawn, "withdrawn", "handoff_ahead_withdrawn_total",
   "Hand-offs sent ahead and taken back before their handler began them."},
  {&Counters::taken_over, "taken_over", "handoff_connections_taken_over_total",
   "Connections passed from the reactor this one took over from."},
  {&Counters::handed_over, "handed_over", "handoff_connections_handed_over_total",
   "Connections passed to the reactor that took over from this one."},
  {&Counters::busy, "busy", kErrorsByKind.metric,
   "Refused by the reactor: the queue was full or waited too long."},
  {&Counters::timeouts, "timeout", kErrorsByKind.metric,
   "Handlers killed for exceeding --request-timeout."},
  {&Counters::crashed, "crashed", kErrorsByKind.metric, "Requests lost with a handler that died."},
  {&Counters::bad_requests, "bad_request", kErrorsByKind.metric,
   "Answered with a 4xx status or an ERR line, or refused by the reactor's parser."},
  {&Counters::handler_errors, "handler_error", kErrorsByKind.metric,
   "Answered with a 5xx status: an exception in the handler."},
  {&Counters::read_timeouts, "read_timeout", kErrorsByKind.metric,
   "Clients that did not finish a request in time."},
  {&Counters::write_timeouts, "write_timeout", kErrorsByKind.metric,
   "Clients that did not take an answer in time (--write-timeout)."},
  {&Counters::shutting_down, "shutting_down", kErrorsByKind.metric, "Requests cut off by a stop."},
});
// clang-format on

namespace counters_detail {

// Every member of Counters has exactly one row, and no two rows share a key or a metric of their own.
constexpr bool table_is_whole() {
  for (size_t i = 0; i < kCounterTable.size(); ++i) {
    const CounterRow& row = kCounterTable[i];
    if (!row.metric.starts_with("handoff_") || !row.metric.ends_with("_total") || row.help.empty())
      return false;
    for (size_t j = 0; j < i; ++j) {
      const CounterRow& earlier = kCounterTable[j];
      if (row.member == earlier.member || row.key == earlier.key) return false;
      if (!is_error(row) && row.metric == earlier.metric) return false;
    }
  }
  return true;
}

}  // namespace counters_detail

static_assert(sizeof(Counters) == kCounterTable.size() * sizeof(uint64_t),
              "every member of Counters needs its row in kCounterTable");
static_assert(counters_detail::table_is_whole(),
              "kCounterTable: a member, a key or a metric twice, or a metric not named handoff_..._total");

}  // namespace handoff::reactor
