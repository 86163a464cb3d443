// reactor: the front process of handoff. Options -> config -> server -> event loop.

#include <linux/close_range.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <climits>
#include <cstdio>
#include <string>
#include <variant>

#include "reactor/config.hpp"
#include "reactor/server.hpp"

namespace {

// The handler built beside this reactor: build/handler/handler next to build/reactor/reactor.
std::string default_handler_command() {
  char path[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) return "handler";
  const std::string self(path, length);
  const std::string folder = self.substr(0, self.rfind('/'));
  return folder.substr(0, folder.rfind('/')) + "/handler/handler";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace handoff::reactor;

  const std::variant<Config, EarlyExit> parsed = parse_command_line(argc, argv, default_handler_command());
  if (const auto* early = std::get_if<EarlyExit>(&parsed)) {
    std::fputs(early->text.c_str(), early->status == 0 ? stdout : stderr);
    return early->status;
  }
  const Config& config = std::get<Config>(parsed);
  configure_log(config.log_level, config.log_format);
  // Writes to vanished clients must fail with EPIPE, not kill the reactor.
  signal(SIGPIPE, SIG_IGN);
  // Handlers get stdin, stdout, stderr and their channel, nothing else: descriptors this process inherited
  // from whoever started it are not passed on (close_range(2), CLOSE_RANGE_CLOEXEC).
  ::close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
  // Every idle connection costs a descriptor: use as many as the hard limit allows.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  uv_loop_t* loop = uv_default_loop();
  int status;
  {
    Server server(loop, config);
    const bool started = !server.start();
    if (!started) server.stop();
    uv_run(loop, UV_RUN_DEFAULT);
    status = started ? server.exit_status() : 1;
  }
  uv_loop_close(loop);
  return status;
}
