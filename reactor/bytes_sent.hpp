#pragma once

// Internal to the reactor. How many bytes have ever been written to a TCP socket, by any process holding it.
// The reactor compares this before and after a handler's turn to tell a cut answer from none at all.

#include <cstdint>
#include <optional>

namespace handoff::reactor {

// Acknowledged bytes (tcpi_bytes_acked, Linux 4.1) plus those still in the send queue (SIOCOUTQ); nullopt for a
// socket that is not TCP or a kernel that does not say.
std::optional<uint64_t> bytes_sent(int tcp_socket);

}  // namespace handoff::reactor
