#include "reactor/systemd.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

std::error_code refuse(int descriptor, const char* name, const char* why) {
  log_at(LogLevel::kError, "the socket systemd passed as descriptor %d (\"%s\") %s", descriptor, name, why);
  return std::make_error_code(std::errc::invalid_argument);
}

// A passed socket is blocking (systemd makes no other promise): the accept loop needs it non-blocking. It is
// close-on-exec already, as every descriptor the reactor inherits (main). Accepted sockets inherit
// TCP_NODELAY from it, as from the ones the reactor binds itself (Listener::open).
std::error_code prepare(int descriptor, const char* name) {
  const int status = ::fcntl(descriptor, F_GETFL);
  if (status < 0 || ::fcntl(descriptor, F_SETFL, status | O_NONBLOCK) != 0) {
    return refuse(descriptor, name,
                  ("cannot be made non-blocking: " + std::string(std::strerror(errno))).c_str());
  }
  const int on = 1;
  if (sd_is_socket_inet(descriptor, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
    ::setsockopt(descriptor, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));  // Best effort: not a failure.
  }
  return {};
}

}  // namespace

std::error_code take_systemd_sockets(std::optional<ListenSockets>& sockets) {
  char** names = nullptr;
  const int count = sd_listen_fds_with_names(1, &names);
  if (count < 0) {
    log_at(LogLevel::kError, "reading the sockets systemd passed (sd_listen_fds): %s", std::strerror(-count));
    return {-count, std::system_category()};
  }
  ListenSockets passed;
  std::error_code error;
  for (int i = 0; i < count; ++i) {
    const int descriptor = SD_LISTEN_FDS_START + i;
    ipc::UniqueFd socket(descriptor);  // Owned from here, so that every path below closes it.
    const char* name = names && names[i] ? names[i] : "";
    if (error) continue;
    if (sd_is_socket(descriptor, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      error =
          refuse(descriptor, name, "is not a listening stream socket (ListenStream= in the .socket unit)");
    } else if (std::strcmp(name, "admin") == 0) {
      if (passed.admin)
        error = refuse(descriptor, name, "is a second one named \"admin\"");
      else if (!(error = prepare(descriptor, name)))
        passed.admin = std::move(socket);
    } else if (!(error = prepare(descriptor, name))) {
      passed.serve.push_back(std::move(socket));  // Every other one is the service's, as --listen's are.
    }
  }
  for (int i = 0; names && i < count; ++i) std::free(names[i]);
  std::free(names);
  if (error) return error;
  if (count == 0) return {};
  if (passed.serve.empty()) {
    log_at(LogLevel::kError, "systemd passed only the admin socket: the service socket is missing");
    return std::make_error_code(std::errc::invalid_argument);
  }
  sockets = std::move(passed);
  return {};
}

void notify_ready(bool took_over) {
  if (took_over) {
    sd_notifyf(0, "MAINPID=%d\nREADY=1", static_cast<int>(::getpid()));
  } else {
    sd_notify(0, "READY=1");
  }
}

void notify_stopping() {
  sd_notify(0, "STOPPING=1");
}

}  // namespace handoff::reactor
