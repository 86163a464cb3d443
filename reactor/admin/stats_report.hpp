#pragma once

// Internal to the reactor. The admin endpoints' renderings of a StatsSnapshot: JSON for /stats and the
// Prometheus text exposition format (version 0.0.4) for /metrics, both from the tables that name each figure
// (kCounterTable in reactor/counters.hpp; kPoolTable, kHistogramTable and the route figures, RouteMetrics,
// in reactor/metrics.hpp).

#include <string>
#include <utility>

#include "reactor/metrics.hpp"

namespace handoff::reactor {

std::string render_stats_json(const StatsSnapshot& snapshot);
std::string render_prometheus(const StatsSnapshot& snapshot);

}  // namespace handoff::reactor
