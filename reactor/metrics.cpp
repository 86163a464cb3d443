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

uint64_t resident_bytes(int pid) {
  std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace handoff::reactor
