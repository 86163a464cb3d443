#pragma once

// The reactor's configuration, and how its values are read from text (reactor/command_line.hpp reads the
// command line with them).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reactor/address_range.hpp"
#include "reactor/log.hpp"

namespace handoff::reactor {

// Where the reactor listens, or where a peer is: a TCP address, or a Unix socket's path.
struct ListenAddress {
  std::string host;  // An IPv4 or IPv6 literal, without brackets.
  uint16_t port = 0;
  std::string path;  // A Unix socket's path: set for "unix:PATH" (host and port are unused then).
  // The permissions a Unix socket the reactor binds is given: anyone may connect (as nginx does), unless
  // "unix:PATH,mode=0660" says otherwise. The folder's permissions apply too.
  unsigned mode = kDefaultUnixSocketMode;
  static constexpr unsigned kDefaultUnixSocketMode = 0666;

  bool is_unix() const { return !path.empty(); }
  // HOST:PORT, with brackets around an IPv6 host; unix:PATH.
  std::string to_string() const;
  bool operator==(const ListenAddress&) const = default;
};

using Milliseconds = std::chrono::milliseconds;
using Microseconds = std::chrono::microseconds;

inline constexpr unsigned kMaxHandlers = 1024;  // The largest --max-handlers.
// Requests a busy handler may hold sent ahead: --send-ahead on, and the most it takes (one less than
// ipc::kOfferSlots).
inline constexpr unsigned kDefaultSendAhead = 4;
inline constexpr unsigned kMaxSendAhead = 7;

struct Config {
  // --listen, each address once, in the order given: the same requests are served on all.
  std::vector<ListenAddress> listen{ListenAddress{.host = "127.0.0.1", .port = 8888}};
  bool listen_given = false;  // --listen was on the command line (a socket passed by systemd conflicts).
  bool reuse_port = false;    // --reuse-port: the port may be shared with other reactors (SO_REUSEPORT).
  // --proxy-protocol-from: the peers (balancers) whose connections begin with a PROXY protocol header
  // naming the client; anyone else's may not (reactor/proxy_header.hpp). Empty: none.
  std::vector<AddressRange> proxy_protocol_from;
  // --max-queue-per-client: the most requests of one client (by address) that may wait; 0: no limit but
  // --max-queue.
  size_t max_queue_per_client = 0;
  // --retry-crashed: a request whose handler died before any answer began runs once more on another handler,
  // if it may run twice (Frontend::may_run_again).
  bool retry_crashed = true;
  // How this reactor was started: its executable's path as it was then and its arguments. A takeover
  // (SIGUSR2) starts the successor with it, so that the binary now at that path goes live.
  std::vector<std::string> own_command;
  unsigned handlers = 1;
  unsigned max_handlers = 64;                // The largest pool, at start, by POST /pool or SIGTTIN.
  std::vector<std::string> handler_command;  // argv of every handler; [0] is the executable's path.
  size_t max_head_bytes = 64 * 1024;
  size_t max_request_bytes = 2 * 1024 * 1024;
  size_t max_buffered_bytes = 64 * 1024 * 1024;  // Of unfinished requests, in all (ReadBudget).
  // After an answer, while no request waits and another handler is idle, a handler waits this long on the
  // connection for its next request (handler/linger.hpp); 0: every connection goes back to the reactor at
  // once.
  Microseconds linger{1000};
  // Handlers are SCHED_BATCH (--handler-sched), so that the loop, the admin port and new connections get the
  // CPU first when they wake, even while every handler computes; and this much nicer than the reactor
  // (setpriority(2)).
  bool handler_batch = true;
  // Handlers put an exception's text in the 500 they answer (HANDOFF_EXPOSE_ERRORS=1): development only.
  bool expose_errors = false;
  // --handler-cmd is started once as a template that loads the app, and handlers are forked from it
  // (reactor/handler_template.hpp).
  bool preload = false;
  // A busy handler that takes connections ahead (the C++ library does) is sent up to this many of the next
  // waiting requests before it reports (--send-ahead), so that it goes on without waiting for the reactor;
  // a handler that comes free first takes them instead. 0: none.
  unsigned send_ahead = kDefaultSendAhead;
  int handler_nice = 0;

  // Failure handling: docs/operations.md says what a client sees when each one strikes.
  Milliseconds request_timeout{30000};        // A handler busy longer with one hand-off is killed.
  size_t max_queue = 1024;                    // Connections waiting for a handler; one more gets "ERR busy".
  Milliseconds queue_timeout{30000};          // A connection waiting longer gets "ERR busy".
  uint64_t max_requests = 0;                  // A handler retires after this many requests; 0: never.
  uint64_t max_requests_jitter = 0;           // Each handler's limit is raised by a random 0..jitter.
  Milliseconds read_timeout{10000};           // A started request must be complete within this.
  Milliseconds write_timeout{5000};           // A handler gives up on a client that takes none of an answer
                                              // this long.
  Milliseconds idle_timeout{60000};           // A connection with no request for this long is closed.
  Milliseconds handler_start_timeout{10000};  // A handler without hello this long after its start is killed.
  Milliseconds shutdown_timeout{30000};       // On SIGTERM, work still running after this is cut off.
  // --cancel and --cancel-grace: the handler of a running request whose client left is told at once
  // (Request::cancelled()) and, with cancel, killed and replaced if still at it cancel_grace later (0: at
  // once, once the request has run Frontend::kCancelAfter); without, the request runs to its end.
  bool cancel = true;
  Milliseconds cancel_grace{1000};

  // Bounded resources: docs/operations.md, "Limits and sizing".
  // Client connections open at once. 0 on the command line: derived from the descriptor limit at start
  // (reactor/main.cpp); 0 here: no cap.
  size_t max_connections = 0;
  size_t handler_max_rss = 0;  // A handler resident above this is recycled after its request; 0: no limit.

  // Least privilege: docs/operations.md, "Security".
  std::optional<std::string>
      user;  // Started as root, the reactor drops to this user once its ports are bound.
  std::optional<std::string> group;  // With user: this group instead of the user's own.
  bool allow_root_handlers = false;  // Started as root without --user, handlers may run as root.
  std::string admin_token;  // From --admin-token-file: POST on the admin port needs it as a Bearer token.

  // Operations: docs/operations.md.
  std::optional<ListenAddress> admin =
      ListenAddress{.host = "127.0.0.1", .port = 8889};  // nullopt: --admin off.
  std::optional<std::string> pid_file;                   // --pid-file: reactor/pid_file.hpp.
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
  bool access_log = false;
};

// A size such as 65536, 64k, 2m or 1g; nullopt when malformed or too large.
std::optional<size_t> parse_size(std::string_view text);
// A whole number, digits only; nullopt when malformed or too large.
std::optional<size_t> parse_count(std::string_view text);

// "127.0.0.1:8888", "[::1]:0", "localhost:80"; nullopt when malformed. The host must be an IP literal or
// "localhost" (which means 127.0.0.1).
std::optional<ListenAddress> parse_listen_address(std::string_view text);
// --listen's forms: HOST:PORT as parse_listen_address reads it, or "unix:PATH" with an optional
// ",mode=OCTAL" (at most 0777); PATH absolute, at most 107 bytes (sockaddr_un). Else error says why.
std::optional<ListenAddress> parse_listen_target(std::string_view text, std::string& error);

// "30s", "250ms", "2m", or a bare number of seconds; nullopt when malformed.
std::optional<Milliseconds> parse_duration(std::string_view text);
// "250us", "2ms", "1s"; a bare number is seconds, as for every TIME option.
std::optional<Microseconds> parse_short_duration(std::string_view text);

// Splits a command line into words as a POSIX shell would for plain words, 'single' and "double" quotes and
// backslash escapes (no expansions). nullopt for an unterminated quote.
std::optional<std::vector<std::string>> split_command(std::string_view text);
// The other way: words as one line that split_command splits back into them, quoted only where they must be.
std::string command_text(const std::vector<std::string>& words);

}  // namespace handoff::reactor
