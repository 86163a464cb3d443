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
// An eighth of the limit is kept for small requests: a connection that holds less than kSmallRequestBytes
// (a head, a line, a small body) may read until the whole limit is spent, a larger one only until seven
// eighths are. Uploads that stall with the budget in their hands so cannot keep a short request on a fresh
// connection from being read; and while connections wait for room (pressure()), the Frontend makes those
// that stalled give way (reactor/frontend.hpp).

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

  // A connection holding less than this reads from the reserve too.
  static constexpr size_t kSmallRequestBytes = 16 * 1024;
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
  // Spent for large requests (the reserve aside), or spent whole.
  bool spent() const { return held_ + reserve_ >= limit_; }
  bool spent_whole() const { return held_ >= limit_; }
  // Resumes the longest paused connection that still waits; 0 when none does.
  ConnectionId resume_next();

  const size_t limit_;
  const size_t reserve_;  // Of the limit, for connections that hold less than kSmallRequestBytes.
  const size_t read_chunk_bytes_;
  const std::function<bool(ConnectionId)> resume_;
  std::function<void()> on_pressure_;
  size_t held_ = 0;
  std::deque<ConnectionId> paused_;  // May hold ids that stopped waiting: resume_ skips those.
  size_t paused_count_ = 0;
  ConnectionId past_limit_ = 0;  // The one connection that may read while the budget is spent; 0: none.
};

}  // namespace handoff::reactor
