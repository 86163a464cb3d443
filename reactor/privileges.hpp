#pragma once

// Internal to the reactor. Least privilege: who the reactor and its handlers run as. Started as root, the
// reactor binds its ports as root, then drops to --user (and --group) for good, supplementary groups
// cleared, before it starts any handler, so that handlers, which run users' code, never run as root unless
// the operator says so (--allow-root-handlers).

#include <sys/types.h>

#include <optional>
#include <string>
#include <system_error>
#include <variant>

#include "reactor/config.hpp"

namespace handoff::reactor {

struct Identity {
  uid_t uid;
  gid_t gid;
  std::string user;
  std::string group;
};

// Why the reactor must not start with config as the user it runs as now, or "" when it may: as root with
// neither --user nor --allow-root-handlers, or with --user without being root. A takeover's successor runs
// as the reactor it takes over from, which dropped to --user already: it may have --user without root.
std::string privilege_refusal(const Config& config, bool takes_over);

// Looks up --user and --group (a name or a number each); the error names the one that does not exist.
std::variant<Identity, std::string> resolve_identity(const std::string& user,
                                                     const std::optional<std::string>& group);

// setgroups(0), setgid, setuid, in that order (once the uid changed, groups can no longer be changed), then
// checks that root cannot be regained. The failed call is logged.
std::error_code drop_privileges(const Identity& identity);

}  // namespace handoff::reactor
