#include "reactor/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "reactor/log.hpp"

namespace handoff::reactor {
namespace {

std::optional<unsigned> whole_number(const std::string& text) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::error_code failed(const char* call) {
  const int error = errno;
  log_at(LogLevel::kError, "dropping privileges: %s: %s", call, std::strerror(error));
  return {error, std::system_category()};
}

}  // namespace

std::string privilege_refusal(const Config& config, bool takes_over) {
  const bool root = ::geteuid() == 0;
  if (config.user && !root && !takes_over) {
    return "--user needs the reactor started as root, to drop to it after binding; it runs as uid " +
           std::to_string(::geteuid());
  }
  if (root && !config.user && !config.allow_root_handlers) {
    return "started as root, the reactor will not run handlers (users' code) as root: give --user NAME to "
           "drop to that user once the ports are bound, or --allow-root-handlers to run them as root anyway";
  }
  return "";
}

std::variant<Identity, std::string> resolve_identity(const std::string& user,
                                                     const std::optional<std::string>& group) {
  // getpwnam_r and getgrnam_r, not getpwnam: the buffer is ours (sysconf(3) _SC_GETPW_R_SIZE_MAX may be -1).
  std::vector<char> buffer(16384);
  passwd account{};
  passwd* found_account = nullptr;
  const std::optional<unsigned> uid = whole_number(user);
  if (uid) {
    ::getpwuid_r(*uid, &account, buffer.data(), buffer.size(), &found_account);
  } else {
    ::getpwnam_r(user.c_str(), &account, buffer.data(), buffer.size(), &found_account);
  }
  if (found_account == nullptr) return "--user '" + user + "': no such user";
  Identity identity{.uid = account.pw_uid, .gid = account.pw_gid, .user = account.pw_name, .group = ""};

  std::vector<char> group_buffer(16384);
  struct group entry {};
  struct group* found_group = nullptr;
  if (group) {
    if (const std::optional<unsigned> gid = whole_number(*group)) {
      ::getgrgid_r(*gid, &entry, group_buffer.data(), group_buffer.size(), &found_group);
    } else {
      ::getgrnam_r(group->c_str(), &entry, group_buffer.data(), group_buffer.size(), &found_group);
    }
    if (found_group == nullptr) return "--group '" + *group + "': no such group";
  } else {
    ::getgrgid_r(identity.gid, &entry, group_buffer.data(), group_buffer.size(), &found_group);
  }
  if (found_group != nullptr) {
    identity.gid = found_group->gr_gid;
    identity.group = found_group->gr_name;
  } else {
    identity.group = std::to_string(identity.gid);
  }
  return identity;
}

std::error_code drop_privileges(const Identity& identity) {
  if (::setgroups(0, nullptr) != 0) return failed("setgroups");
  if (::setgid(identity.gid) != 0) return failed("setgid");
  if (::setuid(identity.uid) != 0) return failed("setuid");
  if (identity.uid != 0 && ::setuid(0) == 0) {
    errno = EPERM;
    return failed("setuid(0) succeeded after the drop");
  }
  log_at(LogLevel::kInfo, "running as user %s (uid %u), group %s (gid %u)", identity.user.c_str(),
         static_cast<unsigned>(identity.uid), identity.group.c_str(), static_cast<unsigned>(identity.gid));
  return {};
}

}  // namespace handoff::reactor
