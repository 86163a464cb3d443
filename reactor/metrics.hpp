#pragma once

// Internal to the reactor. What the reactor counts while it serves, and the snapshot of it that /stats and
// /metrics render (reactor/stats_report.hpp). docs/operations.md explains every field.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

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

 private:
  std::array<uint64_t, kBoundsSeconds.size() + 1> buckets_{};
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct Counters {
  uint64_t accepted = 0;        // Connections accepted.
  uint64_t requests = 0;        // Requests answered by handlers, whatever the status.
  uint64_t bad_requests = 0;    // ... of them answered with a 4xx status (or an ERR line).
  uint64_t handler_errors = 0;  // ... of them answered with a 5xx status (an exception in the handler).
  uint64_t busy = 0;            // Refused by the reactor: queue full or waited too long.
  uint64_t timeouts = 0;        // Killed for exceeding --request-timeout.
  uint64_t crashed = 0;         // Lost with a handler that died.
  uint64_t read_timeouts = 0;   // Clients that did not finish a request in time.
  uint64_t write_timeouts = 0;  // Clients that did not take an answer in time (--write-timeout).
  uint64_t shutting_down = 0;   // Cut off by a stop.
  uint64_t respawns = 0;        // Handlers started to replace ones that exited.
  uint64_t handler_exits = 0;   // Handlers that exited, for any reason.
  uint64_t failed_reloads = 0;  // Reloads abandoned because the new handlers did not start.
  uint64_t abandoned = 0;       // Requests dropped from the queue because their client left.
  uint64_t cancelled = 0;       // Running requests whose client left: their handler was replaced.
  uint64_t rss_recycles = 0;    // Handlers replaced for growing past --handler-max-rss.
  uint64_t hand_offs = 0;       // Connections passed to a handler (a request each, or more when it lingers).
  uint64_t kept = 0;            // Of those, to the handler that kept the socket: no descriptor passed.
  uint64_t batched = 0;         // Of those, in one write with a frame before them (kFlagTakesBatches).
  uint64_t reclaims = 0;        // Lingering handlers taken back for a request that waited (--linger).
  uint64_t sent_ahead = 0;      // Hand-offs sent to a busy handler, to take once done (--send-ahead).
  uint64_t withdrawn = 0;       // Of those, taken back before the handler began them.
  uint64_t taken_over = 0;      // Connections passed from the reactor this one took over from (SIGUSR2).
  uint64_t handed_over = 0;     // Connections passed to the reactor that took over from this one.
};

struct Metrics {
  Counters counters;
  size_t longest_queue = 0;
  LatencyHistogram queue_wait;  // From a complete request head to its hand-off.
  LatencyHistogram service;     // From the hand-off (or the previous answer) to the handler's answer.
};

struct HandlerSnapshot {
  int pid;
  std::string state;  // "starting", "idle", "busy", "retiring"
  uint64_t requests;
  double current_request_seconds;  // 0 unless busy.
  double started_at_unix;
  uint64_t resident_bytes;
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
  unsigned target_handlers;
  size_t idle, busy, starting, retiring;
  size_t queue_length;
  size_t open_connections;
  size_t buffered_bytes;      // Of requests read and not handed off yet.
  size_t paused_connections;  // Not read from: buffered_bytes is at --max-buffered-bytes.
  const Metrics* metrics;
  const ReloadReport* reload;
  std::vector<HandlerSnapshot> handlers;
};

// The resident memory of a process, from /proc/PID/statm; 0 when it cannot be read.
uint64_t resident_bytes(int pid);

}  // namespace handoff::reactor
