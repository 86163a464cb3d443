#pragma once

// Internal to the reactor. What the reactor does with systemd, when systemd runs it (and nothing otherwise):
// it takes the listening sockets systemd passes at socket activation (sd_listen_fds(3): handoff.socket), and
// tells systemd when it is ready, stopping, or the new main process after a takeover (sd_notify(3), for a
// Type=notify service). Both are harmless without systemd: no sockets passed, notifications dropped.

#include <optional>
#include <system_error>

#include "reactor/listener.hpp"

namespace handoff::reactor {

// The listening sockets systemd passed (LISTEN_FDS, for this process), non-blocking and close-on-exec. The
// one named "admin" (FileDescriptorName=admin) is the admin port; there must be exactly one other, the
// service port. nullopt with no error: systemd passed none. The environment variables are unset, so that
// no child takes them for its own.
std::error_code take_systemd_sockets(std::optional<ListenSockets>& sockets);

// READY=1: every handler is ready. A reactor that took over from another says that it is the service's main
// process now (MAINPID), which needs NotifyAccess=all in the unit (it is the old main process's child).
void notify_ready(bool took_over);
// STOPPING=1: a graceful stop began.
void notify_stopping();

}  // namespace handoff::reactor
