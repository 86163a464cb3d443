#include "reactor/pid_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

#include "ipc/unique_fd.hpp"

namespace handoff::reactor {
namespace {

std::error_code last_error() {
  return {errno, std::system_category()};
}

// Beside the file, so that the rename stays within one file system.
std::string temporary_path(const std::string& path) {
  return path + "." + std::to_string(::getpid()) + ".tmp";
}

}  // namespace

std::error_code check_pid_file(const std::string& path) {
  const std::string temporary = temporary_path(path);
  const ipc::UniqueFd file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!file) return last_error();
  ::unlink(temporary.c_str());
  return {};
}

std::error_code write_pid_file(const std::string& path) {
  const std::string temporary = temporary_path(path);
  const std::string text = std::to_string(::getpid()) + "\n";
  {
    const ipc::UniqueFd file(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file) return last_error();
    if (::write(file.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      const std::error_code error = errno != 0 ? last_error() : std::make_error_code(std::errc::io_error);
      ::unlink(temporary.c_str());
      return error;
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::error_code error = last_error();
    ::unlink(temporary.c_str());
    return error;
  }
  return {};
}

void remove_pid_file_if_ours(const std::string& path) {
  std::ifstream file(path);
  const std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  if (text == std::to_string(::getpid()) + "\n") ::unlink(path.c_str());
}

}  // namespace handoff::reactor
