#pragma once

// Internal to the reactor. The command line: one table of options (reactor/command_line.cpp) gives --help and
// reads each option into the Config.

#include <string>
#include <variant>

#include "reactor/config.hpp"

namespace handoff::reactor {

// What main should do instead of running: print text (to stdout for --help/--version, else stderr) and exit.
struct EarlyExit {
  int status;
  std::string text;
};

// Parses argv. default_handler is the handler command used when --handler-cmd is not given. An option given
// twice or given a wrong value is an EarlyExit with status 2 that names it (the first wrong one in --help's
// order; --handlers, --max-buffered-bytes and --group after the rest, as they are checked against them).
std::variant<Config, EarlyExit> parse_command_line(int argc, const char* const* argv,
                                                   const std::string& default_handler);

}  // namespace handoff::reactor
