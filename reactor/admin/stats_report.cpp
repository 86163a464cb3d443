#include "reactor/admin/stats_report.hpp"

#include <unistd.h>

#include <algorithm>
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

using NamedRoute = std::pair<const std::string, RouteMetrics::Route>;

// The routes by name, or busiest first and then by name (/stats: the status page shows the first few), so
// that a page reads the same each time.
std::vector<const NamedRoute*> routes_in_order(const RouteMetrics& routes, bool busiest_first) {
  std::vector<const NamedRoute*> order;
  for (const NamedRoute& route : routes.routes()) order.push_back(&route);
  std::sort(order.begin(), order.end(), [&](const NamedRoute* a, const NamedRoute* b) {
    const uint64_t a_requests = busiest_first ? a->second.requests() : 0;
    const uint64_t b_requests = busiest_first ? b->second.requests() : 0;
    return a_requests != b_requests ? a_requests > b_requests : a->first < b->first;
  });
  return order;
}

Json routes_json(const RouteMetrics& routes) {
  Json json = Json::array();
  for (const NamedRoute* route : routes_in_order(routes, true)) {
    const RouteMetrics::Route& figures = route->second;
    Json by_class = Json::object();
    for (size_t i = 0; i < RouteMetrics::kClassNames.size(); ++i)
      by_class[std::string(RouteMetrics::kClassNames[i])] = figures.by_class[i];
    json.push_back({{"route", route->first},
                    {"requests", figures.requests()},
                    {kRouteRequests.key, std::move(by_class)},
                    {kRouteService.key, figures.service.quantile(0.5)},
                    {"p99_seconds", figures.service.quantile(0.99)},
                    {"sum_seconds", figures.service.sum_seconds()}});
  }
  return json;
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

Json clients_json(const std::vector<std::pair<std::string, size_t>>& clients) {
  Json json = Json::array();
  for (const auto& [client, waiting] : clients) json.push_back({{"client", client}, {"waiting", waiting}});
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

// The samples of a histogram, its labels (`route="x",`, each with its comma, or none) on every one; its
// header is written apart.
void histogram_samples(std::string& out, std::string_view metric, const LatencyHistogram& histogram,
                       const std::string& labels = "") {
  const std::string name(metric);
  const auto cumulative = histogram.cumulative();
  for (size_t i = 0; i < cumulative.size(); ++i) {
    const std::string bound =
        i < LatencyHistogram::kBoundsSeconds.size() ? number(LatencyHistogram::kBoundsSeconds[i]) : "+Inf";
    out += name + "_bucket{" + labels + "le=\"" + bound + "\"} " + std::to_string(cumulative[i]) + "\n";
  }
  const std::string own_labels = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
  out += name + "_sum" + own_labels + " " + number(histogram.sum_seconds()) + "\n";
  out += name + "_count" + own_labels + " " + std::to_string(histogram.count()) + "\n";
}

void histogram_text(std::string& out, const HistogramRow& row, const LatencyHistogram& histogram) {
  metric_header(out, row.metric, "histogram", row.help);
  histogram_samples(out, row.metric, histogram);
}

// A label value as the text format writes it: backslash, double quote and line feed escaped.
std::string label_value(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      (out += '\\') += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void routes_text(std::string& out, const RouteMetrics& routes) {
  const std::vector<const NamedRoute*> order = routes_in_order(routes, false);
  metric_header(out, kRouteRequests.metric, "counter", kRouteRequests.help);
  for (const NamedRoute* route : order) {
    const std::string labels = "{route=\"" + label_value(route->first) + "\",class=\"";
    for (size_t i = 0; i < RouteMetrics::kClassNames.size(); ++i) {
      sample(out, kRouteRequests.metric, route->second.by_class[i],
             labels + std::string(RouteMetrics::kClassNames[i]) + "\"}");
    }
  }
  metric_header(out, kRouteService.metric, "histogram", kRouteService.help);
  for (const NamedRoute* route : order) {
    histogram_samples(out, kRouteService.metric, route->second.service,
                      "route=\"" + label_value(route->first) + "\",");
  }
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
      {"waiting_clients", clients_json(s.busiest_clients)},
      {"counters", counters_json(s.metrics->counters)},
      {"reload", {{"state", s.reload->state}, {"error", s.reload->error}, {"at", s.reload->at_unix}}},
      {"histograms", std::move(histograms)},
      {"routes", routes_json(s.metrics->routes)},
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
  routes_text(out, s.metrics->routes);
  metric_header(out, "handoff_handler_resident_bytes", "gauge", "Resident memory of each handler.");
  for (const HandlerSnapshot& h : s.handlers) {
    out += "handoff_handler_resident_bytes{pid=\"" + std::to_string(h.pid) + "\"} " +
           std::to_string(h.resident_bytes) + "\n";
  }
  return out;
}

}  // namespace handoff::reactor
