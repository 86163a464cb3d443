#include "reactor/read_budget.hpp"

namespace handoff::reactor {

bool ReadBudget::may_read(ConnectionId id, size_t holding) {
  if (!spent() || past_limit_ == id) return true;
  if (holding < kSmallRequestBytes && !spent_whole()) return true;  // From the reserve.
  if (past_limit_ == 0) {
    past_limit_ = id;
    return true;
  }
  paused_.push_back(id);
  if (++paused_count_ == 1 && on_pressure_) on_pressure_();
  return false;
}

void ReadBudget::update(size_t before, size_t after) {
  held_ = held_ - before + after;
  if (after >= before || spent_whole()) return;
  // Each resumed connection may read one chunk before it asks again: resume as many as the room takes, and
  // at least one. One that still may not read (a large request while only the reserve has room) waits again.
  for (size_t room = limit_ - held_; resume_next() != 0 && room > read_chunk_bytes_;)
    room -= read_chunk_bytes_;
}

void ReadBudget::stop_reading(ConnectionId id) {
  if (past_limit_ != id) return;
  // The next paused connection may read past the limit in its turn (and passes it on when it stops).
  past_limit_ = resume_next();
}

ConnectionId ReadBudget::resume_next() {
  while (!paused_.empty()) {
    const ConnectionId id = paused_.front();
    paused_.pop_front();
    // Restarts its watch only: the reading happens in a later turn of the loop.
    if (resume_(id)) {
      --paused_count_;
      return id;
    }
  }
  return 0;
}

}  // namespace handoff::reactor
