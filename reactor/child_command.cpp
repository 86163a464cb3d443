#include "reactor/child_command.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "reactor/log.hpp"

extern char** environ;

namespace handoff::reactor {
namespace {

// The reactor's environment without the variables settings name, followed by settings.
std::vector<std::string> environment_with(const std::vector<std::string>& settings) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view variable(*entry);
    bool overridden = false;
    for (const std::string& setting : settings) {
      const std::string_view name = std::string_view(setting).substr(0, setting.find('=') + 1);
      overridden = overridden || variable.starts_with(name);
    }
    if (!overridden) result.emplace_back(variable);
  }
  result.insert(result.end(), settings.begin(), settings.end());
  return result;
}

// Pointers into strings, ending in a null pointer, as execve(2) takes them.
std::vector<char*> as_c_strings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

ChildCommand::ChildCommand(std::vector<std::string> argv, const std::vector<std::string>& settings,
                           const std::vector<int>& inherited)
    : arguments_(std::move(argv)),
      variables_(environment_with(settings)),
      c_arguments_(as_c_strings(arguments_)),
      c_variables_(as_c_strings(variables_)) {
  for (const int descriptor : inherited) {
    uv_stdio_container_t& entry = stdio_.emplace_back();
    entry.flags = descriptor < 0 ? UV_IGNORE : UV_INHERIT_FD;
    entry.data.fd = descriptor;
  }
}

uv_process_options_t ChildCommand::options(uv_exit_cb on_exit) {
  uv_process_options_t options{};
  options.file = c_arguments_[0];
  options.args = c_arguments_.data();
  options.env = c_variables_.data();
  options.stdio_count = static_cast<int>(stdio_.size());
  options.stdio = stdio_.data();
  options.exit_cb = on_exit;
  return options;
}

std::error_code open_channel_pair(ipc::UniqueFd& reactor_end, ipc::UniqueFd& child_end, const char* whose) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    const int error = errno;
    log_at(LogLevel::kError, "socketpair for %s channel: %s", whose, std::strerror(error));
    return {error, std::system_category()};
  }
  reactor_end = ipc::UniqueFd(ends[0]);
  child_end = ipc::UniqueFd(ends[1]);
  return {};
}

std::string how_it_ended(int64_t exit_status, int term_signal) {
  if (term_signal != 0)
    return "was killed by signal " + std::to_string(term_signal) + " (" + strsignal(term_signal) + ")";
  return "exited with status " + std::to_string(exit_status);
}

}  // namespace handoff::reactor
