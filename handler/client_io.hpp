#pragma once

// Writing to a client socket that the handler borrows from the reactor. The socket shares its open
// file description with the reactor's copy, so it is non-blocking (O_NONBLOCK is per description) and stays
// so: every wait is a poll(2) with a deadline, which is also how a stalled client is given up on.

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>

namespace handoff::handler {

// Writes all of bytes, and gives up (std::errc::timed_out) when the client takes none of them for timeout: a
// client that stops reading must not hold the handler longer. The clock starts over whenever some bytes go
// out, as nginx's send_timeout does, so a client that keeps reading gets a whole answer however long it
// takes. Progress is seen when the kernel says the socket is writable again, which is once a part of
// its send buffer is free (for TCP, a third), not at every byte the client reads. Fails (without SIGPIPE)
// when the client is gone.
std::error_code write_all(int client_fd, std::string_view bytes, std::chrono::milliseconds timeout);

}  // namespace handoff::handler
