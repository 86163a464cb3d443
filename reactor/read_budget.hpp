#pragma once

// Internal to the reactor. ReadBudget: the bytes the reactor holds, across all connections, of requests not
// handed to a handler yet (--max-buffered-bytes). Since the reactor reads whole requests, bodies included, a
// crowd of slow uploads would otherwise grow it without limit. When the budget is spent, a connection stops
// reading (its client's TCP window fills and the client waits: back-pressure) and waits here; as handlers
// take requests and free bytes, the paused connections are resumed, longest paused first.
//
// So that unfinished requests holding the whole budget cannot wait for each other for ever, one connection at
// a time may read on past the limit, until it stops reading (its request is complete, or it times out). The
// reactor so holds at most the limit plus one request, plus a read chunk for each connection just resumed.
//
// Small requests have a reserve of their own, an eighth of the limit: a connection that holds less than one
// read chunk (a head, a line, a small body) may read while small ones hold less than the reserve, or the
// limit has room; larger ones leave the reserve to them, and so does the one reading past the limit. Uploads
// that stall with the budget in their hands so cannot keep a short request on a fresh connection from being
// read; and while connections wait for room (pressure()), the Frontend makes those that stalled give way
// (reactor/frontend.hpp).

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <utility>

#include "reactor/dispatcher.hpp"

namespace handoff::reactor {

class ReadBudget {
 public:
  // read_chunk_bytes: the most a connection reads at once. resume is called for a paused connection once it
  // may read again, and says whether it did: the connection may be gone or done waiting by then.
  ReadBudget(size_t limit, size_t read_chunk_bytes, std::function<bool(ConnectionId)> resume)
      : limit_(limit), reserve_(limit / 8), read_chunk_bytes_(read_chunk_bytes), resume_(std::move(resume)) {}
  // Called when a connection is paused while none was: the pressure begins.
  void on_pressure(std::function<void()> callback) { on_pressure_ = std::move(callback); }

  // A connection holding less than this is a small request, which may read from the reserve.
  size_t small_request_bytes() const { return read_chunk_bytes_; }
  ReadBudget(const ReadBudget&) = delete;
  ReadBudget& operator=(const ReadBudget&) = delete;

  size_t held() const { return held_; }
  // Connections paused now.
  size_t paused() const { return paused_count_; }

  // Whether the connection, which holds holding bytes, may read now; when not, it is paused until resume is
  // called for it.
  bool may_read(ConnectionId id, size_t holding);
  // Connections wait for room: the budget is in use up to its limit for large requests.
  bool pressure() const { return paused_count_ > 0; }
  // A connection's buffer went from before to after bytes.
  void update(size_t before, size_t after);
  // The connection stopped reading (its request is ready, or it closes): it no longer reads past the limit.
  void stop_reading(ConnectionId id);
  // A paused connection stopped waiting for room (it timed out, or closes) before it was resumed.
  void cancel_pause() { --paused_count_; }

 private:
  bool small(size_t holding) const { return holding < read_chunk_bytes_; }
  // Whether a small or a large request may read without being the one past the limit.
  bool room_for(size_t holding) const {
    if (small(holding)) return held_small_ < reserve_ || held_ < limit_;
    return held_large_ + std::max(held_small_, reserve_) < limit_;
  }
  // Resumes the longest paused connection that still waits; 0 when none does.
  ConnectionId resume_next();

  const size_t limit_;
  const size_t reserve_;  // Of the limit, for small requests (less than a read chunk held).
  const size_t read_chunk_bytes_;
  const std::function<bool(ConnectionId)> resume_;
  std::function<void()> on_pressure_;
  size_t held_ = 0;
  size_t held_small_ = 0;  // Of held_, by connections holding less than a read chunk.
  size_t held_large_ = 0;
  std::deque<ConnectionId> paused_;  // May hold ids that stopped waiting: resume_ skips those.
  size_t paused_count_ = 0;
  ConnectionId past_limit_ = 0;  // The one connection that may read while the budget is spent; 0: none.
};

}  // namespace handoff::reactor
