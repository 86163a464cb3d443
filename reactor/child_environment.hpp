#pragma once

// Internal to the reactor. The argument and environment vectors of the processes it starts: its handlers
// and, at a takeover, its successor.

#include <string>
#include <vector>

namespace handoff::reactor {

// The reactor's environment without the variables settings name ("NAME=value"), followed by settings.
std::vector<std::string> environment_with(const std::vector<std::string>& settings);

// Pointers into strings, ending in a null pointer, as execve(2) and uv_spawn take them; valid while strings
// is unchanged.
std::vector<char*> as_c_strings(std::vector<std::string>& strings);

}  // namespace handoff::reactor
