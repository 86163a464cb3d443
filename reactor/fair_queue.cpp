#include "reactor/fair_queue.hpp"

#include <algorithm>
#include <cassert>

namespace handoff::reactor {

void FairQueue::push(Id id, std::string client) {
  assert(!contains(id));
  auto [entry, added] = by_client_.try_emplace(client);
  if (added) entry->second.turn = turns_.insert(turns_.end(), client);
  entry->second.ids.push_back(id);
  client_of_.emplace(id, std::move(client));
  ++size_;
}

void FairQueue::push_first(Id id, std::string client) {
  assert(!contains(id));
  first_.push_back(id);
  client_of_.emplace(id, std::move(client));
  ++size_;
}

std::optional<FairQueue::Id> FairQueue::peek(size_t position) const {
  if (position < first_.size()) return first_[position];
  position -= first_.size();
  if (turns_.empty()) return std::nullopt;
  const std::deque<Id>& in_turn = by_client_.at(turns_.front()).ids;
  if (position == 0) return in_turn.front();
  // The one after the client in turn: the next client's first, or, alone, its own second.
  if (turns_.size() > 1) return by_client_.at(*std::next(turns_.begin())).ids.front();
  if (in_turn.size() > 1) return in_turn[1];
  return std::nullopt;
}

void FairQueue::take(Id id) {
  if (!remove_first(id)) remove(id, true);
}

void FairQueue::erase(Id id) {
  if (!remove_first(id)) remove(id, false);
}

bool FairQueue::remove_first(Id id) {
  const auto it = std::find(first_.begin(), first_.end(), id);
  if (it == first_.end()) return false;
  first_.erase(it);
  client_of_.erase(id);
  --size_;
  return true;
}

void FairQueue::remove(Id id, bool passes_turn) {
  const auto client = client_of_.find(id);
  if (client == client_of_.end()) return;
  const auto entry = by_client_.find(client->second);
  assert(entry != by_client_.end());
  Waiting& waiting = entry->second;
  const bool in_turn = waiting.turn == turns_.begin() && waiting.ids.front() == id;
  waiting.ids.erase(std::find(waiting.ids.begin(), waiting.ids.end(), id));
  if (waiting.ids.empty()) {
    turns_.erase(waiting.turn);
    by_client_.erase(entry);
  } else if (in_turn && passes_turn) {
    turns_.splice(turns_.end(), turns_, waiting.turn);  // Its turn is used: to the back of the line.
  }
  client_of_.erase(client);
  --size_;
}

size_t FairQueue::waiting_of(std::string_view client) const {
  const auto entry = by_client_.find(std::string(client));
  return entry == by_client_.end() ? 0 : entry->second.ids.size();
}

std::vector<std::pair<std::string, size_t>> FairQueue::busiest(size_t count) const {
  std::vector<std::pair<std::string, size_t>> clients;
  for (const auto& [client, waiting] : by_client_) clients.emplace_back(client, waiting.ids.size());
  const size_t shown = std::min(count, clients.size());
  std::partial_sort(clients.begin(), clients.begin() + static_cast<std::ptrdiff_t>(shown), clients.end(),
                    [](const auto& a, const auto& b) {
                      return a.second > b.second || (a.second == b.second && a.first < b.first);
                    });
  clients.resize(shown);
  return clients;
}

}  // namespace handoff::reactor
