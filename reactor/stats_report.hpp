#pragma once

// Internal to the reactor. The admin endpoints' renderings of a StatsSnapshot: JSON for /stats and the
// Prometheus text exposition format (version 0.0.4) for /metrics.

#include <string>

#include "reactor/metrics.hpp"

namespace handoff::reactor {

std::string render_stats_json(const StatsSnapshot& snapshot);
std::string render_prometheus(const StatsSnapshot& snapshot);

}  // namespace handoff::reactor
