// reactor: the front process of handoff. Options -> config -> server -> event loop.

#include <linux/close_range.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <variant>

#include "reactor/admin/admin_server.hpp"
#include "reactor/command_line.hpp"
#include "reactor/config.hpp"
#include "reactor/log.hpp"
#include "reactor/pid_file.hpp"
#include "reactor/privileges.hpp"
#include "reactor/server.hpp"
#include "reactor/takeover.hpp"

namespace {

// This executable's path, as it is now: a takeover starts the file at this path, whatever it holds then.
std::string own_path() {
  char path[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  return length > 0 ? std::string(path, length) : std::string();
}

// Every idle connection costs a descriptor: the soft limit is raised to the hard one, and --max-connections,
// unless given, leaves room below it for the reactor's own descriptors: two per handler (its channel and its
// answer record; three with --log-format json, its output pipe too), twice that while a reload or a recycling
// runs old and new side by side, the admin connections (AdminServer holds at most kMaxConnections), the
// listeners, the loop's, connections lingering at close, and a margin.
void use_every_descriptor(handoff::reactor::Config& config) {
  using handoff::reactor::LogLevel;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) {
    handoff::reactor::log_at(LogLevel::kWarn,
                             "getrlimit(RLIMIT_NOFILE): %s; --max-connections stays as given",
                             std::strerror(errno));
    return;
  }
  const rlim_t before = files.rlim_cur;
  if (files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) files.rlim_cur = before;
  }
  const rlim_t per_handler = config.log_format == handoff::reactor::LogFormat::kJson ? 3 : 2;
  const rlim_t reserved = 32 + handoff::reactor::AdminServer::kMaxConnections +
                          2 * per_handler * static_cast<rlim_t>(config.max_handlers);
  if (config.max_connections == 0) {
    config.max_connections = files.rlim_cur > reserved + 16 ? files.rlim_cur - reserved : 16;
  }
  handoff::reactor::log_at(LogLevel::kInfo,
                           "descriptors: %llu (the soft limit was %llu, the hard one is %llu); up to %zu "
                           "client connections at once",
                           static_cast<unsigned long long>(files.rlim_cur),
                           static_cast<unsigned long long>(before),
                           static_cast<unsigned long long>(files.rlim_max), config.max_connections);
}

// The built-in handler: installed beside the reactor (bin/handoff-handler next to bin/handoff), or in the
// build tree (build/handler/handoff-handler next to build/reactor/handoff); as a --handler-cmd, quoted where
// the path needs it.
std::string default_handler_command(const std::string& self) {
  const std::string folder = self.substr(0, self.rfind('/'));
  const std::string beside = folder + "/handoff-handler";
  if (::access(beside.c_str(), X_OK) == 0) return handoff::reactor::command_text({beside});
  return handoff::reactor::command_text({folder.substr(0, folder.rfind('/')) + "/handler/handoff-handler"});
}

}  // namespace

int main(int argc, char** argv) {
  using namespace handoff::reactor;

  const std::string self = own_path();
  const std::variant<Config, EarlyExit> parsed =
      parse_command_line(argc, argv, default_handler_command(self));
  if (const auto* early = std::get_if<EarlyExit>(&parsed)) {
    std::fputs(early->text.c_str(), early->status == 0 ? stdout : stderr);
    return early->status;
  }
  Config config = std::get<Config>(parsed);
  config.own_command.assign(argv, argv + argc);
  if (!self.empty()) config.own_command[0] = self;
  configure_log(config.log_level, config.log_format);
  if (const std::string refusal = privilege_refusal(config, std::getenv(kTakeoverFdVariable) != nullptr);
      !refusal.empty()) {
    std::fprintf(stderr, "handoff: %s\n", refusal.c_str());
    return 2;
  }
  // Writes to vanished clients must fail with EPIPE, not kill the reactor.
  signal(SIGPIPE, SIG_IGN);
  // Handlers get stdin, stdout, stderr and their channel, nothing else: descriptors this process inherited
  // from whoever started it are not passed on (close_range(2), CLOSE_RANGE_CLOEXEC).
  ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
  use_every_descriptor(config);

  uv_loop_t* loop = uv_default_loop();
  int status;
  {
    Server server(loop, config);
    const bool started = !server.start();
    if (!started) server.stop();
    uv_run(loop, UV_RUN_DEFAULT);
    status = started ? server.exit_status() : 1;
    server.remove_socket_files();
  }
  if (config.pid_file) remove_pid_file_if_ours(*config.pid_file);
  uv_loop_close(loop);
  return status;
}
