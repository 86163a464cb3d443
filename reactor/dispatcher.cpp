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

std::optional<Assignment> Dispatcher::connection_ready(ConnectionId connection, Ready how) {
  assert(!is_waiting(connection));
  const std::optional<HandlerId> kept_by = kept_by_ ? kept_by_(connection) : std::nullopt;
  if (!idle_.empty()) {
    auto chosen = kept_by ? std::find(idle_.begin(), idle_.end(), *kept_by) : idle_.end();
    if (chosen == idle_.end()) chosen = idle_.begin();
    const HandlerId handler = *chosen;
    idle_.erase(chosen);
    publish();
    busy_.emplace(handler, Serving{.current = connection});
    return Assignment{handler, connection};
  }
  // Ahead only when nothing waits before it: the queue stays first come, first served.
  if (how.may_go_ahead && waiting_.empty()) {
    for (const std::optional<HandlerId> wanted : {how.preferred, kept_by}) {
      if (const auto it = wanted ? busy_.find(*wanted) : busy_.end();
          it != busy_.end() && may_send_ahead(it->first, it->second)) {
        return give_ahead(it->first, it->second, connection);
      }
    }
    // Else to the one that holds the fewest: a request ahead waits behind as few others as can be.
    Serving* fewest = nullptr;
    HandlerId fewest_handler = 0;
    for (auto& [handler, serving] : busy_) {
      if (!may_send_ahead(handler, serving) || (fewest && serving.aheads.size() >= fewest->aheads.size())) {
        continue;
      }
      fewest = &serving;
      fewest_handler = handler;
    }
    if (fewest) return give_ahead(fewest_handler, *fewest, connection);
  }
  std::string client = client_of_ ? client_of_(connection) : std::string();
  if (how.first_in_line) {
    waiting_.push_first(connection, std::move(client));
    first_passed_ = false;
  } else {
    waiting_.push(connection, std::move(client));
  }
  publish();
  return std::nullopt;
}

std::optional<Assignment> Dispatcher::handler_idle(HandlerId handler) {
  assert(!busy_.contains(handler));
  if (waiting_.empty()) {
    idle_.push_back(handler);
    publish();
    return std::nullopt;
  }
  const ConnectionId connection = take_waiting(handler);
  publish();
  busy_.emplace(handler, Serving{.current = connection});
  return Assignment{handler, connection};
}

ConnectionId Dispatcher::take_waiting(HandlerId handler) {
  ConnectionId chosen = *waiting_.peek(0);
  const std::optional<ConnectionId> second = waiting_.peek(1);
  const bool pass_first =
      kept_by_ && !first_passed_ && second && kept_by_(chosen) != handler && kept_by_(*second) == handler;
  if (pass_first) chosen = *second;
  first_passed_ = pass_first;
  waiting_.take(chosen);
  return chosen;
}

void Dispatcher::set_ahead_depth(HandlerId handler, unsigned depth) {
  if (depth > 0) {
    ahead_depth_[handler] = depth;
  } else {
    ahead_depth_.erase(handler);
  }
}

Dispatcher::Done Dispatcher::handler_done(HandlerId handler, ConnectionId connection) {
  const auto it = busy_.find(handler);
  if (it == busy_.end() || it->second.current != connection) return Done::kNotHeld;
  Serving& serving = it->second;
  if (serving.aheads.empty()) {
    busy_.erase(it);
    return Done::kFree;
  }
  serving.current = serving.aheads.front().connection;
  serving.aheads.pop_front();
  serving.withdrawn = false;
  --aheads_;
  publish();
  return Done::kGoesOnAhead;
}

std::optional<Assignment> Dispatcher::next_ahead(HandlerId handler) {
  const auto it = busy_.find(handler);
  if (it == busy_.end() || waiting_.empty() || !may_send_ahead(handler, it->second)) return std::nullopt;
  return give_ahead(handler, it->second, take_waiting(handler));
}

Assignment Dispatcher::give_ahead(HandlerId handler, Serving& serving, ConnectionId connection) {
  serving.aheads.push_back({.connection = connection, .since = next_ahead_order_++});
  ++aheads_;
  publish();
  return Assignment{handler, connection, true};
}

void Dispatcher::ahead_withdrawn(HandlerId handler, ConnectionId connection) {
  const auto it = busy_.find(handler);
  if (it == busy_.end()) return;
  std::deque<Ahead>& aheads = it->second.aheads;
  const auto ahead = std::find_if(aheads.begin(), aheads.end(),
                                  [connection](const Ahead& each) { return each.connection == connection; });
  if (ahead == aheads.end()) return;
  aheads.erase(ahead);
  it->second.withdrawn = true;
  --aheads_;
  publish();
}

Dispatcher::Held Dispatcher::handler_gone(HandlerId handler) {
  erase_value(idle_, handler);
  ahead_depth_.erase(handler);
  Held held;
  if (const auto it = busy_.find(handler); it != busy_.end()) {
    held = {.current = it->second.current, .aheads = aheads_of(handler)};
    aheads_ -= held.aheads.size();
    busy_.erase(it);
  }
  publish();
  return held;
}

void Dispatcher::connection_gone(ConnectionId connection) {
  if (waiting_.peek(0) == connection) first_passed_ = false;
  waiting_.erase(connection);
  publish();
}

std::optional<ConnectionId> Dispatcher::connection_of(HandlerId handler) const {
  const auto it = busy_.find(handler);
  if (it == busy_.end()) return std::nullopt;
  return it->second.current;
}

std::vector<ConnectionId> Dispatcher::aheads_of(HandlerId handler) const {
  std::vector<ConnectionId> aheads;
  if (const auto it = busy_.find(handler); it != busy_.end()) {
    for (const Ahead& ahead : it->second.aheads) aheads.push_back(ahead.connection);
  }
  return aheads;
}

std::optional<HandlerId> Dispatcher::handler_of(ConnectionId connection) const {
  const auto it = std::find_if(busy_.begin(), busy_.end(), [connection](const auto& entry) {
    return entry.second.current == connection;
  });
  if (it == busy_.end()) return std::nullopt;
  return it->first;
}

std::optional<HandlerId> Dispatcher::ahead_holder(ConnectionId connection) const {
  const auto it = std::find_if(busy_.begin(), busy_.end(), [connection](const auto& entry) {
    return std::any_of(entry.second.aheads.begin(), entry.second.aheads.end(),
                       [connection](const Ahead& ahead) { return ahead.connection == connection; });
  });
  if (it == busy_.end()) return std::nullopt;
  return it->first;
}

bool Dispatcher::is_waiting(ConnectionId connection) const {
  return waiting_.contains(connection);
}

}  // namespace handoff::reactor
