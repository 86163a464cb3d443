#include "reactor/command_line.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cxxopts.hpp>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include "ipc/wire.hpp"
#include "reactor/version.hpp"

namespace handoff::reactor {
namespace {

constexpr size_t kMinHeadBytes = 16;
constexpr size_t kMaxHeadBytes = 1 << 20;
constexpr size_t kMaxRequestBytesLimit = size_t{1} << 30;

EarlyExit usage_error(const std::string& what) {
  return {2, "handoff: " + what + "\n(see handoff --help)\n"};
}

// What the command line says of one option: its text, given or its default (none for a flag, or for an option
// with no default that is not given), and whether it was given.
struct OptionText {
  std::optional<std::string> text;
  bool given = false;
  std::vector<std::string> every;  // A repeatable option: each value given, in order (text is the last).
};

// Reads an option into the configuration: nothing, or what is wrong (printed after "handoff: ").
using Store = std::function<std::optional<std::string>(Config& config, const std::string& name,
                                                       const OptionText& option)>;

// One option of the command line: how --help shows it and how it is read.
struct OptionRow {
  std::string group;         // Its section of --help: "" (the first), "Failures", "Operations", ...
  std::string names;         // As cxxopts takes them: "listen", or "h,help" with a short name.
  std::string value_name;    // As --help shows the value: "HOST:PORT"; empty for a flag, which takes none.
  std::string help;          // Its line of --help.
  std::string default_text;  // Shown by --help, and read when the option is not given; empty: none.
  Store store;               // Empty for --help and --version, answered before anything is read.
  // Read once every other option is: it is checked against them (--handlers against --max-handlers).
  bool after_others = false;
  bool repeatable = false;  // It may be given several times (OptionText::every); else twice is an error.
};

std::string must_be(const std::string& name, const std::string& text, const std::string& expected) {
  return "--" + name + " '" + text + "' must be " + expected;
}

// A value parse reads, within [min, max], kept in member; "--NAME 'TEXT' must be EXPECTED" otherwise.
template <typename Member, typename Value>
Store within(Member Config::*member, std::optional<Value> (*parse)(std::string_view), Value min, Value max,
             std::string expected) {
  return
      [=](Config& config, const std::string& name, const OptionText& option) -> std::optional<std::string> {
        if (!option.text) return std::nullopt;
        const std::optional<Value> value = parse(*option.text);
        if (!value || *value < min || *value > max) return must_be(name, *option.text, expected);
        config.*member = static_cast<Member>(*value);
        return std::nullopt;
      };
}

// One of a few words, each meaning a value kept in member; "--NAME 'TEXT' must be EXPECTED" otherwise.
template <typename Member>
Store one_of(Member Config::*member, std::vector<std::pair<std::string, Member>> words,
             std::string expected) {
  return
      [=](Config& config, const std::string& name, const OptionText& option) -> std::optional<std::string> {
        const auto found =
            std::find_if(words.begin(), words.end(), [&](const auto& w) { return w.first == option.text; });
        if (found == words.end()) return must_be(name, option.text.value_or(""), expected);
        config.*member = found->second;
        return std::nullopt;
      };
}

Store flag(bool Config::*member) {
  return [=](Config& config, const std::string&, const OptionText& option) -> std::optional<std::string> {
    config.*member = option.given;
    return std::nullopt;
  };
}

// --send-ahead: on, off or a number.
std::optional<size_t> parse_send_ahead(std::string_view text) {
  if (text == "on") return kDefaultSendAhead;
  if (text == "off") return 0;
  return parse_count(text);
}

std::optional<std::string> store_listen(Config& config, const std::string&, const OptionText& option) {
  if (!option.given) return std::nullopt;  // The default of Config.
  config.listen.clear();
  for (const std::string& text : option.every) {
    std::string error;
    const std::optional<ListenAddress> address = parse_listen_target(text, error);
    if (!address) return "--listen '" + text + "' " + error;
    // Port 0 twice is two sockets, each on a free port of its own.
    const auto same = [&](const ListenAddress& other) {
      return address->is_unix()
                 ? other.path == address->path
                 : address->port != 0 && other.host == address->host && other.port == address->port;
    };
    if (std::find_if(config.listen.begin(), config.listen.end(), same) != config.listen.end())
      return "--listen '" + text + "' is given twice";
    config.listen.push_back(*address);
  }
  config.listen_given = true;
  return std::nullopt;
}

std::optional<std::string> store_proxy_protocol_from(Config& config, const std::string&,
                                                     const OptionText& option) {
  if (!option.text) return std::nullopt;
  std::string error;
  std::optional<std::vector<AddressRange>> ranges = parse_address_ranges(*option.text, error);
  if (!ranges) return "--proxy-protocol-from: " + error;
  config.proxy_protocol_from = std::move(*ranges);
  return std::nullopt;
}

std::optional<std::string> store_admin(Config& config, const std::string&, const OptionText& option) {
  if (*option.text == "off") {
    config.admin.reset();
  } else if (!(config.admin = parse_listen_address(*option.text))) {
    return "--admin '" + *option.text + "' is not HOST:PORT with an IP address, or off";
  }
  return std::nullopt;
}

// --handler-cmd, or default_handler when it is not given.
Store handler_command(const std::string& default_handler) {
  return [&default_handler](Config& config, const std::string&,
                            const OptionText& option) -> std::optional<std::string> {
    const std::string command = option.text.value_or(default_handler);
    std::optional<std::vector<std::string>> words = split_command(command);
    if (!words) return "--handler-cmd has an unterminated quote: " + command;
    if (words->empty()) return "--handler-cmd is empty";
    config.handler_command = std::move(*words);
    return std::nullopt;
  };
}

// --wsgi MODULE:APP: the handler command that serves a Python WSGI app, unless --handler-cmd names one.
Store store_wsgi(const std::string& default_handler) {
  return [&default_handler](Config& config, const std::string&,
                            const OptionText& option) -> std::optional<std::string> {
    if (!option.text) return std::nullopt;
    if (config.handler_command != split_command(default_handler))
      return "--wsgi and --handler-cmd both name the handler command: give one";
    if (option.text->empty() || option.text->find_first_of(" \t'\"") != std::string::npos)
      return "--wsgi takes MODULE:APP (as gunicorn does), not '" + *option.text + "'";
    config.handler_command = {"python3", "-m", "handoff_handler.wsgi", *option.text};
    return std::nullopt;
  };
}

// --handlers, within --max-handlers; one per core (as many as --max-handlers allows) when not given.
std::optional<std::string> store_handlers(Config& config, const std::string& name, const OptionText& option) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (!option.text) {
    config.handlers = std::min(cores, config.max_handlers);
    return std::nullopt;
  }
  const std::optional<size_t> handlers = parse_count(*option.text);
  if (!handlers || *handlers < 1 || *handlers > config.max_handlers) {
    return must_be(name, *option.text,
                   "a whole number from 1 to --max-handlers (" + std::to_string(config.max_handlers) + ")");
  }
  config.handlers = static_cast<unsigned>(*handlers);
  return std::nullopt;
}

// --max-buffered-bytes, which one request alone must fit, or it could never be read whole: raised to that
// when not given.
std::optional<std::string> store_max_buffered_bytes(Config& config, const std::string& name,
                                                    const OptionText& option) {
  static const Store read =
      within(&Config::max_buffered_bytes, parse_size, size_t{1}, size_t{1} << 40, "a size from 1 to 1024g");
  if (std::optional<std::string> error = read(config, name, option)) return error;
  const size_t largest_request = config.max_head_bytes + config.max_request_bytes + 2;
  if (config.max_buffered_bytes >= largest_request) return std::nullopt;
  if (option.given) {
    return "--max-buffered-bytes must be at least the largest request the reactor reads (" +
           std::to_string(largest_request) + " bytes with these limits)";
  }
  config.max_buffered_bytes = largest_request;
  return std::nullopt;
}

std::optional<std::string> store_pid_file(Config& config, const std::string&, const OptionText& option) {
  if (!option.text) return std::nullopt;
  if (option.text->empty()) return "--pid-file needs a path";
  config.pid_file = *option.text;
  return std::nullopt;
}

std::optional<std::string> store_user(Config& config, const std::string&, const OptionText& option) {
  if (option.text) config.user = *option.text;
  return std::nullopt;
}

std::optional<std::string> store_group(Config& config, const std::string&, const OptionText& option) {
  if (!option.text) return std::nullopt;
  if (!config.user) return "--group needs --user";
  config.group = *option.text;
  return std::nullopt;
}

// The token is the file's first line. A header's value loses the blanks around it in the parser (and a CRLF
// file leaves a CR), so the token does too; a control character left inside could never arrive in a header:
// refused, not kept to fail every request.
std::optional<std::string> store_admin_token(Config& config, const std::string&, const OptionText& option) {
  if (!option.text) return std::nullopt;
  const std::string& path = *option.text;
  std::ifstream file(path);
  if (!file) return "--admin-token-file '" + path + "' cannot be read";
  std::string line;
  std::getline(file, line);
  const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  const auto first = std::find_if_not(line.begin(), line.end(), blank);
  const auto last = std::find_if_not(line.rbegin(), line.rend(), blank).base();
  config.admin_token = first < last ? std::string(first, last) : std::string();
  const auto control = std::find_if(config.admin_token.begin(), config.admin_token.end(),
                                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (control != config.admin_token.end()) {
    char code[8];
    std::snprintf(code, sizeof(code), "0x%02x", static_cast<unsigned char>(*control));
    return "--admin-token-file '" + path + "': its token holds a control character (" + code +
           ", character " + std::to_string(control - config.admin_token.begin() + 1) +
           "), which no Authorization header can carry";
  }
  if (config.admin_token.size() < 16) {
    return "--admin-token-file '" + path + "': its first line must be a token of 16 or more characters";
  }
  return std::nullopt;
}

constexpr const char* kSummary =
    "handoff reactor: accepts connections on one event loop and hands each ready request,\n"
    "socket and all, to a pool of pre-spawned handler processes that compute the answer.\n"
    "Sizes take k/m/g suffixes; durations take ms/s/m (a bare number is seconds).\n"
    "Signals: SIGTERM/SIGINT finish work and exit (again, 250 ms or more later: at once);\n"
    "SIGHUP replaces every handler with a fresh process of --handler-cmd, without failing a\n"
    "request (a reload whose new handlers do not start is abandoned). SIGUSR2 replaces the\n"
    "reactor itself: the binary now at its path starts, takes over the listening sockets and\n"
    "every connection, and this one exits (an upgrade that fails to start is abandoned).\n"
    "Under systemd (handoff.service), the service socket may be passed by socket activation\n"
    "(handoff.socket); --listen is then not given.\n";

// Every option, in the order --help shows them. The defaults of --handlers and --handler-cmd depend on the
// machine and on where the reactor is installed: the help names them by what they are, never by their value
// here, since the man page is made from it on the build machine (reactor/meson.build).
std::vector<OptionRow> option_table(const std::string& default_handler) {
  const Milliseconds ms(1), day(24 * 3600 * 1000);
  const std::string a_duration = "a duration from 1ms to 24h";
  const auto duration = [&](Milliseconds Config::*member) {
    return within(member, parse_duration, ms, day, a_duration);
  };
  const Config defaults;
  // clang-format off
  return {
    {"", "listen", "ADDRESS", "address to listen on: HOST:PORT (IPv6 as [::1]:8888; port 0 picks a free port), "
     "or unix:PATH for a Unix socket (unix:PATH,mode=0660 sets its permissions; default 0666). Give it "
     "several times to listen on several addresses. Prints 'listening on ADDRESS' for each once ready",
     defaults.listen.front().to_string(), store_listen, false, true},
    {"", "proxy-protocol-from", "CIDR,...", "the balancers (addresses, networks, or 'unix' for Unix sockets) "
     "whose connections begin with a PROXY protocol header, v1 or v2, naming the client: that client is the one "
     "handlers and the access log see. Their connections without one, and anyone else's with one, are refused", "", store_proxy_protocol_from},
    {"", "reuse-port", "", "several reactors may listen on the same port of one host: the kernel spreads new "
     "connections among them (SO_REUSEPORT)", "", flag(&Config::reuse_port)},
    {"", "handlers", "N", "number of handler processes (default: one per core, at most --max-handlers)", "",
     store_handlers, true},
    {"", "max-handlers", "N", "the largest pool that --handlers, POST /pool or SIGTTIN may ask for (at most "
     "1024)", "64", within(&Config::max_handlers, parse_count, size_t{1}, size_t{kMaxHandlers},
                  "a whole number from 1 to 1024")},
    {"", "linger", "TIME", "after an answer, while no request waits and another handler is idle, the handler "
     "waits this long on the keep-alive connection and serves its next request itself, with no hand-off; a "
     "request that comes to wait takes the handler back at once (at most half --request-timeout). 0: every "
     "connection goes back to the reactor at once", "1ms",
     within(&Config::linger, parse_short_duration, Microseconds(0), Microseconds(1'000'000),
            "a duration from 0 to 1s (250us, 2ms)")},
    {"", "handler-sched", "batch|normal", "batch: handlers run as SCHED_BATCH (sched(7)), so that the "
     "reactor gets the CPU sooner when it wakes, at no cost to their share of it; normal: as the reactor",
     "batch",
     one_of(&Config::handler_batch, {{"batch", true}, {"normal", false}}, "batch or normal")},
    {"", "send-ahead", "on|off|N", "N: a busy handler is sent up to N of the next waiting requests before it "
     "reports, and goes on with them at once (a handler that comes free first takes them instead); on: " +
     std::to_string(kDefaultSendAhead) + "; off or 0: only idle handlers get requests", "on",
     within(&Config::send_ahead, parse_send_ahead, size_t{0}, size_t{kMaxSendAhead},
            "on, off or a number of requests from 0 to " + std::to_string(kMaxSendAhead))},
    {"", "handler-nice", "N", "handlers run this much nicer than the reactor, 0 to 19: a smaller share of "
     "the CPU when other programs compete for it too", "0",
     within(&Config::handler_nice, parse_count, size_t{0}, size_t{19}, "a whole number from 0 to 19")},
    {"", "expose-errors", "", "handlers put the text of an exception in user code into the 500 (or 'ERR "
     "internal error: ...') the client gets; for development only: such text carries paths, SQL and keys. "
     "Without it the client gets 'internal error', and the handler's log has the whole story", "",
     flag(&Config::expose_errors)},
    {"", "handler-cmd", "'PATH ARGS...'", "handler command line (split like a shell, no expansions); the "
     "handler gets its channel at descriptor 3 (HANDOFF_IPC_FD=3). Default: handoff-handler beside the "
     "reactor, in the folder of its own executable (in a build tree, ../handler/handoff-handler from that "
     "folder)", "", handler_command(default_handler)},
    {"", "wsgi", "MODULE:APP", "serve a Python WSGI app (Flask, Falcon, Bottle, Django...): the handler command "
     "becomes 'python3 -m handoff_handler.wsgi MODULE:APP', with the module handoff_handler where python3 finds "
     "it (installed, or on PYTHONPATH)", "", store_wsgi(default_handler), true},
    {"", "preload", "", "start --handler-cmd once, as a template that loads the app, and fork every handler "
     "from it: a handler replaced after a crash, a cancelled request, --max-requests or a resize serves "
     "within milliseconds, and shares the app's memory copy-on-write. SIGHUP starts a new template, with "
     "the new code. The handler's library must support it (the Python module does)", "",
     flag(&Config::preload)},
    {"", "max-head-bytes", "BYTES", "longest HTTP request head; longer gets 431", "64k",
     within(&Config::max_head_bytes, parse_size, kMinHeadBytes, kMaxHeadBytes, "a size from 16 to 1m")},
    {"", "max-request-bytes", "BYTES", "longest request line or HTTP body; longer gets 'ERR request too "
     "large' or 413. The reactor reads each whole request before a handler gets it", "2m",
     within(&Config::max_request_bytes, parse_size, size_t{1}, kMaxRequestBytesLimit, "a size from 1 to 1g")},
    {"", "max-buffered-bytes", "BYTES", "bytes of unfinished requests the reactor holds in all; beyond it, "
     "it stops reading until handlers take requests (at least the largest request). An eighth is kept for "
     "requests under 16k, and under pressure an upload silent for 1s gives way", "64m",
     store_max_buffered_bytes, true},
    {"", "max-connections", "N", "client connections open at once; more wait in the listen backlog until one "
     "closes. 0 derives it from the descriptor limit", "0",
     within(&Config::max_connections, parse_count, size_t{0}, size_t{1} << 24,
            "a whole number from 0 to 16777216")},
    {"", "handler-max-rss", "SIZE", "a handler whose resident memory grows past this is replaced after the "
     "request it serves (0: no limit)", "0",
     within(&Config::handler_max_rss, parse_size, size_t{0}, SIZE_MAX / 4, "a size (0 for no limit)")},

    {"Failures", "request-timeout", "TIME", "a handler still busy with a request after this is killed; the "
     "client gets 'ERR timeout'", "30s", duration(&Config::request_timeout)},
    {"Failures", "cancel", "on|off", "on: a handler still computing a request whose client left (over HTTP "
     "it closed, on either protocol it reset) is killed and replaced once --cancel-grace has passed; off: the "
     "request runs to its end (within --request-timeout), its answer going nowhere. Either way the handler's "
     "code is told (request.cancelled()) and may stop early", "on",
     one_of(&Config::cancel, {{"on", true}, {"off", false}}, "on or off")},
    {"Failures", "cancel-grace", "TIME", "how long a handler whose client left may take to end the request "
     "itself before it is killed: long enough for code that checks request.cancelled() to stop, and for most "
     "requests to finish, which costs less than starting a handler again (seconds, for a Python app that "
     "imports much). 0: at once", "1s",
     within(&Config::cancel_grace, parse_duration, Milliseconds(0), day, "a duration from 0 to 24h")},
    {"Failures", "max-queue", "N", "requests that may wait for a handler; one more gets 'ERR busy'", "1024",
     within(&Config::max_queue, parse_count, size_t{0}, size_t{1} << 24,
            "a whole number from 0 to 16777216")},
    {"Failures", "max-queue-per-client", "N", "requests of one client (by address: the one its balancer's PROXY "
     "header names, with --proxy-protocol-from) that may wait; one more gets 'ERR busy' at once while the "
     "others' still wait. 0: only --max-queue bounds it. Waiting clients are served in turn either way", "0",
     within(&Config::max_queue_per_client, parse_count, size_t{0}, size_t{1} << 24,
            "a whole number from 0 to 16777216")},
    {"Failures", "retry-crashed", "on|off", "a request whose handler died before any byte of an answer runs once "
     "more on another handler, if it may run twice: HTTP GET, HEAD, OPTIONS, and line commands the handler marks "
     "retryable. The client gets one answer", "on", one_of(&Config::retry_crashed, {{"on", true}, {"off", false}}, "on or off")},
    {"Failures", "queue-timeout", "TIME", "a request that waited this long for a handler gets 'ERR busy'",
     "30s", duration(&Config::queue_timeout)},
    {"Failures", "max-requests", "N", "a handler retires after this many requests (0: never)", "0",
     within(&Config::max_requests, parse_count, size_t{0}, SIZE_MAX / 4, "a whole number")},
    {"Failures", "max-requests-jitter", "N", "each handler's --max-requests is raised by a random 0..N, so "
     "they do not all retire at once", "0",
     within(&Config::max_requests_jitter, parse_count, size_t{0}, SIZE_MAX / 4, "a whole number")},
    {"Failures", "read-timeout", "TIME", "a client must send a whole request within this; else 'ERR read "
     "timeout'", "10s", duration(&Config::read_timeout)},
    {"Failures", "write-timeout", "TIME", "a handler gives up on a client that takes none of an answer for "
     "this long (the clock starts over whenever some bytes go out), and closes the connection", "5s",
     duration(&Config::write_timeout)},
    {"Failures", "idle-timeout", "TIME", "a connection with no request for this long is closed", "60s",
     duration(&Config::idle_timeout)},
    {"Failures", "handler-start-timeout", "TIME", "a handler that has not said hello this long after its "
     "start is killed; a reload whose new handlers do not is abandoned", "10s",
     duration(&Config::handler_start_timeout)},
    {"Failures", "shutdown-timeout", "TIME", "on SIGTERM/SIGINT, requests still running after this are cut "
     "off", "30s", duration(&Config::shutdown_timeout)},

    {"Operations", "admin", "HOST:PORT|off", "admin HTTP port: /healthz, /stats, /metrics, status page at /, "
     "POST /pool?size=N, POST /drain (out of a balancer's rotation); 'off' to disable. Port 0 picks a free "
     "port and prints 'admin listening on HOST:PORT'", defaults.admin->to_string(), store_admin},
    {"Operations", "pid-file", "PATH", "write the reactor's pid to PATH once it is ready; the reactor that "
     "takes over at SIGUSR2 writes its own, and the file is removed at exit. Its folder must let the reactor "
     "(after --user) create files", "", store_pid_file},
    {"Operations", "log-level", "LEVEL", "error, warn, info or debug", "info",
     one_of(&Config::log_level, {{"error", LogLevel::kError}, {"warn", LogLevel::kWarn},
                                 {"info", LogLevel::kInfo}, {"debug", LogLevel::kDebug}},
            "error, warn, info or debug")},
    {"Operations", "log-format", "FORMAT", "text or json, on stderr", "text",
     one_of(&Config::log_format, {{"text", LogFormat::kText}, {"json", LogFormat::kJson}}, "text or json")},
    {"Operations", "access-log", "on|off", "a log line per request: on or off", "off",
     one_of(&Config::access_log, {{"on", true}, {"off", false}}, "on or off")},

    {"Security", "user", "NAME", "started as root: the user the reactor and its handlers run as once the "
     "ports are bound (supplementary groups cleared)", "", store_user},
    {"Security", "group", "NAME", "with --user: the group to run as, instead of the user's own", "",
     store_group, true},
    {"Security", "allow-root-handlers", "", "started as root without --user, run the handlers as root too "
     "(otherwise the reactor refuses to start)", "", flag(&Config::allow_root_handlers)},
    {"Security", "admin-token-file", "PATH", "POST requests to the admin port must carry 'Authorization: "
     "Bearer TOKEN', TOKEN being this file's first line; without it, only loopback peers may POST", "",
     store_admin_token},

    {"Other", "h,help", "", "print this help and exit", "", nullptr},
    {"Other", "version", "", "print the version and exit", "", nullptr},
  };
  // clang-format on
}

// The name an option is looked up by: its long one.
std::string long_name(const OptionRow& row) {
  return row.names.substr(row.names.rfind(',') + 1);
}

cxxopts::Options make_options(const std::vector<OptionRow>& table) {
  cxxopts::Options options("handoff", kSummary);
  options.custom_help("[OPTION...]");
  options.set_width(100);
  for (const OptionRow& row : table) {
    std::shared_ptr<const cxxopts::Value> value = cxxopts::value<bool>();
    if (!row.value_name.empty()) {
      const auto text = cxxopts::value<std::string>();
      if (!row.default_text.empty()) text->default_value(row.default_text);
      value = text;
    }
    options.add_option(row.group, {row.names, row.help, value, row.value_name});
  }
  return options;
}

// The sections of --help, in the order their first option comes in the table.
std::vector<std::string> help_groups(const std::vector<OptionRow>& table) {
  std::vector<std::string> groups;
  for (const OptionRow& row : table) {
    if (std::find(groups.begin(), groups.end(), row.group) == groups.end()) groups.push_back(row.group);
  }
  return groups;
}

OptionText option_text(const cxxopts::ParseResult& result, const OptionRow& row) {
  const std::string name = long_name(row);
  OptionText option{.given = result.count(name) > 0};
  if (!row.value_name.empty() && (option.given || !row.default_text.empty())) {
    option.text = result[name].as<std::string>();
  }
  if (row.repeatable) {
    for (const cxxopts::KeyValue& argument : result.arguments()) {
      if (argument.key() == name) option.every.push_back(argument.value());
    }
  }
  return option;
}

std::string version_text() {
  return "handoff " + std::string(kVersion) + " (the reactor; ipc protocol " + std::to_string(ipc::kVersion) +
         ")\n";
}

}  // namespace

std::variant<Config, EarlyExit> parse_command_line(int argc, const char* const* argv,
                                                   const std::string& default_handler) {
  const std::vector<OptionRow> table = option_table(default_handler);
  cxxopts::Options options = make_options(table);
  Config config;
  try {
    const cxxopts::ParseResult result = options.parse(argc, argv);
    if (result.count("help")) return EarlyExit{0, options.help(help_groups(table))};
    if (result.count("version")) return EarlyExit{0, version_text()};
    if (!result.unmatched().empty())
      return usage_error("unexpected argument '" + result.unmatched()[0] + "'");
    // cxxopts keeps the last of an option given twice: the first would be dropped without a word.
    for (const cxxopts::KeyValue& argument : result.arguments()) {
      const auto row = std::find_if(table.begin(), table.end(),
                                    [&](const OptionRow& row) { return long_name(row) == argument.key(); });
      const bool repeatable = row != table.end() && row->repeatable;
      if (!repeatable && result.count(argument.key()) > 1)
        return usage_error("--" + argument.key() + " is given twice");
    }
    for (const bool after_others : {false, true}) {
      for (const OptionRow& row : table) {
        if (!row.store || row.after_others != after_others) continue;
        if (std::optional<std::string> error = row.store(config, long_name(row), option_text(result, row))) {
          return usage_error(*error);
        }
      }
    }
  } catch (const cxxopts::exceptions::exception& error) {
    return usage_error(error.what());
  }
  return config;
}

}  // namespace handoff::reactor
