#pragma once

// Internal to the reactor. FairQueue: the connections whose request waits for a handler, in the order they
// are to be served. Each client (its address: the peer's, or the one its balancer's PROXY header named) has
// a queue of its own, first come first served, and the clients take turns, one request each (round robin,
// as a fair queueing scheduler serves flows): a client with 200 requests waiting delays another client's
// request by at most one of its own per handler, not by all 200. With one client, it is a plain FIFO.
// Connections given back unserved (withdrawn from a handler they were sent ahead to) go before every turn.
// The Dispatcher owns one; it holds ids and client names only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace handoff::reactor {

class FairQueue {
 public:
  using Id = uint64_t;

  // Id waits, behind client's other requests, for client's turn; a client that had none waiting takes its
  // turn after every client that has.
  void push(Id id, std::string client);
  // Id goes first, before every client's turn (it was given back unserved, and is older than the rest).
  void push_first(Id id, std::string client);

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  bool contains(Id id) const { return client_of_.contains(id); }

  // The id served next (position 0), or the one after it (position 1); nullopt when fewer wait.
  std::optional<Id> peek(size_t position) const;
  // Id is served now (one of the first two peek gives): it leaves the queue, and when it was its client's
  // turn, the turn passes to the next client.
  void take(Id id);
  // Id stops waiting (its client left, or the server stops); no turn passes.
  void erase(Id id);

  // How many requests of client wait.
  size_t waiting_of(std::string_view client) const;
  // How many clients have requests waiting.
  size_t clients() const { return turns_.size() + (first_.empty() ? 0 : 1); }
  // The clients with the most requests waiting, most first, at most count of them (for /stats).
  std::vector<std::pair<std::string, size_t>> busiest(size_t count) const;

 private:
  struct Waiting {
    std::deque<Id> ids;                     // Oldest first.
    std::list<std::string>::iterator turn;  // Its place in turns_.
  };
  // Removes id from first_, if it is there (true).
  bool remove_first(Id id);
  // Removes id from its client's queue; the client leaves the turns when nothing of it waits.
  void remove(Id id, bool passes_turn);

  std::deque<Id> first_;                                // push_first's, oldest given back first.
  std::unordered_map<std::string, Waiting> by_client_;  // Clients with requests in turns.
  std::list<std::string> turns_;                        // Clients in the order of their turns.
  std::unordered_map<Id, std::string> client_of_;       // Every id waiting, first_'s too.
  size_t size_ = 0;
};

}  // namespace handoff::reactor
