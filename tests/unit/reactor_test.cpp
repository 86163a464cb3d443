// Unit tests of the reactor's pieces that do no I/O: the command line and the Dispatcher.

#include <gtest/gtest.h>
#include <memory>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <unordered_map>

#include "reactor/admin/admin_guard.hpp"
#include "reactor/command_line.hpp"
#include "reactor/config.hpp"
#include "reactor/dispatcher.hpp"
#include "reactor/fair_queue.hpp"
#include "reactor/metrics.hpp"
#include "reactor/protocol.hpp"
#include "reactor/read_budget.hpp"
#include "reactor/request_framing.hpp"
#include "reactor/route_table.hpp"
#include "reactor/version.hpp"

namespace handoff::reactor {
namespace {

std::variant<Config, EarlyExit> parse(std::vector<const char*> arguments) {
  arguments.insert(arguments.begin(), "reactor");
  return parse_command_line(static_cast<int>(arguments.size()), arguments.data(), "/opt/handler");
}

TEST(ListenAddress, ParsesIpv4Ipv6AndLocalhost) {
  auto v4 = parse_listen_address("127.0.0.1:8888");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8888);
  auto v6 = parse_listen_address("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->to_string(), "[::1]:0");
  EXPECT_EQ(parse_listen_address("localhost:80")->host, "127.0.0.1");
  EXPECT_EQ(parse_listen_address("0.0.0.0:65535")->port, 65535);
}

TEST(ListenAddress, RejectsMalformedAddresses) {
  for (const char* bad : {"", "8888", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "::1:80",
                          "[127.0.0.1]:80", "example.com:80", "127.0.0.1:80x", "[::1:80"}) {
    EXPECT_FALSE(parse_listen_address(bad)) << bad;
  }
}

TEST(SplitCommand, SplitsLikeAShell) {
  EXPECT_EQ(*split_command("python3 handler.py"), (std::vector<std::string>{"python3", "handler.py"}));
  EXPECT_EQ(*split_command("  a   'b c'  \"d \\\" e\" f\\ g "),
            (std::vector<std::string>{"a", "b c", "d \" e", "f g"}));
  EXPECT_EQ(*split_command("''"), std::vector<std::string>{""});
  EXPECT_TRUE(split_command("")->empty());
  EXPECT_FALSE(split_command("a 'b"));
}

// The start line names the handler command as split_command would read it back.
TEST(SplitCommand, CommandTextSplitsBackIntoTheSameWords) {
  EXPECT_EQ(command_text({"python3", "/srv/handler.py", "--x=1"}), "python3 /srv/handler.py --x=1");
  for (const std::vector<std::string>& words :
       {std::vector<std::string>{"sh", "-c", "test -e 'x' && exit 1"},
        {"my handler", "", "it's", "\"quoted\"", "back\\slash", "tab\there", "$HOME"}}) {
    EXPECT_EQ(split_command(command_text(words)), words) << command_text(words);
  }
}

TEST(CommandLine, AnOptionGivenTwiceIsRefused) {
  const auto parsed = parse({"--handlers", "1", "--handlers", "2"});
  ASSERT_TRUE(std::holds_alternative<EarlyExit>(parsed));
  EXPECT_EQ(std::get<EarlyExit>(parsed).status, 2);
  EXPECT_EQ(std::get<EarlyExit>(parsed).text, "handoff: --handlers is given twice\n(see handoff --help)\n");
}

// --listen may be given several times: every address is served, in the order given; the same one twice is
// a mistake (port 0 is not: each picks a free port of its own).
TEST(CommandLine, ListenTakesSeveralAddressesAndUnixSockets) {
  const auto parsed = parse({"--listen", "127.0.0.1:1", "--listen", "[::1]:0", "--listen", "[::1]:0",
                             "--listen", "unix:/run/handoff/http.sock,mode=0660", "--listen", "unix:/tmp/b"});
  ASSERT_TRUE(std::holds_alternative<Config>(parsed)) << std::get<EarlyExit>(parsed).text;
  const Config& config = std::get<Config>(parsed);
  ASSERT_EQ(config.listen.size(), 5u);
  EXPECT_EQ(config.listen[0].to_string(), "127.0.0.1:1");
  EXPECT_EQ(config.listen[1].to_string(), "[::1]:0");
  EXPECT_EQ(config.listen[3].to_string(), "unix:/run/handoff/http.sock");
  EXPECT_EQ(config.listen[3].mode, 0660u);
  EXPECT_EQ(config.listen[4].mode, 0666u);
  EXPECT_TRUE(config.listen_given);

  const auto refusal = [](const std::vector<std::string>& arguments) {
    std::vector<const char*> words;
    for (const std::string& argument : arguments) words.push_back(argument.c_str());
    const auto parsed = parse(words);
    return std::holds_alternative<EarlyExit>(parsed) ? std::get<EarlyExit>(parsed).text : "accepted";
  };
  EXPECT_EQ(refusal({"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1"}),
            "handoff: --listen '127.0.0.1:1' is given twice\n(see handoff --help)\n");
  EXPECT_EQ(refusal({"--listen", "unix:/tmp/a", "--listen", "unix:/tmp/a,mode=0600"}),
            "handoff: --listen 'unix:/tmp/a,mode=0600' is given twice\n(see handoff --help)\n");
  EXPECT_EQ(refusal({"--listen", "unix:relative.sock"}),
            "handoff: --listen 'unix:relative.sock' needs an absolute path of at most 107 bytes after unix:\n"
            "(see handoff --help)\n");
  EXPECT_EQ(refusal({"--listen", "unix:/" + std::string(107, 'a')}),
            "handoff: --listen 'unix:/" + std::string(107, 'a') +
                "' needs an absolute path of at most 107 bytes after unix:\n(see handoff --help)\n");
  EXPECT_EQ(
      refusal({"--listen", "unix:/tmp/a,mode=0999"}),
      "handoff: --listen 'unix:/tmp/a,mode=0999' has a mode that is not octal permissions from 0 to 0777 "
      "(e.g. mode=0660)\n(see handoff --help)\n");
  EXPECT_EQ(refusal({"--listen", "example.com:80"}),
            "handoff: --listen 'example.com:80' is not HOST:PORT with an IP address (e.g. 127.0.0.1:8888, "
            "[::1]:0), or unix:PATH\n(see handoff --help)\n");
}

// One per core, but never more than --max-handlers allows: a machine with more cores is no usage error.
TEST(CommandLine, HandlersDefaultToOnePerCoreWithinMaxHandlers) {
  const auto parsed = parse({"--max-handlers", "1"});
  ASSERT_TRUE(std::holds_alternative<Config>(parsed));
  EXPECT_EQ(std::get<Config>(parsed).handlers, 1u);
}

TEST(CommandLine, DefaultsAreSane) {
  const auto parsed = parse({});
  ASSERT_TRUE(std::holds_alternative<Config>(parsed));
  const Config& config = std::get<Config>(parsed);
  EXPECT_EQ(config.listen.front().to_string(), "127.0.0.1:8888");
  EXPECT_GE(config.handlers, 1u);
  EXPECT_EQ(config.handler_command, std::vector<std::string>{"/opt/handler"});
  EXPECT_EQ(config.max_head_bytes, 64u * 1024);
  EXPECT_EQ(config.max_request_bytes, 2u * 1024 * 1024);
}

TEST(CommandLine, ReadsEveryOption) {
  const auto parsed = parse({"--listen", "[::1]:0", "--handlers", "3", "--handler-cmd",
                             "python3 'my handler.py'", "--max-head-bytes", "1k", "--max-request-bytes=3m"});
  ASSERT_TRUE(std::holds_alternative<Config>(parsed));
  const Config& config = std::get<Config>(parsed);
  EXPECT_EQ(config.listen.front().host, "::1");
  EXPECT_EQ(config.handlers, 3u);
  EXPECT_EQ(config.handler_command, (std::vector<std::string>{"python3", "my handler.py"}));
  EXPECT_EQ(config.max_head_bytes, 1024u);
  EXPECT_EQ(config.max_request_bytes, 3u << 20);
}

TEST(CommandLine, BadInputExitsWithStatus2AndSaysWhy) {
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"--listen", "nowhere"}, "--listen 'nowhere'"},
      {{"--handlers", "0"}, "--handlers '0' must be a whole number from 1 to --max-handlers (64)"},
      {{"--handlers", "9", "--max-handlers", "8"},
       "--handlers '9' must be a whole number from 1 to --max-handlers (8)"},
      {{"--max-handlers", "1025"}, "--max-handlers '1025' must be a whole number from 1 to 1024"},
      {{"--handlers", "many"}, "--handlers 'many'"},
      {{"--handler-cmd", "a 'b"}, "unterminated quote"},
      {{"--handler-cmd", ""}, "--handler-cmd is empty"},
      {{"--max-head-bytes", "8"}, "--max-head-bytes '8'"},
      {{"--max-request-bytes", "2x"}, "--max-request-bytes '2x'"},
      {{"--frobnicate"}, "frobnicate"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{"--admin", "nowhere"}, "--admin 'nowhere'"},
      {{"--log-level", "loud"}, "--log-level 'loud' must be error, warn, info or debug"},
      {{"--log-format", "xml"}, "--log-format 'xml' must be text or json"},
      {{"--access-log", "yes"}, "--access-log 'yes' must be on or off"},
      {{"--request-timeout", "soon"}, "--request-timeout 'soon'"},
      {{"--max-queue", "-1"}, "--max-queue '-1'"},
      {{"--max-buffered-bytes", "1k"}, "--max-buffered-bytes must be at least the largest request"},
      {{"--max-connections", "lots"}, "--max-connections 'lots'"},
      {{"--handler-max-rss", "big"}, "--handler-max-rss 'big'"},
      {{"--group", "staff"}, "--group needs --user"},
      {{"--admin-token-file", "/nonexistent/token"},
       "--admin-token-file '/nonexistent/token' cannot be read"},
      {{"--admin-token-file", "/dev/null"}, "must be a token of 16 or more characters"},
      {{"--linger", "2s"}, "--linger '2s' must be a duration from 0 to 1s"},
      {{"--linger", "5xs"}, "--linger '5xs'"},
      {{"--handler-nice", "20"}, "--handler-nice '20' must be a whole number from 0 to 19"},
      {{"--handler-sched", "fifo"}, "--handler-sched 'fifo' must be batch or normal"},
      {{"--send-ahead", "yes"}, "--send-ahead 'yes' must be on, off or a number of requests from 0 to 7"},
      {{"--send-ahead", "8"}, "--send-ahead '8' must be on, off or a number of requests from 0 to 7"},
      {{"--wsgi", "app:app", "--handler-cmd", "python3 app.py"}, "--wsgi and --handler-cmd both name"},
      {{"--wsgi", "app:create_app('x y')"}, "--wsgi takes MODULE:APP"},
  };
  for (const auto& [arguments, expected] : cases) {
    const auto parsed = parse(arguments);
    ASSERT_TRUE(std::holds_alternative<EarlyExit>(parsed)) << expected;
    const EarlyExit& early = std::get<EarlyExit>(parsed);
    EXPECT_EQ(early.status, 2);
    EXPECT_NE(early.text.find(expected), std::string::npos) << early.text;
  }
}

// --wsgi is the handler command of the WSGI server; --preload is off unless given.
TEST(CommandLine, WsgiNamesTheHandlerCommand) {
  const Config config = std::get<Config>(parse({"--wsgi", "shop.web:app", "--preload"}));
  EXPECT_EQ(config.handler_command,
            (std::vector<std::string>{"python3", "-m", "handoff_handler.wsgi", "shop.web:app"}));
  EXPECT_TRUE(config.preload);
  EXPECT_FALSE(std::get<Config>(parse({})).preload);
}

TEST(CommandLine, OperationsOptions) {
  const Config defaults = std::get<Config>(parse({}));
  ASSERT_TRUE(defaults.admin);
  EXPECT_EQ(defaults.admin->to_string(), "127.0.0.1:8889");
  EXPECT_EQ(defaults.log_level, LogLevel::kInfo);
  EXPECT_FALSE(defaults.access_log);
  const Config set = std::get<Config>(
      parse({"--admin", "off", "--log-level", "debug", "--log-format", "json", "--access-log", "on",
             "--request-timeout", "250ms", "--idle-timeout", "2m", "--read-timeout", "3"}));
  EXPECT_FALSE(set.admin);
  EXPECT_EQ(set.log_level, LogLevel::kDebug);
  EXPECT_EQ(set.log_format, LogFormat::kJson);
  EXPECT_TRUE(set.access_log);
  EXPECT_EQ(set.request_timeout, Milliseconds(250));
  EXPECT_EQ(set.idle_timeout, Milliseconds(120000));
  EXPECT_EQ(set.read_timeout, Milliseconds(3000));
}

TEST(CommandLine, HardeningOptions) {
  const Config defaults = std::get<Config>(parse({}));
  EXPECT_EQ(defaults.max_connections, 0u);  // Derived from the descriptor limit at start.
  EXPECT_EQ(defaults.handler_max_rss, 0u);
  EXPECT_FALSE(defaults.user);
  EXPECT_FALSE(defaults.allow_root_handlers);
  EXPECT_TRUE(defaults.admin_token.empty());
  const Config set =
      std::get<Config>(parse({"--max-connections", "500", "--handler-max-rss", "256m", "--user", "nobody",
                              "--group", "nogroup", "--allow-root-handlers"}));
  EXPECT_EQ(set.max_connections, 500u);
  EXPECT_EQ(set.handler_max_rss, 256u << 20);
  EXPECT_EQ(set.user, "nobody");
  EXPECT_EQ(set.group, "nogroup");
  EXPECT_TRUE(set.allow_root_handlers);
}

TEST(CommandLine, DispatchOptions) {
  const Config defaults = std::get<Config>(parse({}));
  EXPECT_EQ(defaults.linger, Microseconds(1000));
  EXPECT_TRUE(defaults.handler_batch);
  EXPECT_EQ(defaults.handler_nice, 0);
  EXPECT_EQ(defaults.send_ahead, kDefaultSendAhead);
  EXPECT_EQ(std::get<Config>(parse({"--send-ahead", "off"})).send_ahead, 0u);
  EXPECT_EQ(std::get<Config>(parse({"--send-ahead", "4"})).send_ahead, 4u);
  EXPECT_FALSE(defaults.reuse_port);
  EXPECT_FALSE(defaults.listen_given);  // A socket systemd passes may take its place.
  const Config shared = std::get<Config>(parse({"--reuse-port", "--listen", "127.0.0.1:9000"}));
  EXPECT_TRUE(shared.reuse_port);
  EXPECT_TRUE(shared.listen_given);
  const Config set =
      std::get<Config>(parse({"--linger", "250us", "--handler-sched", "normal", "--handler-nice", "5"}));
  EXPECT_EQ(set.linger, Microseconds(250));
  EXPECT_FALSE(set.handler_batch);
  EXPECT_EQ(set.handler_nice, 5);
  EXPECT_EQ(std::get<Config>(parse({"--linger", "2ms"})).linger, Microseconds(2000));
  EXPECT_EQ(std::get<Config>(parse({"--linger", "1"})).linger, Microseconds(1'000'000));  // Seconds.
  EXPECT_EQ(std::get<Config>(parse({"--linger", "0"})).linger, Microseconds(0));
}

// A handler whose client left is killed only after --cancel-grace (1 s unless said; 0: at once), and never
// with --cancel off.
TEST(CommandLine, CancelOptions) {
  const Config defaults = std::get<Config>(parse({}));
  EXPECT_TRUE(defaults.cancel);
  EXPECT_EQ(defaults.cancel_grace, Milliseconds(1000));
  const Config set = std::get<Config>(parse({"--cancel", "off", "--cancel-grace", "250ms"}));
  EXPECT_FALSE(set.cancel);
  EXPECT_EQ(set.cancel_grace, Milliseconds(250));
  EXPECT_EQ(std::get<Config>(parse({"--cancel-grace", "0"})).cancel_grace, Milliseconds(0));
  EXPECT_EQ(std::get<Config>(parse({"--cancel-grace", "2"})).cancel_grace, Milliseconds(2000));  // Seconds.
  for (const auto& [arguments, expected] : std::vector<std::pair<std::vector<const char*>, std::string>>{
           {{"--cancel", "gently"}, "handoff: --cancel 'gently' must be on or off\n"},
           {{"--cancel-grace", "soon"}, "handoff: --cancel-grace 'soon' must be a duration from 0 to 24h\n"},
           {{"--cancel-grace", "1441m"},
            "handoff: --cancel-grace '1441m' must be a duration from 0 to 24h\n"},
       }) {
    const auto parsed = parse(arguments);
    ASSERT_TRUE(std::holds_alternative<EarlyExit>(parsed)) << expected;
    EXPECT_EQ(std::get<EarlyExit>(parsed).status, 2);
    EXPECT_TRUE(std::get<EarlyExit>(parsed).text.starts_with(expected)) << std::get<EarlyExit>(parsed).text;
  }
}

http::RequestHead admin_request(std::string method, std::vector<http::HeaderField> headers = {}) {
  return {.method = std::move(method), .target = "/pool?size=2", .headers = std::move(headers)};
}

TEST(AdminGuard, WithoutATokenOnlyLoopbackPeersMayChangeAnything) {
  EXPECT_FALSE(refusal_for_changes(admin_request("POST"), true, ""));
  const std::optional<http::Response> remote = refusal_for_changes(admin_request("POST"), false, "");
  ASSERT_TRUE(remote);
  EXPECT_EQ(remote->status, 403);
  EXPECT_FALSE(refusal_for_changes(admin_request("GET"), false, ""));  // Looking is not changing.
}

TEST(AdminGuard, WithATokenEveryChangeMustCarryIt) {
  const std::string token = "0123456789abcdef-secret";
  for (const bool loopback : {true, false}) {
    EXPECT_FALSE(
        refusal_for_changes(admin_request("POST", {{"Authorization", "Bearer " + token}}), loopback, token));
    for (const std::string& wrong :
         std::vector<std::string>{"", "Bearer", "Bearer " + token + "x", "Basic " + token,
                                  "Bearer " + token.substr(0, token.size() - 1)}) {
      const std::optional<http::Response> refused =
          refusal_for_changes(admin_request("POST", {{"Authorization", wrong}}), loopback, token);
      ASSERT_TRUE(refused) << wrong;
      EXPECT_EQ(refused->status, 401);
      EXPECT_NE(refused->extra_headers.find("WWW-Authenticate: Bearer"), std::string::npos);
    }
  }
  EXPECT_FALSE(refusal_for_changes(admin_request("GET"), false, token));
  // The scheme's name is case-insensitive (RFC 9110 section 11.1); the token is not.
  EXPECT_FALSE(
      refusal_for_changes(admin_request("POST", {{"Authorization", "bearer " + token}}), false, token));
}

TEST(AdminGuard, SecretsCompareWhole) {
  EXPECT_TRUE(same_secret("abc", "abc"));
  EXPECT_FALSE(same_secret("abd", "abc"));
  EXPECT_FALSE(same_secret("ab", "abc"));
  EXPECT_FALSE(same_secret("abcd", "abc"));
  EXPECT_FALSE(same_secret("", "abc"));
}

TEST(CommandLine, HelpAndVersionExitWithStatus0) {
  const auto help = std::get<EarlyExit>(parse({"--help"}));
  EXPECT_EQ(help.status, 0);
  for (const char* option :
       {"--listen", "--handlers", "--handler-cmd", "--max-head-bytes", "--max-request-bytes",
        "--request-timeout", "--max-queue", "--queue-timeout", "--max-requests", "--max-requests-jitter",
        "--read-timeout", "--idle-timeout", "--shutdown-timeout", "--admin", "--log-level", "--log-format",
        "--access-log"}) {
    EXPECT_NE(help.text.find(option), std::string::npos) << option;
  }
  const auto version = std::get<EarlyExit>(parse({"--version"}));
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.text, "handoff " + std::string(kVersion) + " (the reactor; ipc protocol 2)\n");
}

// Every figure /stats and /metrics report is in docs/operations.md's table of metrics, by its metric (`NAME`,
// or `NAME{label}` for a family) and its /stats key (`KEY` or `object.KEY`) on one row: a counter added to
// the code and not to the docs fails here, by name.
TEST(CounterTable, TheDocsListEveryFigureByBothItsNames) {
  const char* docs = std::getenv("HANDOFF_DOCS");
  ASSERT_NE(docs, nullptr) << "HANDOFF_DOCS names the docs folder (tests/meson.build sets it)";
  const std::string path = std::string(docs) + "/operations.md";
  std::ifstream file(path);
  ASSERT_TRUE(file) << path << " cannot be read";
  std::vector<std::string> rows;
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("|")) rows.push_back(line);
  }
  const auto listed = [&](std::string_view metric, std::string_view key) {
    const std::string name(metric), word(key);
    return std::any_of(rows.begin(), rows.end(), [&](const std::string& row) {
      const bool names_metric =
          row.find("`" + name + "`") != std::string::npos || row.find("`" + name + "{") != std::string::npos;
      const bool names_key =
          row.find("`" + word + "`") != std::string::npos || row.find("." + word + "`") != std::string::npos;
      return names_metric && names_key;
    });
  };
  std::string missing;
  const auto check = [&](std::string_view metric, std::string_view key) {
    if (!listed(metric, key)) missing += "\n  " + std::string(metric) + " (/stats: " + std::string(key) + ")";
  };
  for (const CounterRow& row : kCounterTable) check(row.metric, row.key);
  for (const PoolRow& row : kPoolTable) check(row.metric, row.key);
  for (const HistogramRow& row : kHistogramTable) check(row.metric, row.key);
  for (const RouteFigure& figure : {kRouteRequests, kRouteService}) check(figure.metric, figure.key);
  EXPECT_TRUE(missing.empty()) << path << " has no table row for:" << missing;
}

// A hello's route table as the reactor keeps it: names by number, printable whatever the handler sent, and
// which line commands may run again.
TEST(RouteTable, NamesRoutesByNumberAndKnowsTheRetryableCommands) {
  const std::string payload =
      ipc::route_table_payload({{.name = "GET /notes/{id}", .flags = ipc::kRouteRetryable},
                                {.name = "fib", .flags = ipc::kRouteRetryable},
                                {.name = "put", .flags = 0},
                                {.name = std::string("a\nb\xff", 4), .flags = 0}});
  const std::shared_ptr<const RouteTable> table = RouteTable::decode(payload);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->size(), 4u);
  EXPECT_EQ(table->name(0), nullptr);
  EXPECT_EQ(*table->name(1), "GET /notes/{id}");
  EXPECT_EQ(*table->name(2), "fib");
  EXPECT_EQ(*table->name(4), "a?b?");  // Label values and JSON take it as it is.
  EXPECT_EQ(table->name(5), nullptr);
  EXPECT_TRUE(table->retryable(1));
  EXPECT_FALSE(table->retryable(3));
  EXPECT_FALSE(table->retryable(9));
  EXPECT_TRUE(table->retryable_command("fib"));
  EXPECT_FALSE(table->retryable_command("put"));
  EXPECT_FALSE(table->retryable_command("GET /notes/{id}"));  // A route, not a command.
  EXPECT_FALSE(table->retryable_command("nope"));
  EXPECT_EQ(RouteTable::decode("")->size(), 0u);  // An old handler's hello, or the template's.
  EXPECT_EQ(RouteTable::decode(payload.substr(0, payload.size() - 1)), nullptr);
}

// Requests are counted by route name and status class; the names kept are bounded, however many routes
// handlers name (a reload may bring new ones): the rest count under "(other)", route 0 under "(none)".
TEST(RouteMetrics, CountsByNameAndClassWithinTheBound) {
  RouteMetrics metrics;
  const std::string notes = "GET /notes/{id}";
  metrics.observe(&notes, 200, 0.003);
  metrics.observe(&notes, 204, 0.001);
  metrics.observe(&notes, 404, 0.001);
  metrics.observe(&notes, 302, 0.001);
  metrics.observe(&notes, 503, 0.020);
  metrics.observe(&notes, 700, 0.020);  // A handler of one's own may say anything: 5xx.
  metrics.observe(nullptr, 404, 0.0005);
  const RouteMetrics::Route& counted = metrics.routes().at(notes);
  EXPECT_EQ(counted.by_class, (std::array<uint64_t, 4>{2, 1, 1, 2}));
  EXPECT_EQ(counted.requests(), 6u);
  EXPECT_EQ(counted.service.count(), 6u);
  EXPECT_EQ(metrics.routes().at("(none)").by_class, (std::array<uint64_t, 4>{0, 0, 1, 0}));

  for (size_t i = 0; i < RouteMetrics::kMaxRoutes + 10; ++i) {
    const std::string name = "route " + std::to_string(i);
    metrics.observe(&name, 200, 0.001);
  }
  EXPECT_EQ(metrics.routes().size(), RouteMetrics::kMaxRoutes + 2);  // And "(none)" and "(other)".
  EXPECT_EQ(metrics.routes().at("(other)").requests(), 11u);         // notes took one place of the bound.
  EXPECT_TRUE(metrics.routes().contains("route 254"));
  EXPECT_FALSE(metrics.routes().contains("route 255"));
  metrics.observe(&notes, 200, 0.001);  // A route kept goes on being counted under its name.
  EXPECT_EQ(metrics.routes().at(notes).requests(), 7u);
}

TEST(LatencyHistogram, QuantilesInterpolateWithinTheirBucket) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.quantile(0.5), 0);
  for (int i = 0; i < 10; ++i) histogram.observe(0.0015);  // In (0.001, 0.002].
  EXPECT_DOUBLE_EQ(histogram.quantile(0.5), 0.0015);
  histogram.observe(100);  // Past the largest bound.
  EXPECT_DOUBLE_EQ(histogram.quantile(0.99), 30);
}

// The order a FairQueue serves in, taking each in turn.
std::vector<FairQueue::Id> serve_all(FairQueue& queue) {
  std::vector<FairQueue::Id> order;
  while (const std::optional<FairQueue::Id> next = queue.peek(0)) {
    order.push_back(*next);
    queue.take(*next);
  }
  return order;
}

TEST(FairQueue, ClientsAreServedInTurnEachInItsOwnOrder) {
  FairQueue queue;
  for (FairQueue::Id id = 1; id <= 5; ++id) queue.push(id, "a");  // One client's five first.
  queue.push(10, "b");
  queue.push(11, "b");
  queue.push(20, "c");
  EXPECT_EQ(queue.size(), 8u);
  EXPECT_EQ(queue.clients(), 3u);
  EXPECT_EQ(queue.waiting_of("a"), 5u);
  EXPECT_EQ(queue.busiest(2), (std::vector<std::pair<std::string, size_t>>{{"a", 5}, {"b", 2}}));
  EXPECT_EQ(serve_all(queue), (std::vector<FairQueue::Id>{1, 10, 20, 2, 11, 3, 4, 5}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.clients(), 0u);
}

TEST(FairQueue, OneClientIsAFifoAndAGivenBackOneGoesFirst) {
  FairQueue queue;
  for (FairQueue::Id id = 1; id <= 3; ++id) queue.push(id, "");
  queue.push_first(9, "b");
  EXPECT_EQ(queue.peek(0), 9u);
  EXPECT_EQ(queue.peek(1), 1u);
  EXPECT_TRUE(queue.contains(9));
  EXPECT_EQ(serve_all(queue), (std::vector<FairQueue::Id>{9, 1, 2, 3}));
}

// Taking the second (the Dispatcher passes the first to a handler that kept the second's socket) uses the
// next client's turn, not the first one's; a connection that leaves uses no turn.
TEST(FairQueue, TakingTheSecondOrLeavingKeepsTheFirstClientsTurn) {
  FairQueue queue;
  queue.push(1, "a");
  queue.push(2, "a");
  queue.push(10, "b");
  queue.push(20, "c");
  EXPECT_EQ(queue.peek(1), 10u);
  queue.take(10);
  EXPECT_EQ(queue.peek(0), 1u);
  queue.erase(1);  // Its client left: a's turn is not used up.
  EXPECT_EQ(queue.peek(0), 2u);
  EXPECT_FALSE(queue.contains(1));
  EXPECT_EQ(serve_all(queue), (std::vector<FairQueue::Id>{2, 20}));
  queue.push(30, "d");
  EXPECT_EQ(queue.peek(1), std::nullopt);
}

TEST(Dispatcher, WaitingClientsAreServedInTurn) {
  Dispatcher dispatcher;
  dispatcher.look_up_client([](ConnectionId id) { return id < 200 ? std::string("a") : std::string("b"); });
  EXPECT_FALSE(dispatcher.handler_idle(1));
  ASSERT_TRUE(dispatcher.connection_ready(100));
  for (ConnectionId id = 101; id <= 105; ++id) EXPECT_FALSE(dispatcher.connection_ready(id));
  EXPECT_FALSE(dispatcher.connection_ready(200));
  EXPECT_EQ(dispatcher.queued_of("a"), 5u);
  EXPECT_EQ(dispatcher.queued_of("b"), 1u);
  std::vector<ConnectionId> order;
  for (ConnectionId current = 100; dispatcher.handler_done(1, current) == Dispatcher::Done::kFree;) {
    const std::optional<Assignment> next = dispatcher.handler_idle(1);
    if (!next) break;
    order.push_back(current = next->connection);
  }
  EXPECT_EQ(order, (std::vector<ConnectionId>{101, 200, 102, 103, 104, 105}));
}

TEST(Dispatcher, IdleHandlersAndWaitingConnectionsAreServedInFifoOrder) {
  Dispatcher dispatcher;
  EXPECT_FALSE(dispatcher.handler_idle(1));
  EXPECT_FALSE(dispatcher.handler_idle(2));
  auto first = dispatcher.connection_ready(100);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->handler, 1u);
  auto second = dispatcher.connection_ready(101);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->handler, 2u);

  EXPECT_FALSE(dispatcher.connection_ready(102));
  EXPECT_FALSE(dispatcher.connection_ready(103));
  EXPECT_EQ(dispatcher.waiting_connections(), 2u);
  EXPECT_EQ(dispatcher.busy_handlers(), 2u);

  ASSERT_EQ(dispatcher.handler_done(2, 101), Dispatcher::Done::kFree);
  auto next = dispatcher.handler_idle(2);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->connection, 102u);
  EXPECT_EQ(dispatcher.connection_of(2), 102u);
}

TEST(Dispatcher, AHandlerIsIdleOnlyOnceItReportsTheConnectionItHolds) {
  Dispatcher dispatcher;
  dispatcher.handler_idle(1);
  dispatcher.connection_ready(100);
  EXPECT_EQ(dispatcher.handler_done(1, 999), Dispatcher::Done::kNotHeld);
  EXPECT_EQ(dispatcher.handler_done(2, 100), Dispatcher::Done::kNotHeld);
  EXPECT_EQ(dispatcher.busy_handlers(), 1u);
  EXPECT_FALSE(dispatcher.connection_ready(101));  // Still busy: the next connection waits.
  EXPECT_EQ(dispatcher.handler_done(1, 100), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(1)->connection, 101u);
}

TEST(Dispatcher, AGoneHandlerGivesBackItsConnectionAndAGoneConnectionStopsWaiting) {
  Dispatcher dispatcher;
  dispatcher.handler_idle(1);
  dispatcher.handler_idle(2);
  dispatcher.connection_ready(100);
  EXPECT_EQ(dispatcher.handler_gone(1).current, 100u);
  EXPECT_EQ(dispatcher.handler_gone(2).current, std::nullopt);
  EXPECT_EQ(dispatcher.idle_handlers(), 0u);

  dispatcher.connection_ready(101);
  dispatcher.connection_ready(102);
  dispatcher.connection_gone(101);
  EXPECT_FALSE(dispatcher.is_waiting(101));
  EXPECT_EQ(dispatcher.handler_idle(3)->connection, 102u);
}

TEST(Dispatcher, OnlyARequestThatWouldWaitGoesAheadAndTheQueueStaysFirstComeFirstServed) {
  Dispatcher dispatcher;
  dispatcher.handler_idle(1);
  dispatcher.handler_idle(2);
  dispatcher.set_ahead_depth(1, 1);
  dispatcher.set_ahead_depth(2, 1);
  EXPECT_FALSE(dispatcher.connection_ready(100)->ahead);  // Idle handlers first.
  EXPECT_FALSE(dispatcher.connection_ready(101)->ahead);
  const auto ahead = dispatcher.connection_ready(102, {.preferred = 2});
  ASSERT_TRUE(ahead);
  EXPECT_TRUE(ahead->ahead);
  EXPECT_EQ(ahead->handler, 2u);
  EXPECT_EQ(dispatcher.ahead_holder(102), 2u);
  EXPECT_TRUE(dispatcher.is_being_served(102));
  EXPECT_EQ(dispatcher.connection_ready(103)->handler, 1u);  // The other one takes one ahead too.
  EXPECT_FALSE(dispatcher.connection_ready(104));            // Both hold one: it waits.
  EXPECT_FALSE(dispatcher.connection_ready(105, {.may_go_ahead = false}));
  EXPECT_EQ(dispatcher.waiting_connections(), 4u);  // Two queued, two ahead.

  // Done with its current one, handler 2 goes on with 102 and gets the longest waiting as its next.
  EXPECT_EQ(dispatcher.handler_done(2, 101), Dispatcher::Done::kGoesOnAhead);
  EXPECT_EQ(dispatcher.connection_of(2), 102u);
  const auto next = dispatcher.next_ahead(2);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->connection, 104u);
  EXPECT_FALSE(dispatcher.next_ahead(2));  // One ahead at a time.

  // A handler that comes free finds the oldest ahead first: 103 on handler 1, then 104 on handler 2.
  const auto any = [](HandlerId) { return true; };
  EXPECT_EQ(dispatcher.oldest_ahead(3, any)->connection, 103u);
  EXPECT_EQ(dispatcher.oldest_ahead(3, [](HandlerId holder) { return holder != 1; })->connection, 104u);
  EXPECT_EQ(dispatcher.oldest_ahead(1, any)->connection, 104u);  // Not its own.
  dispatcher.ahead_withdrawn(1, 103);
  EXPECT_FALSE(dispatcher.connection_ready(103, {.first_in_line = true}));
  EXPECT_EQ(dispatcher.handler_idle(3)->connection, 103u);  // Before 105, which came later.
  // Its withdrawn frame may still wait unread in handler 1's channel: nothing more goes ahead to it until it
  // reports.
  EXPECT_FALSE(dispatcher.next_ahead(1));

  // A handler that dies gives back both.
  const Dispatcher::Held held = dispatcher.handler_gone(2);
  EXPECT_EQ(held.current, 102u);
  EXPECT_EQ(held.aheads, std::vector<ConnectionId>{104});
  EXPECT_EQ(dispatcher.waiting_connections(), 1u);
}

// With a depth above one, a busy handler holds several, in the order they came; a request goes ahead to the
// handler that holds the fewest, a withdrawal takes out the one it names, and a handler that dies gives back
// every one.
TEST(Dispatcher, AHandlerHoldsUpToItsDepthAheadInOrderAndTheFewestTakesTheNext) {
  Dispatcher dispatcher;
  dispatcher.handler_idle(1);
  dispatcher.handler_idle(2);
  dispatcher.set_ahead_depth(1, 2);
  dispatcher.set_ahead_depth(2, 2);
  EXPECT_EQ(dispatcher.connection_ready(100)->handler, 1u);
  EXPECT_EQ(dispatcher.connection_ready(101)->handler, 2u);
  const HandlerId first = dispatcher.connection_ready(102)->handler;
  EXPECT_NE(dispatcher.connection_ready(103)->handler, first);  // The one that holds fewer.
  dispatcher.connection_ready(104);
  dispatcher.connection_ready(105);
  EXPECT_FALSE(dispatcher.connection_ready(106));  // Both are at their depth: it waits.
  const std::vector<ConnectionId> aheads = dispatcher.aheads_of(1);
  ASSERT_EQ(aheads.size(), 2u);
  EXPECT_LT(aheads[0], aheads[1]);  // In the order they came.
  EXPECT_EQ(dispatcher.aheads_of(2).size(), 2u);
  EXPECT_EQ(dispatcher.waiting_connections(), 5u);

  // Done with 100, handler 1 goes on with the oldest it holds, and may take the waiting one.
  EXPECT_EQ(dispatcher.handler_done(1, 100), Dispatcher::Done::kGoesOnAhead);
  EXPECT_EQ(dispatcher.connection_of(1), aheads[0]);
  EXPECT_EQ(dispatcher.next_ahead(1)->connection, 106u);
  EXPECT_FALSE(dispatcher.next_ahead(1));
  EXPECT_EQ(dispatcher.aheads_of(1), (std::vector<ConnectionId>{aheads[1], 106}));

  // A withdrawal takes out the one named, wherever it is; the oldest left is the next to take back.
  const std::vector<ConnectionId> others = dispatcher.aheads_of(2);
  dispatcher.ahead_withdrawn(2, others[1]);
  EXPECT_EQ(dispatcher.aheads_of(2), std::vector<ConnectionId>{others[0]});
  EXPECT_FALSE(dispatcher.ahead_holder(others[1]));
  EXPECT_EQ(dispatcher.oldest_ahead(3, [](HandlerId) { return true; })->connection,
            std::min(others[0], aheads[1]));

  const Dispatcher::Held held = dispatcher.handler_gone(1);
  EXPECT_EQ(held.current, aheads[0]);
  EXPECT_EQ(held.aheads, (std::vector<ConnectionId>{aheads[1], 106}));
  EXPECT_EQ(dispatcher.waiting_connections(), 1u);  // Handler 2's.
}

TEST(Dispatcher, NothingGoesAheadToAHandlerThatDoesNotTakeIt) {
  Dispatcher dispatcher;
  dispatcher.handler_idle(1);
  dispatcher.connection_ready(100);
  EXPECT_FALSE(dispatcher.connection_ready(101));
  dispatcher.set_ahead_depth(1, 1);
  dispatcher.set_ahead_depth(1, 0);  // Retiring.
  EXPECT_FALSE(dispatcher.next_ahead(1));
  EXPECT_EQ(dispatcher.handler_done(1, 100), Dispatcher::Done::kFree);
}

// Affinity: an idle handler that kept a connection's socket gets it, and a handler asking for work may take
// the connection behind the first when it kept that one and not the first, but the first is passed so only
// once.
TEST(Dispatcher, AKeptConnectionGoesToItsHandlerAndPassesTheFirstWaitingOneAtMostOnce) {
  Dispatcher dispatcher;
  std::unordered_map<ConnectionId, HandlerId> kept{{101, 2}, {103, 2}};
  dispatcher.look_up_kept_by([&](ConnectionId id) -> std::optional<HandlerId> {
    const auto it = kept.find(id);
    return it == kept.end() ? std::nullopt : std::optional(it->second);
  });
  dispatcher.handler_idle(1);
  dispatcher.handler_idle(2);
  const auto first = dispatcher.connection_ready(101);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->handler, 2u);  // Not the longest idle one: the one that kept it.
  ASSERT_TRUE(dispatcher.connection_ready(100));
  EXPECT_FALSE(dispatcher.connection_ready(102));
  EXPECT_FALSE(dispatcher.connection_ready(103));
  EXPECT_FALSE(dispatcher.connection_ready(104));
  EXPECT_FALSE(dispatcher.connection_ready(105));
  kept[105] = 2;

  ASSERT_EQ(dispatcher.handler_done(2, 101), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(2)->connection, 103u);  // 102 is passed once...
  ASSERT_EQ(dispatcher.handler_done(2, 103), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(2)->connection, 102u);  // ... and not again.
  ASSERT_EQ(dispatcher.handler_done(1, 100), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(1)->connection, 104u);  // Kept by 2: handler 1 takes 104 in turn.
  EXPECT_FALSE(dispatcher.connection_ready(106));
  EXPECT_FALSE(dispatcher.connection_ready(107));
  EXPECT_FALSE(dispatcher.connection_ready(108));
  kept[108] = 2;
  ASSERT_EQ(dispatcher.handler_done(2, 102), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(2)->connection, 105u);
  ASSERT_EQ(dispatcher.handler_done(2, 105), Dispatcher::Done::kFree);
  EXPECT_EQ(dispatcher.handler_idle(2)->connection, 106u);  // Only the one right behind the first.
  dispatcher.look_up_kept_by(nullptr);
}

TEST(Protocol, TheFirstBytesTellTheProtocol) {
  EXPECT_EQ(detect_protocol("GET /fib/30 HTTP/1.1\r\n"), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("DELETE "), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("GE"), Protocol::kUnknown);
  EXPECT_EQ(detect_protocol("fib 30\n"), Protocol::kLine);
  EXPECT_EQ(detect_protocol("PING\n"), Protocol::kLine);
  EXPECT_EQ(detect_protocol(" GET\n"), Protocol::kLine);
  EXPECT_EQ(detect_protocol("fib 3"), Protocol::kUnknown);  // The whole first line may still tell.
  // By the shape of the first line: whatever the method token, after empty lines, or a huge token.
  EXPECT_EQ(detect_protocol("get / HTTP/1.1\r\n"), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("-BLARGH /foo HTTP/1.1\r\n"), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("GET\t/ HTTP/1.1\r\n"), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("\r\n\r\nGET / HTTP/1.1\r\n"), Protocol::kHttp);
  EXPECT_EQ(detect_protocol("fib HTTP/1.1 please\n"), Protocol::kLine);
  EXPECT_EQ(detect_protocol(std::string(30, 'A')), Protocol::kHttp);
  EXPECT_EQ(detect_protocol(std::string(9000, 'a')), Protocol::kLine);
}

// What a fresh framing makes of bytes fed in pieces of piece bytes, as reads would bring them.
struct Framed {
  bool ready, complete, head_complete, continue_due;
};
Framed framed(Protocol protocol, std::string_view bytes, size_t piece = 1 << 20) {
  RequestFraming framing({.max_body_bytes = 1000});
  bool continue_due = false;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    framing.feed(protocol, bytes.substr(at, piece));
    continue_due = framing.take_continue() || continue_due;
  }
  return {framing.ready(), framing.complete(), framing.head_complete(), continue_due};
}

TEST(RequestFraming, EachProtocolEndsItsRequestItsOwnWay) {
  EXPECT_TRUE(framed(Protocol::kLine, "ping\n").complete);
  EXPECT_FALSE(framed(Protocol::kLine, "ping").ready);
  EXPECT_FALSE(framed(Protocol::kHttp, "GET / HTTP/1.1\r\nHost: x\r\n").ready);
  EXPECT_TRUE(framed(Protocol::kHttp, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").complete);
  EXPECT_FALSE(framed(Protocol::kUnknown, "GET\n").ready);
  // Byte by byte, and with the next request behind it.
  EXPECT_TRUE(framed(Protocol::kHttp, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\n", 1).complete);
}

TEST(RequestFraming, AnHttpRequestIsCompleteWithItsBody) {
  const std::string head = "POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
  const Framed waiting = framed(Protocol::kHttp, head + "hel");
  EXPECT_TRUE(waiting.head_complete);
  EXPECT_FALSE(waiting.ready);
  EXPECT_TRUE(framed(Protocol::kHttp, head + "hello", 3).complete);
  const std::string chunked = "POST /ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_FALSE(framed(Protocol::kHttp, chunked + "5\r\nhello\r\n").ready);
  EXPECT_TRUE(framed(Protocol::kHttp, chunked + "5\r\nhello\r\n0\r\n\r\n", 2).complete);
}

TEST(RequestFraming, WhatTheParserRefusesIsReadyAtOnceWithItsStatus) {
  // Malformed, or a body over the limit (declared or sent): the reactor answers it itself.
  for (const auto& [request, status] : std::vector<std::pair<std::string, int>>{
           {"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nHost: x\r\n\rZGET /pid HTTP/1.1\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\n\r\n", 400},  // No Host.
           {"BLARGH / HTTP/1.1\r\nHost: x\r\n\r\n", 501},
           {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
           {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413},
           {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
                std::string(1500, 'x'),
            413}}) {
    RequestFraming framing({.max_body_bytes = 1000});
    framing.feed(Protocol::kHttp, request);
    EXPECT_TRUE(framing.refused()) << request;
    EXPECT_FALSE(framing.complete()) << request;
    EXPECT_EQ(framing.refusal_status(), status) << request << framing.refusal_reason();
  }
}

// The reactor judges a line's length itself (413, "request too large"): by the line without its end, a CR
// before the LF not counted even when the two come in different reads, and a line with no end yet refused as
// soon as it is too long to become one that fits.
TEST(RequestFraming, ALineIsMeasuredWithoutItsEnd) {
  const auto lined = [](std::initializer_list<std::string_view> pieces) {
    auto framing = std::make_unique<RequestFraming>(http::RequestLimits{.max_body_bytes = 4});
    for (const std::string_view piece : pieces) framing->feed(Protocol::kLine, piece);
    return framing;
  };
  EXPECT_TRUE(lined({"abcd\n"})->complete());
  EXPECT_EQ(lined({"abcd\nping\n"})->request_bytes(), 5u);
  EXPECT_TRUE(lined({"abcd\r\n"})->complete());
  EXPECT_TRUE(lined({"abcd\r", "\n"})->complete());
  EXPECT_TRUE(lined({"ab", "cd", "\r\nx"})->complete());
  EXPECT_FALSE(lined({"abcd\r"})->ready());  // Its LF may come next.
  for (const auto& too_long :
       {lined({"abcde\n"}), lined({"abcde"}), lined({"abc", "de"}), lined({"abcd\rx"})}) {
    EXPECT_TRUE(too_long->refused());
    EXPECT_EQ(too_long->refusal_status(), 413);
    EXPECT_EQ(too_long->refusal_reason(), "request too large");
  }
}

TEST(RequestFraming, ContinueIsDueOnceWhenABodyIsAwaited) {
  RequestFraming framing({.max_body_bytes = 1000});
  framing.feed(Protocol::kHttp,
               "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_TRUE(framing.take_continue());
  EXPECT_FALSE(framing.take_continue());
  framing.feed(Protocol::kHttp, "ab");
  EXPECT_TRUE(framing.complete());
  // Not for HTTP/1.0, nor when the body came along with the head.
  EXPECT_FALSE(framed(Protocol::kHttp, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
                   .continue_due);
  EXPECT_FALSE(framed(Protocol::kHttp,
                      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nab")
                   .continue_due);
  // Starting over for the next request forgets the last.
  framing.reset();
  framing.feed(Protocol::kHttp, "GET / HTTP/1.1\r\n");
  EXPECT_FALSE(framing.ready());
  EXPECT_FALSE(framing.head_complete());
}

// With a read chunk of 10 bytes, a connection that holds this much is a large request: the reserve is not
// its.
constexpr size_t kLarge = 10;

TEST(ReadBudget, PausesReadersWhenSpentAndResumesThemLongestPausedFirst) {
  std::vector<ConnectionId> resumed;
  ReadBudget budget(100, 10, [&](ConnectionId id) {
    resumed.push_back(id);
    return id != 3;  // Connection 3 is gone by the time it is resumed.
  });
  EXPECT_TRUE(budget.may_read(1, kLarge));
  budget.update(0, 60);
  budget.update(0, 50);                      // Connection 2 holds 50: spent.
  EXPECT_TRUE(budget.may_read(1, kLarge));   // The first to ask may read on past the limit...
  EXPECT_FALSE(budget.may_read(3, kLarge));  // ...the others wait.
  EXPECT_FALSE(budget.may_read(4, kLarge));
  EXPECT_FALSE(budget.may_read(5, kLarge));
  EXPECT_EQ(budget.paused(), 3u);
  budget.cancel_pause();  // Connection 3 closes while it waits.
  budget.update(60, 0);   // Connection 1 handed its request off: 50 held, room for 5 chunks.
  EXPECT_EQ(resumed, (std::vector<ConnectionId>{3, 4, 5}));
  EXPECT_EQ(budget.paused(), 0u);
  EXPECT_EQ(budget.held(), 50u);
}

TEST(ReadBudget, TheReaderPastTheLimitPassesItsTurnOnWhenItStops) {
  std::vector<ConnectionId> resumed;
  ReadBudget budget(100, 10, [&](ConnectionId id) {
    resumed.push_back(id);
    return true;
  });
  budget.update(0, 100);
  EXPECT_TRUE(budget.may_read(1, kLarge));
  EXPECT_FALSE(budget.may_read(2, kLarge));
  budget.update(0, 50);  // Connection 1 read past the limit: 150 held, nobody resumed.
  EXPECT_TRUE(resumed.empty());
  budget.stop_reading(1);  // Its request is ready: connection 2 may read past the limit now.
  EXPECT_EQ(resumed, (std::vector<ConnectionId>{2}));
  EXPECT_TRUE(budget.may_read(2, kLarge));
  EXPECT_FALSE(budget.may_read(3, kLarge));
}

// Reproduces: stalled uploads that held the whole budget kept a 7-byte request on a fresh connection from
// being read at all. An eighth of the limit is kept for connections that hold less than a small request.
TEST(ReadBudget, SmallRequestsReadFromTheReserveWhileLargeOnesWait) {
  ReadBudget budget(100, 10, [](ConnectionId) { return true; });
  budget.update(0, 90);  // Large requests hold 90 of 100: spent for them, the reserve (12) aside.
  EXPECT_TRUE(budget.may_read(1, kLarge));   // The one past the limit...
  budget.update(0, 50);                      // ...reads on, past the whole limit.
  EXPECT_FALSE(budget.may_read(2, kLarge));  // Waits.
  EXPECT_TRUE(budget.pressure());
  EXPECT_TRUE(
      budget.may_read(3, 0));  // A fresh connection reads from the reserve, which no large one took...
  budget.update(0, 9);
  budget.update(0, 9);  // ...until small requests hold all of it.
  EXPECT_FALSE(budget.may_read(4, 0));
  EXPECT_EQ(budget.paused(), 2u);
}

TEST(Protocol, RefusalsSpeakTheClientsProtocol) {
  EXPECT_EQ(refusal_message(Protocol::kLine, Refusal::kBusy), "ERR busy\n");
  EXPECT_EQ(refusal_message(Protocol::kLine, Refusal::kHandlerCrashed), "ERR handler crashed\n");
  const std::string busy = refusal_message(Protocol::kHttp, Refusal::kBusy);
  EXPECT_TRUE(busy.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << busy;
  EXPECT_NE(busy.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(busy.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(busy.ends_with("Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n"))
      << busy;
  EXPECT_TRUE(refusal_message(Protocol::kHttp, Refusal::kHandlerCrashed).starts_with("HTTP/1.1 502 "));
  EXPECT_TRUE(refusal_message(Protocol::kHttp, Refusal::kTimeout).starts_with("HTTP/1.1 504 "));
  EXPECT_TRUE(refusal_message(Protocol::kHttp, Refusal::kReadTimeout).starts_with("HTTP/1.1 408 "));
}

}  // namespace
}  // namespace handoff::reactor
