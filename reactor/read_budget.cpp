#include "reactor/read_budget.hpp"

namespace handoff::reactor {

bool ReadBudget::may_read(ConnectionId id, size_t holding) {
  if (room_for(holding) || past_limit_ == id) return true;
  if (past_limit_ == 0) {
    past_limit_ = id;
    return true;
  }
  paused_.push_back(id);
  if (++paused_count_ == 1 && on_pressure_) on_pressure_();
  return false;
}

void ReadBudget::update(size_t before, size_t after) {
  // A connection's bytes count where their size puts them: before was counted as after was, the last time.
  (small(before) ? held_small_ : held_large_) -= before;
  (small(after) ? held_small_ : held_large_) += after;
  held_ = held_small_ + held_large_;
  if (after >= before) return;
  // Each resumed connection may read one chunk before it asks again: resume as many as the room takes, and
  // at least one. One that still may not read (a large request while only the reserve has room) waits again.
  const size_t room = limit_ > held_ ? limit_ - held_ : reserve_ > held_small_ ? reserve_ - held_small_ : 0;
  if (room == 0) return;
  for (size_t left = room; resume_next() != 0 && left > read_chunk_bytes_;) left -= read_chunk_bytes_;
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
