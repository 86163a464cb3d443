#pragma once

// The reactor's configuration, and how it is read from the command line.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace handoff::reactor {

struct ListenAddress {
  std::string host;  // An IPv4 or IPv6 literal, without brackets.
  uint16_t port = 0;

  // HOST:PORT, with brackets around an IPv6 host.
  std::string to_string() const;
};

struct Config {
  ListenAddress listen{"127.0.0.1", 8888};
  unsigned handlers = 1;
  std::vector<std::string> handler_command;  // argv of every handler; [0] is the executable's path.
  size_t max_head_bytes = 64 * 1024;
  size_t max_request_bytes = 2 * 1024 * 1024;
};

// What main should do instead of running: print text (to stdout for --help/--version, else stderr) and exit.
struct EarlyExit {
  int status;
  std::string text;
};

// Parses argv. default_handler is the handler command used when --handler-cmd is not given.
std::variant<Config, EarlyExit> parse_command_line(int argc, const char* const* argv,
                                                   const std::string& default_handler);

// "127.0.0.1:8888", "[::1]:0", "localhost:80"; nullopt when malformed. The host must be an IP literal or
// "localhost" (which means 127.0.0.1).
std::optional<ListenAddress> parse_listen_address(std::string_view text);

// Splits a command line into words as a POSIX shell would for plain words, 'single' and "double" quotes and
// backslash escapes (no expansions). nullopt for an unterminated quote.
std::optional<std::vector<std::string>> split_command(std::string_view text);

}  // namespace handoff::reactor
