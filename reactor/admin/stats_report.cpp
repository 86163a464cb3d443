#include "reactor/admin/stats_report.hpp"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "reactor/version.hpp"

namespace handoff::reactor {
namespace {

// /stats keeps its keys in the order written, as docs/operations.md shows them.
using Json = nlohmann::ordered_json;

// A number as Prometheus reads it: a bound, a sum of seconds.
std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.13g", value);
  return text;
}

Json histogram_json(const LatencyHistogram& histogram) {
  Json buckets = Json::array();
  const auto cumulative = histogram.cumulative();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const Json bound = i < LatencyHistogram::kBoundsSeconds.size() ? Json(LatencyHistogram::kBoundsSeconds[i])
                                                                   : Json("+Inf");
    buckets.push_back({{"le", bound}, {"count", cumulative[i]}});
  }
  return {{"count", histogram.count()}, {"sum_seconds", histogram.sum_seconds()}, {"buckets", buckets}};
}

Json counters_json(const Counters& counters) {
  Json json = Json::object();
  Json errors = Json::object();
  for (const CounterRow& row : kCounterTable)
    (is_error(row) ? errors : json)[std::string(row.key)] = counters.*row.member;
  json["errors"] = std::move(errors);
  return json;
}

Json handlers_json(const std::vector<HandlerSnapshot>& handlers) {
  Json json = Json::array();
  for (const HandlerSnapshot& h : handlers) {
    json.push_back({{"pid", h.pid},
                    {"state", h.state},
                    {"requests", h.requests},
                    {"current_request_seconds", h.current_request_seconds},
                    {"started_at", h.started_at_unix},
                    {"resident_bytes", h.resident_bytes}});
  }
  return json;
}

Json templates_json(const std::vector<TemplateSnapshot>& templates) {
  Json json = Json::array();
  for (const TemplateSnapshot& t : templates)
    json.push_back({{"pid", t.pid}, {"state", t.state}, {"handlers", t.handlers}});
  return json;
}

void metric_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

// One line of a metric: its name, its labels ("{kind=\"busy\"}") if any, its value.
void sample(std::string& out, std::string_view name, uint64_t value, const std::string& labels = "") {
  out.append(name).append(labels).append(" ").append(std::to_string(value)).append("\n");
}

// The rows of a table, in its order, as Prometheus metrics of one type: a row of the labelled metric is a
// sample of it, and the labelled metric is written whole where its first row stands; any other row is a
// metric of its own.
template <typename Table, typename Value>
void table_text(std::string& out, const Table& table, std::string_view type, const LabelledMetric& family,
                Value value) {
  bool family_written = false;
  for (const auto& row : table) {
    if (row.metric != family.metric) {
      metric_header(out, row.metric, type, row.help);
      sample(out, row.metric, value(row));
      continue;
    }
    if (family_written) continue;
    family_written = true;
    metric_header(out, family.metric, type, family.help);
    for (const auto& sibling : table) {
      if (sibling.metric != family.metric) continue;
      const std::string labels = "{" + std::string(family.label) + "=\"" + std::string(sibling.key) + "\"}";
      sample(out, family.metric, value(sibling), labels);
    }
  }
}

void histogram_text(std::string& out, const HistogramRow& row, const LatencyHistogram& histogram) {
  metric_header(out, row.metric, "histogram", row.help);
  const std::string name(row.metric);
  const auto cumulative = histogram.cumulative();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const std::string bound =
        i < LatencyHistogram::kBoundsSeconds.size() ? number(LatencyHistogram::kBoundsSeconds[i]) : "+Inf";
    out += name + "_bucket{le=\"" + bound + "\"} " + std::to_string(cumulative[i]) + "\n";
  }
  out += name + "_sum " + number(histogram.sum_seconds()) + "\n";
  out += name + "_count " + std::to_string(histogram.count()) + "\n";
}

}  // namespace

std::string render_stats_json(const StatsSnapshot& s) {
  Json pool = Json::object();
  for (const PoolRow& row : kPoolTable) pool[std::string(row.key)] = s.*row.member;
  Json histograms = Json::object();
  for (const HistogramRow& row : kHistogramTable)
    histograms[std::string(row.key)] = histogram_json(s.metrics->*row.member);
  Json connections = Json::object();
  for (const auto& [state, count] : s.connections_by_state) connections[state] = count;
  const Json stats = {
      {"status", s.status},
      {"version", kVersion},
      {"pid", ::getpid()},
      {"uptime_seconds", s.uptime_seconds},
      {"pool", std::move(pool)},
      {"connections", std::move(connections)},
      {"counters", counters_json(s.metrics->counters)},
      {"reload", {{"state", s.reload->state}, {"error", s.reload->error}, {"at", s.reload->at_unix}}},
      {"histograms", std::move(histograms)},
      {"handlers", handlers_json(s.handlers)},
      {"templates", templates_json(s.templates)},
  };
  // A reload's error may quote bytes from outside (a handler's command line) that are not UTF-8: they are
  // replaced, never thrown about.
  return stats.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string render_prometheus(const StatsSnapshot& s) {
  std::string out;
  metric_header(out, "handoff_up", "gauge", "1 while the reactor serves, 0 while it drains or stops.");
  sample(out, "handoff_up", s.status == "serving" ? 1 : 0);
  table_text(out, kPoolTable, "gauge", kHandlersByState,
             [&](const PoolRow& row) { return uint64_t{s.*row.member}; });
  table_text(out, kCounterTable, "counter", kErrorsByKind,
             [&](const CounterRow& row) { return s.metrics->counters.*row.member; });
  metric_header(out, "handoff_connections", "gauge", "Open client connections by state.");
  for (const auto& [state, count] : s.connections_by_state) {
    sample(out, "handoff_connections", count, std::string("{state=\"") + state + "\"}");
  }
  for (const HistogramRow& row : kHistogramTable) histogram_text(out, row, s.metrics->*row.member);
  metric_header(out, "handoff_handler_resident_bytes", "gauge", "Resident memory of each handler.");
  for (const HandlerSnapshot& h : s.handlers) {
    out += "handoff_handler_resident_bytes{pid=\"" + std::to_string(h.pid) + "\"} " +
           std::to_string(h.resident_bytes) + "\n";
  }
  return out;
}

}  // namespace handoff::reactor
