// The HandlerPool's part of lingering (--linger): a handler that answered may wait on its connection for the
// client's next request while nothing else waits; a request that comes to wait asks one back (kReclaim). The
// handler's side is handler/linger.cpp; the word it lingers by is in its answer record.

#include <algorithm>
#include <atomic>

#include "reactor/handler_pool.hpp"

namespace handoff::reactor {

// The waiting request is published (Dispatcher); the fence orders that before the handlers' words are read,
// as handler/linger.cpp orders its word before it reads the waiting count. A handler says it lingers just
// before its kAnswered goes out; one whose kAnswered is read after the request was queued is looked at then
// (on_request_answered).
bool HandlerPool::reclaim_lingering() {
  if (may_linger_.empty()) return false;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return std::any_of(may_linger_.begin(), may_linger_.end(),
                     [this](HandlerId id) { return reclaim_if_lingering(id); });
}

std::optional<HandlerId> HandlerPool::lingering_handler() {
  if (may_linger_.empty()) return std::nullopt;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (const HandlerId id : may_linger_) {
    if (handlers_.at(id)->lingering()) return id;
  }
  return std::nullopt;
}

bool HandlerPool::reclaim_any_lingering() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return std::any_of(handlers_.begin(), handlers_.end(),
                     [this](const auto& entry) { return reclaim_if_lingering(entry.first); });
}

bool HandlerPool::reclaim_if_lingering(HandlerId id) {
  HandlerProcess& handler = *handlers_.at(id);
  if (!handler.lingering()) return false;
  const std::optional<ConnectionId> connection = dispatcher_.connection_of(id);
  if (!connection || !handler.reclaim(*connection)) return false;
  ++metrics_.counters.reclaims;
  return true;
}

}  // namespace handoff::reactor
