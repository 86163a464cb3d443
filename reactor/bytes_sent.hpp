#pragma once

// Internal to the reactor. How many bytes have ever been written to a TCP socket, by any process holding it.
// When a handler dies, the reactor compares this with the bytes the handlers reported writing, to tell a cut
// answer from none at all; it is asked then only, never on the hot path.

#include <cstdint>
#include <optional>

namespace handoff::reactor {

// Acknowledged bytes (tcpi_bytes_acked, Linux 4.1) plus those still in the send queue (SIOCOUTQ), read as one
// consistent pair; nullopt for a socket that is not TCP, a kernel that does not say, or acknowledgements that
// keep arriving between the reads.
std::optional<uint64_t> bytes_sent(int tcp_socket);

}  // namespace handoff::reactor
