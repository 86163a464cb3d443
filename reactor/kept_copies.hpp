#pragma once

// Internal to the reactor. KeptCopies: the client sockets one handler holds a copy of between its hand-offs
// (ipc kFlagKept), so that the connection's next request goes to it again without a descriptor, and the
// copies it is to close (ipc kForget), which go out with its next frame. At most kMax are kept, and only by
// a handler that said in its hello that it can.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ipc/wire.hpp"
#include "reactor/dispatcher.hpp"

namespace handoff::reactor {

class KeptCopies {
 public:
  static constexpr size_t kMax = 256;

  void set_capability(bool keeps) { keeps_ = keeps; }
  bool contains(ConnectionId connection) const { return kept_.contains(connection); }

  // The flags of a kConnection frame for connection, and whether it goes without a descriptor (the handler
  // holds its copy): then it stays kept, else the handler is asked to keep the one it gets, while there is
  // room.
  struct Sending {
    uint32_t flags;
    bool without_descriptor;
  };
  Sending sending(ConnectionId connection) {
    if (!keeps_) return {0, false};
    if (kept_.contains(connection)) return {ipc::kFlagKept | ipc::kFlagKeep, true};
    // A frame with a descriptor replaces any copy the handler still holds: a forget for it would close the
    // new one.
    std::erase(forgets_, connection);
    return {kept_.size() < kMax ? ipc::kFlagKeep : 0u, false};
  }
  // The handler reported connection done, with or without keeping its copy.
  void reported(ConnectionId connection, bool kept) {
    if (kept && keeps_) {
      kept_.insert(connection);
    } else {
      kept_.erase(connection);
    }
  }
  // The handler is to close its copy of connection: true when it held one (a kForget is due).
  bool forget(ConnectionId connection) {
    if (kept_.erase(connection) == 0) return false;
    forgets_.push_back(connection);
    return true;
  }
  // The kForget frames due, taken.
  std::vector<ConnectionId> take_forgets() { return std::exchange(forgets_, {}); }

 private:
  bool keeps_ = false;
  std::unordered_set<ConnectionId> kept_;
  std::vector<ConnectionId> forgets_;
};

}  // namespace handoff::reactor
