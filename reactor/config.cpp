#include "reactor/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <fstream>
#include <thread>

#include "ipc/wire.hpp"

namespace handoff::reactor {
namespace {

constexpr const char* kVersion = "handoff 0.1.0 (the reactor; ipc protocol 1)";

constexpr size_t kMinHeadBytes = 16;
constexpr size_t kMaxHeadBytes = 1 << 20;
constexpr size_t kMaxRequestBytesLimit = size_t{1} << 30;

bool is_ip_literal(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Reads a size such as 65536, 64k, 2m or 1g.
std::optional<size_t> parse_size(std::string_view text) {
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  std::string_view suffix(end, text.data() + text.size() - end);
  size_t scale = 1;
  if (suffix == "k" || suffix == "K") {
    scale = size_t{1} << 10;
  } else if (suffix == "m" || suffix == "M") {
    scale = size_t{1} << 20;
  } else if (suffix == "g" || suffix == "G") {
    scale = size_t{1} << 30;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (value > SIZE_MAX / scale) return std::nullopt;
  return value * scale;
}

EarlyExit usage_error(const std::string& what) {
  return {2, "handoff: " + what + "\n(see handoff --help)\n"};
}

}  // namespace

std::string ListenAddress::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string host(text.substr(0, colon));
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find(':') == std::string::npos) return std::nullopt;
  } else if (host.find(':') != std::string::npos) {
    return std::nullopt;  // An IPv6 host must be written in brackets.
  }
  if (host == "localhost") host = "127.0.0.1";
  if (!is_ip_literal(host)) return std::nullopt;

  unsigned port = 0;
  const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return std::nullopt;
  }
  return ListenAddress{std::move(host), static_cast<uint16_t>(port)};
}

std::optional<std::vector<std::string>> split_command(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'' || c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != c; ++j) {
        // Inside double quotes a backslash escapes only \ and " (a shell's $ and ` are not special here).
        if (c == '"' && text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '\\' || text[j + 1] == '"'))
          ++j;
        word += text[j];
      }
      if (j == text.size()) return std::nullopt;  // Unterminated quote.
      in_word = true;
      i = j;
    } else if (c == '\\' && i + 1 < text.size()) {
      word += text[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string command_text(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) {
    if (!text.empty()) text += ' ';
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) ||
             (c != '\0' && std::strchr("_-./:=@%+,", c) != nullptr);
    });
    if (plain) {
      text += word;
      continue;
    }
    // In single quotes every character stands for itself but the quote, which closes, escapes and reopens.
    text += '\'';
    for (const char c : word) text += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += '\'';
  }
  return text;
}

namespace {

// Reads option name (given as text) into value, checking it lies within [min, max]; an EarlyExit that says
// what is wrong otherwise. An option without a default value that is not given leaves value as it is.
template <typename T, typename Parse>
std::optional<EarlyExit> read_option(const cxxopts::ParseResult& result, const char* name, Parse parse, T min,
                                     T max, const std::string& expected, T& value) {
  if (result.count(name) == 0 && !result[name].has_default()) return std::nullopt;
  const std::string text = result[name].as<std::string>();
  const std::optional<T> parsed = parse(text);
  if (!parsed || *parsed < min || *parsed > max) {
    return usage_error(std::string("--") + name + " '" + text + "' must be " + expected);
  }
  value = *parsed;
  return std::nullopt;
}

std::optional<size_t> parse_count(std::string_view text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return parse_size(text);
}

}  // namespace

std::optional<Milliseconds> parse_duration(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end == text.data()) return std::nullopt;
  const std::string_view unit(end, text.data() + text.size() - end);
  uint64_t scale;
  if (unit == "ms") {
    scale = 1;
  } else if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else {
    return std::nullopt;
  }
  if (value > UINT64_MAX / scale / 2) return std::nullopt;
  return Milliseconds(value * scale);
}

std::optional<Microseconds> parse_short_duration(std::string_view text) {
  if (text.ends_with("us")) {
    const std::optional<size_t> count = parse_count(text.substr(0, text.size() - 2));
    if (!count || *count > UINT32_MAX) return std::nullopt;
    return Microseconds(*count);
  }
  const std::optional<Milliseconds> ms = parse_duration(text);
  if (!ms || ms->count() > UINT32_MAX / 1000) return std::nullopt;
  return std::chrono::duration_cast<Microseconds>(*ms);
}

std::variant<Config, EarlyExit> parse_command_line(int argc, const char* const* argv,
                                                   const std::string& default_handler) {
  Config config;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const auto text = [](const auto& value) { return cxxopts::value<std::string>()->default_value(value); };

  cxxopts::Options options(
      "handoff",
      "handoff reactor: accepts connections on one event loop and hands each ready request,\n"
      "socket and all, to a pool of pre-spawned handler processes that compute the answer.\n"
      "Sizes take k/m/g suffixes; durations take ms/s/m (a bare number is seconds).\n"
      "Signals: SIGTERM/SIGINT finish work and exit (again, 250 ms or more later: at once);\n"
      "SIGHUP replaces every handler with a fresh process of --handler-cmd, without failing a\n"
      "request (a reload whose new handlers do not start is abandoned). SIGUSR2 replaces the\n"
      "reactor itself: the binary now at its path starts, takes over the listening sockets and\n"
      "every connection, and this one exits (an upgrade that fails to start is abandoned).\n"
      "Under systemd (handoff.service), the service socket may be passed by socket activation\n"
      "(handoff.socket); --listen is then not given.\n");
  options.custom_help("[OPTION...]");
  options.set_width(100);
  // clang-format off
  options.add_options()
    ("listen", "address to listen on, HOST:PORT; IPv6 as [::1]:8888; port 0 picks a free port. "
               "Prints 'listening on HOST:PORT' once ready", text(config.listen.to_string()), "HOST:PORT")
    ("reuse-port", "several reactors may listen on the same port of one host: the kernel spreads new "
                   "connections among them (SO_REUSEPORT)")
    // The defaults of --handlers and --handler-cmd depend on the machine and on where the reactor is
    // installed: the help names them by what they are, never by their value here, since the man page is made
    // from it on the build machine (reactor/meson.build).
    ("handlers", "number of handler processes (default: one per core, at most --max-handlers)",
     cxxopts::value<std::string>(), "N")
    ("max-handlers", "the largest pool that --handlers, POST /pool or SIGTTIN may ask for (at most 1024)",
     text("64"), "N")
    ("linger", "after an answer, while no request waits and another handler is idle, the handler waits this "
               "long on the keep-alive connection and serves its next request itself, with no hand-off; a "
               "request that comes to wait takes the handler back at once (at most half --request-timeout). "
               "0: every connection goes back to the reactor at once",
     text("1ms"), "TIME")
    ("handler-sched", "batch: handlers run as SCHED_BATCH (sched(7)), so that the reactor gets the CPU sooner "
                      "when it wakes, at no cost to their share of it; normal: as the reactor", text("batch"),
     "batch|normal")
    ("send-ahead", "N: a busy handler is sent up to N of the next waiting requests before it reports, and "
                   "goes on with them at once (a handler that comes free first takes them instead); on: " +
                   std::to_string(kDefaultSendAhead) + "; off or 0: only idle handlers get requests",
     text("on"), "on|off|N")
    ("handler-nice", "handlers run this much nicer than the reactor, 0 to 19: a smaller share of the CPU when "
                     "other programs compete for it too", text("0"), "N")
    ("handler-cmd", "handler command line (split like a shell, no expansions); the handler gets its channel at "
                    "descriptor 3 (HANDOFF_IPC_FD=3). Default: handoff-handler beside the reactor, in the folder "
                    "of its own executable (in a build tree, ../handler/handoff-handler from that folder)",
     cxxopts::value<std::string>(), "'PATH ARGS...'")
    ("max-head-bytes", "longest HTTP request head; longer gets 431", text("64k"), "BYTES")
    ("max-request-bytes", "longest request line or HTTP body; longer gets 'ERR request too large' or 413. The "
                          "reactor reads each whole request before a handler gets it", text("2m"), "BYTES")
    ("max-buffered-bytes", "bytes of unfinished requests the reactor holds in all; beyond it, it stops "
                           "reading until handlers take requests (at least the largest request). An eighth is "
                           "kept for requests under 16k, and under pressure an upload silent for 1s gives way",
     text("64m"), "BYTES")
    ("max-connections", "client connections open at once; more wait in the listen backlog until one closes. "
                        "0 derives it from the descriptor limit", text("0"), "N")
    ("handler-max-rss", "a handler whose resident memory grows past this is replaced after the request it "
                        "serves (0: no limit)", text("0"), "SIZE");
  options.add_options("Failures")
    ("request-timeout", "a handler still busy with a request after this is killed; the client gets "
                        "'ERR timeout'", text("30s"), "TIME")
    ("max-queue", "requests that may wait for a handler; one more gets 'ERR busy'", text("1024"), "N")
    ("queue-timeout", "a request that waited this long for a handler gets 'ERR busy'", text("30s"), "TIME")
    ("max-requests", "a handler retires after this many requests (0: never)", text("0"), "N")
    ("max-requests-jitter", "each handler's --max-requests is raised by a random 0..N, so they do not all "
                            "retire at once", text("0"), "N")
    ("read-timeout", "a client must send a whole request within this; else 'ERR read timeout'", text("10s"),
     "TIME")
    ("write-timeout", "a handler gives up on a client that takes none of an answer for this long (the clock "
                      "starts over whenever some bytes go out), and closes the connection", text("5s"), "TIME")
    ("idle-timeout", "a connection with no request for this long is closed", text("60s"), "TIME")
    ("handler-start-timeout", "a handler that has not said hello this long after its start is killed; a "
                              "reload whose new handlers do not is abandoned", text("10s"), "TIME")
    ("shutdown-timeout", "on SIGTERM/SIGINT, requests still running after this are cut off", text("30s"),
     "TIME");
  options.add_options("Operations")
    ("admin", "admin HTTP port: /healthz, /stats, /metrics, status page at /, POST /pool?size=N, POST /drain "
              "(out of a balancer's rotation); 'off' to disable. Port 0 picks a free port and prints 'admin "
              "listening on HOST:PORT'",
     text(config.admin->to_string()), "HOST:PORT|off")
    ("log-level", "error, warn, info or debug", text("info"), "LEVEL")
    ("log-format", "text or json, on stderr", text("text"), "FORMAT")
    ("access-log", "a log line per request: on or off", text("off"), "on|off");
  options.add_options("Security")
    ("user", "started as root: the user the reactor and its handlers run as once the ports are bound "
             "(supplementary groups cleared)", cxxopts::value<std::string>(), "NAME")
    ("group", "with --user: the group to run as, instead of the user's own", cxxopts::value<std::string>(),
     "NAME")
    ("allow-root-handlers", "started as root without --user, run the handlers as root too (otherwise the "
                            "reactor refuses to start)")
    ("admin-token-file", "POST requests to the admin port must carry 'Authorization: Bearer TOKEN', TOKEN "
                         "being this file's first line; without it, only loopback peers may POST",
     cxxopts::value<std::string>(), "PATH");
  options.add_options("Other")
    ("h,help", "print this help and exit")
    ("version", "print the version and exit");
  // clang-format on

  try {
    const cxxopts::ParseResult result = options.parse(argc, argv);
    if (result.count("help"))
      return EarlyExit{0, options.help({"", "Failures", "Operations", "Security", "Other"})};
    if (result.count("version")) return EarlyExit{0, std::string(kVersion) + "\n"};
    if (!result.unmatched().empty())
      return usage_error("unexpected argument '" + result.unmatched()[0] + "'");
    // cxxopts keeps the last of an option given twice: the first would be dropped without a word.
    for (const cxxopts::KeyValue& argument : result.arguments()) {
      if (result.count(argument.key()) > 1) return usage_error("--" + argument.key() + " is given twice");
    }

    const std::string listen = result["listen"].as<std::string>();
    const std::optional<ListenAddress> address = parse_listen_address(listen);
    if (!address) {
      return usage_error("--listen '" + listen +
                         "' is not HOST:PORT with an IP address (e.g. 127.0.0.1:8888, [::1]:0)");
    }
    config.listen = *address;
    config.listen_given = result.count("listen") > 0;
    config.reuse_port = result.count("reuse-port") > 0;

    const std::string command =
        result.count("handler-cmd") ? result["handler-cmd"].as<std::string>() : default_handler;
    std::optional<std::vector<std::string>> words = split_command(command);
    if (!words) return usage_error("--handler-cmd has an unterminated quote: " + command);
    if (words->empty()) return usage_error("--handler-cmd is empty");
    config.handler_command = std::move(*words);

    size_t max_handlers = 0, handler_nice = 0;
    const Milliseconds ms(1), day(24 * 3600 * 1000);
    std::optional<EarlyExit> error =
        read_option(result, "max-handlers", parse_count, size_t{1}, size_t{kMaxHandlers},
                    "a whole number from 1 to 1024", max_handlers);
    if (error) return *error;
    size_t handlers = std::min<size_t>(cores, max_handlers);  // One per core, unless --handlers says.
    (error = read_option(result, "handlers", parse_count, size_t{1}, max_handlers,
                         "a whole number from 1 to --max-handlers (" + std::to_string(max_handlers) + ")",
                         handlers)) ||
        (error = read_option(result, "max-head-bytes", parse_size, kMinHeadBytes, kMaxHeadBytes,
                             "a size from 16 to 1m", config.max_head_bytes)) ||
        (error = read_option(result, "max-request-bytes", parse_size, size_t{1}, kMaxRequestBytesLimit,
                             "a size from 1 to 1g", config.max_request_bytes)) ||
        (error = read_option(result, "linger", parse_short_duration, Microseconds(0), Microseconds(1'000'000),
                             "a duration from 0 to 1s (250us, 2ms)", config.linger)) ||
        (error = read_option(result, "handler-nice", parse_count, size_t{0}, size_t{19},
                             "a whole number from 0 to 19", handler_nice)) ||
        (error = read_option(result, "max-buffered-bytes", parse_size, size_t{1}, size_t{1} << 40,
                             "a size from 1 to 1024g", config.max_buffered_bytes)) ||
        (error = read_option(result, "request-timeout", parse_duration, ms, day, "a duration from 1ms to 24h",
                             config.request_timeout)) ||
        (error = read_option(result, "max-queue", parse_count, size_t{0}, size_t{1} << 24,
                             "a whole number from 0 to 16777216", config.max_queue)) ||
        (error = read_option(result, "queue-timeout", parse_duration, ms, day, "a duration from 1ms to 24h",
                             config.queue_timeout)) ||
        (error = read_option(result, "max-requests", parse_count, size_t{0}, SIZE_MAX / 4, "a whole number",
                             config.max_requests)) ||
        (error = read_option(result, "max-requests-jitter", parse_count, size_t{0}, SIZE_MAX / 4,
                             "a whole number", config.max_requests_jitter)) ||
        (error = read_option(result, "read-timeout", parse_duration, ms, day, "a duration from 1ms to 24h",
                             config.read_timeout)) ||
        (error = read_option(result, "write-timeout", parse_duration, ms, day, "a duration from 1ms to 24h",
                             config.write_timeout)) ||
        (error = read_option(result, "idle-timeout", parse_duration, ms, day, "a duration from 1ms to 24h",
                             config.idle_timeout)) ||
        (error = read_option(result, "handler-start-timeout", parse_duration, ms, day,
                             "a duration from 1ms to 24h", config.handler_start_timeout)) ||
        (error = read_option(result, "shutdown-timeout", parse_duration, ms, day,
                             "a duration from 1ms to 24h", config.shutdown_timeout)) ||
        (error = read_option(result, "max-connections", parse_count, size_t{0}, size_t{1} << 24,
                             "a whole number from 0 to 16777216", config.max_connections)) ||
        (error = read_option(result, "handler-max-rss", parse_size, size_t{0}, SIZE_MAX / 4,
                             "a size (0 for no limit)", config.handler_max_rss));
    if (error) return *error;
    config.handlers = static_cast<unsigned>(handlers);
    config.handler_nice = static_cast<int>(handler_nice);
    config.max_handlers = static_cast<unsigned>(max_handlers);
    // One request alone must fit, or it could never be read whole.
    const size_t largest_request =
        std::min<size_t>(config.max_head_bytes + config.max_request_bytes + 2, ipc::kMaxPayloadBytes);
    if (config.max_buffered_bytes < largest_request) {
      if (result.count("max-buffered-bytes")) {
        return usage_error("--max-buffered-bytes must be at least the largest request the reactor reads (" +
                           std::to_string(largest_request) + " bytes with these limits)");
      }
      config.max_buffered_bytes = largest_request;
    }

    const std::string admin = result["admin"].as<std::string>();
    if (admin == "off") {
      config.admin.reset();
    } else if (!(config.admin = parse_listen_address(admin))) {
      return usage_error("--admin '" + admin + "' is not HOST:PORT with an IP address, or off");
    }
    const std::string level = result["log-level"].as<std::string>();
    const std::vector<std::pair<std::string, LogLevel>> levels = {{"error", LogLevel::kError},
                                                                  {"warn", LogLevel::kWarn},
                                                                  {"info", LogLevel::kInfo},
                                                                  {"debug", LogLevel::kDebug}};
    const auto found =
        std::find_if(levels.begin(), levels.end(), [&](const auto& l) { return l.first == level; });
    if (found == levels.end())
      return usage_error("--log-level '" + level + "' must be error, warn, info or debug");
    config.log_level = found->second;
    const std::string format = result["log-format"].as<std::string>();
    if (format != "text" && format != "json")
      return usage_error("--log-format '" + format + "' must be text or json");
    config.log_format = format == "json" ? LogFormat::kJson : LogFormat::kText;
    const std::string access = result["access-log"].as<std::string>();
    if (access != "on" && access != "off")
      return usage_error("--access-log '" + access + "' must be on or off");
    config.access_log = access == "on";
    const std::string sched = result["handler-sched"].as<std::string>();
    if (sched != "batch" && sched != "normal") {
      return usage_error("--handler-sched '" + sched + "' must be batch or normal");
    }
    config.handler_batch = sched == "batch";
    const std::string ahead = result["send-ahead"].as<std::string>();
    const std::optional<size_t> depth = ahead == "on"    ? kDefaultSendAhead
                                        : ahead == "off" ? 0
                                                         : parse_count(ahead);
    if (!depth || *depth > kMaxSendAhead) {
      return usage_error("--send-ahead '" + ahead + "' must be on, off or a number of requests from 0 to " +
                         std::to_string(kMaxSendAhead));
    }
    config.send_ahead = static_cast<unsigned>(*depth);

    if (result.count("user")) config.user = result["user"].as<std::string>();
    if (result.count("group")) {
      if (!config.user) return usage_error("--group needs --user");
      config.group = result["group"].as<std::string>();
    }
    config.allow_root_handlers = result.count("allow-root-handlers") > 0;
    if (result.count("admin-token-file")) {
      const std::string path = result["admin-token-file"].as<std::string>();
      std::ifstream file(path);
      if (!file) return usage_error("--admin-token-file '" + path + "' cannot be read");
      std::string line;
      std::getline(file, line);
      // A header's value loses the blanks around it in the parser (and a CRLF file leaves a CR), so the token
      // does too; a control character left inside could never arrive in a header: refused, not kept to fail
      // every request.
      const auto blank = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
      const auto first = std::find_if_not(line.begin(), line.end(), blank);
      const auto last = std::find_if_not(line.rbegin(), line.rend(), blank).base();
      config.admin_token = first < last ? std::string(first, last) : std::string();
      const auto control = std::find_if(config.admin_token.begin(), config.admin_token.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      });
      if (control != config.admin_token.end()) {
        char code[8];
        std::snprintf(code, sizeof(code), "0x%02x", static_cast<unsigned char>(*control));
        return usage_error("--admin-token-file '" + path + "': its token holds a control character (" + code +
                           ", character " + std::to_string(control - config.admin_token.begin() + 1) +
                           "), which no Authorization header can carry");
      }
      if (config.admin_token.size() < 16) {
        return usage_error("--admin-token-file '" + path +
                           "': its first line must be a token of 16 or more characters");
      }
    }
  } catch (const cxxopts::exceptions::exception& error) {
    return usage_error(error.what());
  }
  return config;
}

}  // namespace handoff::reactor
