#include "reactor/stats_report.hpp"

#include <unistd.h>

#include <cstdio>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.13g", value);
  return text;
}

std::string histogram_json(const LatencyHistogram& histogram) {
  std::string json = "{\"count\":" + std::to_string(histogram.count()) +
                     ",\"sum_seconds\":" + number(histogram.sum_seconds()) + ",\"buckets\":[";
  const auto cumulative = histogram.cumulative();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const std::string bound = i < LatencyHistogram::kBoundsSeconds.size()
                                  ? number(LatencyHistogram::kBoundsSeconds[i])
                                  : "\"+Inf\"";
    json += (i ? "," : "") + std::string("{\"le\":") + bound + ",\"count\":" + std::to_string(cumulative[i]) +
            "}";
  }
  return json + "]}";
}

void metric_header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// A metric of one sample without labels: its header and its value.
void metric(std::string& out, const char* name, const char* type, const char* help, uint64_t value) {
  metric_header(out, name, type, help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}

void histogram_text(std::string& out, const char* name, const char* help, const LatencyHistogram& histogram) {
  metric_header(out, name, "histogram", help);
  const auto cumulative = histogram.cumulative();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const std::string bound =
        i < LatencyHistogram::kBoundsSeconds.size() ? number(LatencyHistogram::kBoundsSeconds[i]) : "+Inf";
    out += std::string(name) + "_bucket{le=\"" + bound + "\"} " + std::to_string(cumulative[i]) + "\n";
  }
  out += std::string(name) + "_sum " + number(histogram.sum_seconds()) + "\n";
  out += std::string(name) + "_count " + std::to_string(histogram.count()) + "\n";
}

}  // namespace

std::string render_stats_json(const StatsSnapshot& s) {
  const Counters& c = s.metrics->counters;
  std::string json = "{\"status\":" + json_string(s.status) + ",\"pid\":" + std::to_string(::getpid()) +
                     ",\"uptime_seconds\":" + number(s.uptime_seconds);
  json += ",\"pool\":{\"target\":" + std::to_string(s.target_handlers) +
          ",\"idle\":" + std::to_string(s.idle) + ",\"busy\":" + std::to_string(s.busy) +
          ",\"starting\":" + std::to_string(s.starting) + ",\"retiring\":" + std::to_string(s.retiring) +
          ",\"queue_length\":" + std::to_string(s.queue_length) +
          ",\"longest_queue\":" + std::to_string(s.metrics->longest_queue) +
          ",\"open_connections\":" + std::to_string(s.open_connections) +
          ",\"buffered_bytes\":" + std::to_string(s.buffered_bytes) +
          ",\"paused_connections\":" + std::to_string(s.paused_connections) + "}";
  json += ",\"counters\":{\"accepted\":" + std::to_string(c.accepted) +
          ",\"requests\":" + std::to_string(c.requests) + ",\"respawns\":" + std::to_string(c.respawns) +
          ",\"handler_exits\":" + std::to_string(c.handler_exits) +
          ",\"failed_reloads\":" + std::to_string(c.failed_reloads) +
          ",\"abandoned\":" + std::to_string(c.abandoned) + ",\"cancelled\":" + std::to_string(c.cancelled) +
          ",\"rss_recycles\":" + std::to_string(c.rss_recycles) +
          ",\"hand_offs\":" + std::to_string(c.hand_offs) + ",\"kept\":" + std::to_string(c.kept) +
          ",\"batched\":" + std::to_string(c.batched) + ",\"reclaims\":" + std::to_string(c.reclaims) +
          ",\"sent_ahead\":" + std::to_string(c.sent_ahead) +
          ",\"withdrawn\":" + std::to_string(c.withdrawn) +
          ",\"taken_over\":" + std::to_string(c.taken_over) +
          ",\"handed_over\":" + std::to_string(c.handed_over) +
          ",\"errors\":{\"busy\":" + std::to_string(c.busy) + ",\"timeout\":" + std::to_string(c.timeouts) +
          ",\"crashed\":" + std::to_string(c.crashed) + ",\"bad_request\":" + std::to_string(c.bad_requests) +
          ",\"handler_error\":" + std::to_string(c.handler_errors) +
          ",\"read_timeout\":" + std::to_string(c.read_timeouts) +
          ",\"write_timeout\":" + std::to_string(c.write_timeouts) +
          ",\"shutting_down\":" + std::to_string(c.shutting_down) + "}}";
  json += ",\"reload\":{\"state\":" + json_string(s.reload->state) +
          ",\"error\":" + json_string(s.reload->error) + ",\"at\":" + number(s.reload->at_unix) + "}";
  json += ",\"histograms\":{\"queue_wait\":" + histogram_json(s.metrics->queue_wait) +
          ",\"service\":" + histogram_json(s.metrics->service) + "}";
  json += ",\"handlers\":[";
  for (size_t i = 0; i < s.handlers.size(); ++i) {
    const HandlerSnapshot& h = s.handlers[i];
    json += (i ? "," : "") + std::string("{\"pid\":") + std::to_string(h.pid) +
            ",\"state\":" + json_string(h.state) + ",\"requests\":" + std::to_string(h.requests) +
            ",\"current_request_seconds\":" + number(h.current_request_seconds) +
            ",\"started_at\":" + number(h.started_at_unix) +
            ",\"resident_bytes\":" + std::to_string(h.resident_bytes) + "}";
  }
  return json + "]}\n";
}

std::string render_prometheus(const StatsSnapshot& s) {
  const Counters& c = s.metrics->counters;
  std::string out;
  metric(out, "handoff_up", "gauge", "1 while the reactor serves, 0 while it drains or stops.",
         s.status == "serving" ? 1 : 0);
  metric_header(out, "handoff_handlers", "gauge", "Handler processes by state.");
  for (const auto& [state, count] :
       {std::pair{"idle", s.idle}, {"busy", s.busy}, {"starting", s.starting}, {"retiring", s.retiring}}) {
    out += std::string("handoff_handlers{state=\"") + state + "\"} " + std::to_string(count) + "\n";
  }
  metric(out, "handoff_handlers_target", "gauge", "The pool size the reactor keeps.", s.target_handlers);
  metric(out, "handoff_queue_length", "gauge", "Requests waiting for a handler.", s.queue_length);
  metric(out, "handoff_queue_length_max", "gauge", "The longest the queue has been.",
         s.metrics->longest_queue);
  metric(out, "handoff_open_connections", "gauge", "Client connections open now.", s.open_connections);
  metric(out, "handoff_buffered_bytes", "gauge", "Bytes of requests read and not handed off yet.",
         s.buffered_bytes);
  metric(out, "handoff_paused_connections", "gauge",
         "Connections not read from because --max-buffered-bytes is reached.", s.paused_connections);
  metric(out, "handoff_connections_accepted_total", "counter", "Client connections accepted.", c.accepted);
  metric(out, "handoff_requests_total", "counter", "Requests answered by handlers.", c.requests);
  metric_header(out, "handoff_errors_total", "counter", "Requests that ended in an error, by kind.");
  for (const auto& [kind, count] : {std::pair{"busy", c.busy},
                                    {"timeout", c.timeouts},
                                    {"crashed", c.crashed},
                                    {"bad_request", c.bad_requests},
                                    {"handler_error", c.handler_errors},
                                    {"read_timeout", c.read_timeouts},
                                    {"write_timeout", c.write_timeouts},
                                    {"shutting_down", c.shutting_down}}) {
    out += std::string("handoff_errors_total{kind=\"") + kind + "\"} " + std::to_string(count) + "\n";
  }
  metric(out, "handoff_handler_respawns_total", "counter", "Handlers started to replace ones that exited.",
         c.respawns);
  metric(out, "handoff_handler_exits_total", "counter", "Handler processes that exited.", c.handler_exits);
  metric(out, "handoff_reloads_failed_total", "counter",
         "Reloads abandoned because their new handlers did not start.", c.failed_reloads);
  metric(out, "handoff_requests_abandoned_total", "counter",
         "Requests dropped from the queue because their client left.", c.abandoned);
  metric(out, "handoff_connections_taken_over_total", "counter",
         "Connections passed from the reactor this one took over from.", c.taken_over);
  metric(out, "handoff_connections_handed_over_total", "counter",
         "Connections passed to the reactor that took over from this one.", c.handed_over);
  metric(out, "handoff_handler_rss_recycles_total", "counter",
         "Handlers replaced for growing past --handler-max-rss.", c.rss_recycles);
  metric(out, "handoff_requests_cancelled_total", "counter",
         "Running requests whose client left before any answer; their handler was replaced.", c.cancelled);
  metric(out, "handoff_hand_offs_total", "counter",
         "Connections passed to a handler; a handler lingering on one (--linger) serves more than a request.",
         c.hand_offs);
  metric(out, "handoff_kept_hand_offs_total", "counter",
         "Hand-offs to the handler that kept the connection's socket, with no descriptor passed.", c.kept);
  metric(out, "handoff_batched_hand_offs_total", "counter",
         "Hand-offs sent in one write with a frame before them, to a handler that takes batches.", c.batched);
  metric(out, "handoff_reclaims_total", "counter",
         "Lingering handlers taken back at once for a request that waited.", c.reclaims);
  metric(out, "handoff_sent_ahead_total", "counter",
         "Hand-offs sent to a busy handler, which takes them once done (--send-ahead).", c.sent_ahead);
  metric(out, "handoff_ahead_withdrawn_total", "counter",
         "Hand-offs sent ahead and taken back before their handler began them.", c.withdrawn);
  histogram_text(out, "handoff_queue_wait_seconds", "Time a complete request waited for a handler.",
                 s.metrics->queue_wait);
  histogram_text(out, "handoff_service_seconds", "Time a handler worked on a request.", s.metrics->service);
  metric_header(out, "handoff_handler_resident_bytes", "gauge", "Resident memory of each handler.");
  for (const HandlerSnapshot& h : s.handlers) {
    out += "handoff_handler_resident_bytes{pid=\"" + std::to_string(h.pid) + "\"} " +
           std::to_string(h.resident_bytes) + "\n";
  }
  return out;
}

}  // namespace handoff::reactor
