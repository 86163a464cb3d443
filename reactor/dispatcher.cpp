#include "reactor/dispatcher.hpp"

#include <algorithm>
#include <cassert>

namespace handoff::reactor {
namespace {

template <typename T>
void erase_value(std::deque<T>& queue, T value) {
  queue.erase(std::remove(queue.begin(), queue.end(), value), queue.end());
}

}  // namespace

std::optional<Assignment> Dispatcher::connection_ready(ConnectionId connection) {
  assert(!is_waiting(connection));
  if (idle_.empty()) {
    waiting_.push_back(connection);
    publish();
    return std::nullopt;
  }
  const HandlerId handler = idle_.front();
  idle_.pop_front();
  publish();
  busy_.emplace(handler, connection);
  return Assignment{handler, connection};
}

std::optional<Assignment> Dispatcher::handler_idle(HandlerId handler) {
  assert(!busy_.contains(handler));
  if (waiting_.empty()) {
    idle_.push_back(handler);
    publish();
    return std::nullopt;
  }
  const ConnectionId connection = waiting_.front();
  waiting_.pop_front();
  publish();
  busy_.emplace(handler, connection);
  return Assignment{handler, connection};
}

bool Dispatcher::handler_done(HandlerId handler, ConnectionId connection) {
  const auto it = busy_.find(handler);
  if (it == busy_.end() || it->second != connection) return false;
  busy_.erase(it);
  return true;
}

std::optional<ConnectionId> Dispatcher::handler_gone(HandlerId handler) {
  erase_value(idle_, handler);
  publish();
  const auto it = busy_.find(handler);
  if (it == busy_.end()) return std::nullopt;
  const ConnectionId connection = it->second;
  busy_.erase(it);
  return connection;
}

void Dispatcher::connection_gone(ConnectionId connection) {
  erase_value(waiting_, connection);
  publish();
}

std::optional<ConnectionId> Dispatcher::connection_of(HandlerId handler) const {
  const auto it = busy_.find(handler);
  if (it == busy_.end()) return std::nullopt;
  return it->second;
}

std::optional<HandlerId> Dispatcher::handler_of(ConnectionId connection) const {
  const auto it = std::find_if(busy_.begin(), busy_.end(),
                               [connection](const auto& entry) { return entry.second == connection; });
  if (it == busy_.end()) return std::nullopt;
  return it->first;
}

bool Dispatcher::is_waiting(ConnectionId connection) const {
  return std::find(waiting_.begin(), waiting_.end(), connection) != waiting_.end();
}

}  // namespace handoff::reactor
