#pragma once

// Internal to the reactor. PassedConnection: a client connection as a takeover moves it from the old reactor
// to the new one (kTakeoverConnection, and kTakeoverBytes for bytes past one frame; reactor/takeover.hpp):
// what the new reactor needs to read on from where the old one stopped.

#include <cstdint>
#include <string>

#include "ipc/unique_fd.hpp"

namespace handoff::reactor {

struct PassedConnection {
  ipc::UniqueFd socket;
  uint64_t bytes_sent = 0;  // All the socket has sent: the new reactor judges a dead handler's answer by it.
  uint32_t request_age_ms = 0;  // How long ago the request being read began (--read-timeout); 0: none has.
  std::string bytes;            // Read of it and taken by no handler: the new reactor reads on from there.
  uint32_t flags = 0;  // kTakeoverConnection's: ipc::kTakenHttp or kTakenLineProtocol, kFlagContinueSent.
};

}  // namespace handoff::reactor
