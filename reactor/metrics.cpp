#include "reactor/metrics.hpp"

#include <unistd.h>

#include <fstream>

namespace handoff::reactor {

void LatencyHistogram::observe(double seconds) {
  size_t bucket = 0;
  while (bucket < kBoundsSeconds.size() && seconds > kBoundsSeconds[bucket]) ++bucket;
  ++buckets_[bucket];
  ++count_;
  sum_ += seconds;
}

std::array<uint64_t, LatencyHistogram::kBoundsSeconds.size() + 1> LatencyHistogram::cumulative() const {
  std::array<uint64_t, kBoundsSeconds.size() + 1> sums{};
  uint64_t running = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) sums[i] = running += buckets_[i];
  return sums;
}

double LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  const double rank = q * static_cast<double>(count_);
  uint64_t below = 0;
  for (size_t i = 0; i < kBoundsSeconds.size(); ++i) {
    if (static_cast<double>(below + buckets_[i]) >= rank) {
      const double lower = i == 0 ? 0 : kBoundsSeconds[i - 1];
      const double within = buckets_[i] == 0 ? 1 : (rank - static_cast<double>(below)) / buckets_[i];
      return lower + (kBoundsSeconds[i] - lower) * within;
    }
    below += buckets_[i];
  }
  return kBoundsSeconds.back();
}

size_t RouteMetrics::status_class(int status) {
  if (status < 300) return 0;
  if (status >= 500) return 3;
  return static_cast<size_t>(status / 100 - 2);
}

uint64_t RouteMetrics::Route::requests() const {
  uint64_t sum = 0;
  for (const uint64_t count : by_class) sum += count;
  return sum;
}

void RouteMetrics::observe(const std::string* route, int status, double service_seconds) {
  static const std::string no_route(kNoRoute), other_routes(kOtherRoutes);
  auto it = routes_.find(route != nullptr ? *route : no_route);
  if (it == routes_.end()) {
    if (route != nullptr && named_ < kMaxRoutes) {
      ++named_;
      it = routes_.try_emplace(*route).first;
    } else {
      it = routes_.try_emplace(route != nullptr ? other_routes : no_route).first;
    }
  }
  ++it->second.by_class[status_class(status)];
  it->second.service.observe(service_seconds);
}

uint64_t resident_bytes(int pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace handoff::reactor
