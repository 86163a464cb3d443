// Integration tests of the admin port: health, stats, Prometheus metrics (checked by promtool), the status
// page (in headless Chromium, with a screenshot), pool resizing, and the logs.

#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <atomic>
#include <filesystem>
#include <optional>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

HttpResponse admin(const ReactorProcess& reactor, const std::string& method, const std::string& target) {
  return reactor.admin(method, target);
}

// Runs a Python snippet on input (json, promtool-free checks); returns its stdout.
std::string python(const std::string& script, const std::string& input) {
  const ProgramResult result = run_program({"python3", "-c", script}, input, 30s);
  EXPECT_EQ(result.status, 0) << result.err;
  return result.out;
}

size_t occurrences(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

std::string artifacts_folder() {
  const char* folder = std::getenv("HANDOFF_ARTIFACTS");
  const std::string path = folder != nullptr ? folder : "/tmp";
  std::filesystem::create_directories(path);
  return path;
}

TEST(Admin, EndpointsAnswerAndBadRequestsGetHttpErrors) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_NE(reactor.admin_port(), 0);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
  // The handler reports the answer after writing it, and lingers on the connection until it sees it close.
  ASSERT_TRUE(
      wait_until([&] { return reactor.requests_answered() == 1 && reactor.idle_handlers() == 2; }, 5s));

  const HttpResponse health = admin(reactor, "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\n");
  const HttpResponse page = admin(reactor, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_TRUE(page.has_header("Content-Type: text/html; charset=utf-8"));
  EXPECT_NE(page.body.find("<title>handoff status</title>"), std::string::npos);
  EXPECT_EQ(page.body.find("<script src"), std::string::npos);  // Self-contained.

  const HttpResponse stats = admin(reactor, "GET", "/stats");
  EXPECT_TRUE(stats.has_header("Content-Type: application/json"));
  EXPECT_EQ(
      python(
          "import json, sys\n"
          "s = json.load(sys.stdin)\n"
          "print(s['status'], s['pool']['target'], len(s['handlers']), s['counters']['requests'] >= 1,\n"
          "      sorted(s['counters']['errors']), s['histograms']['service']['count'] >= 1,\n"
          "      all(h['resident_bytes'] > 0 and h['state'] in ('idle', 'starting') for h in s['handlers']))",
          stats.body),
      "serving 2 2 True ['bad_request', 'busy', 'crashed', 'handler_error', 'read_timeout', 'shutting_down', "
      "'timeout', 'write_timeout'] True True\n");

  EXPECT_EQ(admin(reactor, "GET", "/nothing").status, 404);
  const HttpResponse post = admin(reactor, "POST", "/healthz");
  EXPECT_EQ(post.status, 405);
  EXPECT_TRUE(post.has_header("Allow: GET, HEAD"));
  EXPECT_EQ(admin(reactor, "HEAD", "/healthz").status, 200);
  Client garbage(reactor.host(), reactor.admin_port());
  garbage.send("GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n");
  EXPECT_EQ(read_response(garbage).status, 400);
}

TEST(Admin, MetricsPassPromtoolAfterLoad) {
  ReactorProcess reactor({"--handlers", "2", "--max-queue", "1"});
  for (int i = 0; i < 20; ++i) ask(reactor.host(), reactor.port(), "fib 15");
  ask(reactor.host(), reactor.port(), "nonsense");
  // A client has its answer a moment before the reactor has the handler's report of it.
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 21; }, 10s)) << reactor.stats();
  const HttpResponse metrics = admin(reactor, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(metrics.has_header("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
  const ProgramResult check = run_program({"promtool", "check", "metrics"}, metrics.body, 30s);
  EXPECT_EQ(check.status, 0) << check.out << check.err << metrics.body;
  for (const char* line : {"handoff_requests_total 21\n", "handoff_errors_total{kind=\"bad_request\"} 1\n",
                           "handoff_handlers_target 2\n", "handoff_service_seconds_count 21\n",
                           "handoff_service_seconds_bucket{le=\"+Inf\"} 21\n",
                           "# TYPE handoff_queue_wait_seconds histogram\n"}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line;
  }
}

// A route's name is the handler's to choose and goes into a label value: a quote or a backslash in it is
// escaped as the text format says, and promtool accepts the page.
TEST(Admin, RouteNamesAreEscapedInLabelValues) {
  TemporaryFolder folder;
  const std::string handler = python_handler(folder, "odd_names.py", "",
                                             "@handler.command('say\"hi', retryable=True)\n"
                                             "def say(request):\n"
                                             "    return 'hi'\n"
                                             "@handler.command('back\\\\slash')\n"
                                             "def back(request):\n"
                                             "    return 'back'\n");
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", handler});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "say\"hi"), "hi");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "back\\slash"), "back");
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 2; }, 10s)) << reactor.stats();
  const HttpResponse metrics = admin(reactor, "GET", "/metrics");
  const ProgramResult check = run_program({"promtool", "check", "metrics"}, metrics.body, 30s);
  EXPECT_EQ(check.status, 0) << check.out << check.err << metrics.body;
  for (const char* line : {"handoff_route_requests_total{route=\"say\\\"hi\",class=\"2xx\"} 1\n",
                           "handoff_route_requests_total{route=\"back\\\\slash\",class=\"2xx\"} 1\n"}) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << metrics.body;
  }
  EXPECT_EQ(python("import json, sys\n"
                   "print(sorted(r['route'] for r in json.load(sys.stdin)['routes']))",
                   admin(reactor, "GET", "/stats").body),
            "['back\\\\slash', 'say\"hi']\n");
}

TEST(Admin, HealthzAnswersAtOnceWhileEveryHandlerIsBusy) {
  ReactorProcess reactor({"--handlers", "1"});
  std::vector<std::thread> load;
  for (int i = 0; i < 3; ++i) {
    load.emplace_back([&] { ask(reactor.host(), reactor.port(), "spin 1500"); });
  }
  ASSERT_TRUE(wait_until(
      [&] { return reactor.queue_length() == 2 && reactor.stat_real("current_request_seconds") > 0.1; }, 10s))
      << reactor.stats();
  Clock::duration slowest{};
  for (int i = 0; i < 10; ++i) {
    const Clock::time_point start = Clock::now();
    EXPECT_EQ(admin(reactor, "GET", "/healthz").status, 200);
    slowest = std::max(slowest, Clock::now() - start);
  }
  EXPECT_LT(slowest, 500ms);  // Generous: it is served on the reactor's loop, never behind the handlers.
  const std::string busy = python(
      "import json, sys\n"
      "s = json.load(sys.stdin)\n"
      "h = s['handlers'][0]\n"
      "print(h['state'], h['current_request_seconds'] > 0.1, s['pool']['queue_length'])",
      admin(reactor, "GET", "/stats").body);
  EXPECT_EQ(busy, "busy True 2\n");
  for (std::thread& thread : load) thread.join();
}

// Each open connection is counted in the one state it is in: an idle client reading, a request a handler
// serves, and requests waiting for it (one of them may be sent ahead to it: it waits all the same).
TEST(Admin, StatsCountTheConnectionsByState) {
  ReactorProcess reactor({"--handlers", "1"});
  Client idle(reactor.host(), reactor.port());
  std::vector<std::thread> load;
  for (int i = 0; i < 3; ++i) {
    load.emplace_back([&] { ask(reactor.host(), reactor.port(), "spin 1500"); });
  }
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 2; }, 10s)) << reactor.stats();
  const std::string by_state = python(
      "import json, sys\n"
      "c = json.load(sys.stdin)['connections']\n"
      "print(c['reading'], c['served'], c['queued'], c['paused'], c['stopped'], c['draining'])",
      admin(reactor, "GET", "/stats").body);
  EXPECT_EQ(by_state, "1 1 2 0 0 0\n");
  const std::string metrics = admin(reactor, "GET", "/metrics").body;
  EXPECT_NE(metrics.find("handoff_connections{state=\"queued\"} 2\n"), std::string::npos) << metrics;
  for (std::thread& thread : load) thread.join();
}

TEST(Admin, HealthzIs503WhileDraining) {
  auto reactor = std::make_unique<ReactorProcess>(std::vector<std::string>{"--handlers", "1"});
  Client busy(reactor->host(), reactor->port());
  busy.send("spin 1000\n");
  ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
  ::kill(reactor->pid(), SIGTERM);
  ASSERT_TRUE(reactor->wait_for_log("finishing", 5s));
  const HttpResponse health = admin(*reactor, "GET", "/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, "draining\n");
  EXPECT_EQ(busy.read_line(), "spun 1000");
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 1);  // The second signal stops it at once.
}

// A balancer's drain (HAProxy's httpchk on /healthz): out of rotation, the reactor still serves everyone who
// comes, and tells keep-alive clients to reconnect (through the balancer, elsewhere).
TEST(Admin, PostDrainTurnsHealthz503AndClosesKeepAliveButStillServes) {
  ReactorProcess reactor({"--handlers", "2"});
  Client keep_alive(reactor.host(), reactor.port());
  keep_alive.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(read_response(keep_alive).status, 200);
  Client in_progress(reactor.host(), reactor.port());
  ASSERT_TRUE(in_progress.send("spin 300\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 5s));
  EXPECT_EQ(admin(reactor, "GET", "/drain").status, 405);
  const HttpResponse drain = admin(reactor, "POST", "/drain");
  EXPECT_EQ(drain.status, 200);
  EXPECT_NE(drain.body.find("draining"), std::string::npos) << drain.body;
  EXPECT_EQ(admin(reactor, "POST", "/drain").status, 200);  // Asked twice: the same.
  const HttpResponse health = admin(reactor, "GET", "/healthz");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, "draining\n");
  EXPECT_NE(reactor.stats().find("\"status\":\"leaving\""), std::string::npos) << reactor.stats();
  EXPECT_EQ(in_progress.read_line(), "spun 300");  // A request in progress finishes.

  keep_alive.send("GET /fib/10 HTTP/1.1\r\nHost: x\r\n\r\n");
  const HttpResponse last = read_response(keep_alive);
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.body, "55\n");
  EXPECT_TRUE(last.has_header("Connection: close")) << last.headers;
  EXPECT_TRUE(keep_alive.wait_closed(5s));
  // New connections are still served, until the balancer stops sending them.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 10"), "55");
  Client fresh(reactor.host(), reactor.port());
  fresh.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(read_response(fresh).status, 200);
  EXPECT_EQ(reactor.signal_and_wait(SIGTERM, 10s), 0);
}

TEST(Admin, ThePoolGrowsAndShrinksLive) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  const HttpResponse grown = admin(reactor, "POST", "/pool?size=3");
  EXPECT_EQ(grown.status, 200);
  EXPECT_EQ(grown.body, "pool size 3\n");
  EXPECT_TRUE(reactor.wait_for_handlers(3, 10s));
  ::kill(reactor.pid(), SIGTTOU);
  EXPECT_TRUE(reactor.wait_for_handlers(2, 10s));
  ::kill(reactor.pid(), SIGTTIN);
  EXPECT_TRUE(reactor.wait_for_handlers(3, 10s));

  for (const char* bad : {"/pool?size=0", "/pool?size=5000", "/pool?size=abc", "/pool", "/pool?size="}) {
    EXPECT_EQ(admin(reactor, "POST", bad).status, 400) << bad;
  }
  EXPECT_EQ(admin(reactor, "GET", "/pool?size=2").status, 405);

  // Shrinking lets a busy handler finish its request first.
  Client busy(reactor.host(), reactor.port());
  busy.send("spin 800\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  EXPECT_EQ(admin(reactor, "POST", "/pool?size=1").status, 200);
  EXPECT_EQ(busy.read_line(), "spun 800");
  EXPECT_TRUE(reactor.wait_for_handlers(1, 10s));
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

// A web page the operator opened could drive the admin port: a cross-origin POST was obeyed, and a host name
// that resolves to loopback (DNS rebinding) was answered.
TEST(Admin, RequestsABrowserWasMadeToSendAreRefused) {
  ReactorProcess reactor({"--handlers", "2"});
  const auto post_pool = [&](const std::string& headers) {
    Client client(reactor.host(), reactor.admin_port());
    client.send("POST /pool?size=3 HTTP/1.1\r\n" + headers + "\r\n");
    return read_response(client);
  };
  const std::string host = "Host: 127.0.0.1:" + std::to_string(reactor.admin_port()) + "\r\n";
  EXPECT_EQ(post_pool(host + "Origin: http://evil.example\r\n").status, 403);
  EXPECT_EQ(post_pool("Host: evil.example:" + std::to_string(reactor.admin_port()) + "\r\n").status, 403);
  EXPECT_EQ(reactor.stat("pool.target"), 2) << "a refused request changed the pool";
  // The status page's own origin, and curl (no Origin), are served.
  EXPECT_EQ(
      post_pool(host + "Origin: http://127.0.0.1:" + std::to_string(reactor.admin_port()) + "\r\n").status,
      200);
  EXPECT_EQ(post_pool("Host: localhost\r\n").status, 200);
  EXPECT_EQ(reactor.stat("pool.target"), 3);
}

TEST(Admin, JsonLogsAndAnAccessLineForEveryRequest) {
  auto reactor = std::make_unique<ReactorProcess>(
      std::vector<std::string>{"--handlers", "1", "--log-format", "json", "--access-log", "on"});
  EXPECT_EQ(ask(reactor->host(), reactor->port(), "fib 10"), "55");
  Client client(reactor->host(), reactor->port());
  client.send("GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 404);
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0);
  const std::string lines = python(
      "import json, sys\n"
      "records = [json.loads(line) for line in sys.stdin]\n"
      "access = [r for r in records if r.get('type') == 'access']\n"
      "print(len(access), [(r['protocol'], r['request'], r['status']) for r in access])\n"
      "print(all(set(r) >= {'time', 'peer', 'queue_ms', 'service_ms', 'bytes', 'handler_pid'} for r in "
      "access))\n"
      "print(any('serving with 1 handler: ' in r.get('message', '') for r in records))",
      reactor->stderr_text());
  EXPECT_EQ(lines, "2 [('line', 'fib 10', 200), ('http', 'GET /nothing HTTP/1.1', 404)]\nTrue\nTrue\n");
}

// Whatever ended a request, its access line has the request, the status the client got as a number, the
// reactor's reason in a field of its own, the time it waited and ran, and the handler's pid. The reactor's
// verdicts were logged as "ERR timeout" with no request line and no times, and a 400's reason nowhere.
TEST(Admin, EveryOutcomeHasAnAccessLineWithTheStatusTheClientGotAndTheReactorsReason) {
  auto reactor = std::make_unique<ReactorProcess>(std::vector<std::string>{
      "--handlers", "1", "--max-queue", "1", "--queue-timeout", "5s", "--request-timeout", "60s",
      "--read-timeout", "1s", "--log-format", "json", "--access-log", "on", "--retry-crashed", "off"});
  const pid_t first_pid = reactor->handler_pids().at(0);
  {  // 200, and a 400 whose reason the client reads in the body.
    Client client(reactor->host(), reactor->port());
    client.send("GET /fib/10 HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(read_response(client).status, 200);
    client.send("POST /fib/10 HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n");
    const HttpResponse refused = read_response(client);
    EXPECT_EQ(refused.status, 400);
    EXPECT_NE(refused.body.find("Content-Length"), std::string::npos) << refused.body;
  }
  {  // 408: a head that never ends.
    Client client(reactor->host(), reactor->port());
    client.send("GET /fib/11 HTTP/1.1\r\nHost: a\r\n");
    EXPECT_EQ(read_response(client).status, 408);
  }
  {  // 503 twice: the queue is full, and a request waited --queue-timeout; 499: one whose client left.
    Client stuck(reactor->host(), reactor->port());
    stuck.send("spin 1000\n");
    ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
    StoppedProcess stopped(first_pid);
    ASSERT_TRUE(stopped.stopped());
    Client waiting(reactor->host(), reactor->port());
    waiting.send("GET /fib/12 HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_TRUE(wait_until([&] { return reactor->queue_length() == 1; }, 10s));
    Client turned_away(reactor->host(), reactor->port());
    turned_away.send("GET /fib/13 HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(read_response(turned_away).status, 503);
    EXPECT_EQ(read_response(waiting).status, 503);  // After --queue-timeout.
    std::optional<Client> leaving(std::in_place, reactor->host(), reactor->port());
    leaving->send("GET /fib/14 HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_TRUE(wait_until([&] { return reactor->queue_length() == 1; }, 10s));
    leaving.reset();
    ASSERT_TRUE(wait_until([&] { return reactor->stat("counters.abandoned") == 1; }, 10s));
    stopped.resume();
    EXPECT_EQ(stuck.read_line(), "spun 1000");
  }
  {  // 499: the client left a request that ran, which was cancelled.
    std::optional<Client> leaving(std::in_place, reactor->host(), reactor->port());
    leaving->send("GET /spin/60000 HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
    leaving.reset();
    ASSERT_TRUE(wait_until([&] { return reactor->stat("counters.cancelled") == 1; }, 10s));
    ASSERT_TRUE(reactor->wait_for_handlers(1, 10s));
  }
  {  // 502: the handler died in the middle of a request.
    Client client(reactor->host(), reactor->port());
    client.send("GET /spin/60000 HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
    reactor->expect_crash_reports();
    const pid_t victim = reactor->handler_pids().at(0);
    ASSERT_GT(victim, 0);
    ::kill(victim, SIGKILL);
    EXPECT_EQ(read_response(client).status, 502);
  }
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0);
  const std::string lines = python(
      "import json, sys\n"
      "for r in (json.loads(line) for line in sys.stdin):\n"
      "  if r.get('type') != 'access': continue\n"
      "  print(r['status'], r['request'], '|', r.get('reason', '-'), '|', r['handler_pid'] > 0,\n"
      "        r['bytes'] > 0, r['queue_ms'] >= 5000, r['service_ms'] > 0)\n",
      reactor->stderr_text());
  // Status, request, reason; a handler's pid, bytes sent, waited --queue-timeout, ran.
  for (const std::string expected : {
           "200 GET /fib/10 HTTP/1.1 | - | True True False True\n",
           "400 POST /fib/10 HTTP/1.1 | malformed request: Invalid character in Content-Length | False True "
           "False False\n",
           "408 GET /fib/11 HTTP/1.1 | read timeout | False True False False\n",
           "200 spin 1000 | - | True True False True\n",
           "503 GET /fib/13 HTTP/1.1 | busy: the queue is full | False True False False\n",
           "503 GET /fib/12 HTTP/1.1 | busy: waited --queue-timeout | False True True False\n",
           "499 GET /fib/14 HTTP/1.1 | the client left while its request waited | False False False False\n",
           "499 GET /spin/60000 HTTP/1.1 | cancelled: the client left | True False False True\n",
           "502 GET /spin/60000 HTTP/1.1 | handler crashed | True True False True\n",
       }) {
    EXPECT_EQ(occurrences(lines, expected), 1u) << expected << " in\n" << lines;
  }
  EXPECT_EQ(occurrences(lines, "\n"), 9u) << lines;
}

// Without the access log, the reason the reactor refused a request was logged nowhere, not even at debug.
TEST(Admin, WithoutTheAccessLogARefusalsReasonIsLoggedAtDebug) {
  ReactorProcess reactor({"--handlers", "1", "--log-level", "debug"});
  Client client(reactor.host(), reactor.port());
  client.send("POST /fib/10 HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 400);
  EXPECT_TRUE(reactor.wait_for_log("debug: http request from 127.0.0.1:", 10s)) << reactor.stderr_text();
  EXPECT_TRUE(reactor.wait_for_log(": 400 (malformed request: Invalid character in Content-Length)", 10s))
      << reactor.stderr_text();
}

// The JSON access log copied invalid UTF-8 from clients, and strict JSON parsers rejected the line.
TEST(Admin, TheJsonAccessLogIsValidUtf8WhateverTheClientSends) {
  auto reactor = std::make_unique<ReactorProcess>(
      std::vector<std::string>{"--handlers", "1", "--log-format", "json", "--access-log", "on"});
  ask(reactor->host(), reactor->port(), "fib \xff\xfe caf\xc3\xa9");
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0);
  // Python reads its stdin as strict UTF-8: one invalid byte fails the whole script.
  const std::string requests = python(
      "import json, sys\n"
      "records = [json.loads(line) for line in sys.stdin]\n"
      "print(ascii([r['request'] for r in records if r.get('type') == 'access']))",
      reactor->stderr_text());
  EXPECT_EQ(requests, "['fib \\ufffd\\ufffd caf\\xe9']\n");
}

// --- Log lines that tell the truth ---

// Under load, handlers the reactor retired (--max-requests, a reload) were logged at warn as "killed by
// signal 9 (Killed)": it SIGKILLed each one whose channel it read the end of, though it had ended that
// channel itself to let the handler exit, and the kill raced the exit.
TEST(Admin, RetiredHandlersAreLoggedAsRetiredNotAsKilled) {
  ReactorProcess reactor({"--handlers", "2", "--max-requests", "50"});
  constexpr int kClients = 8, kRequests = 300;
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&] {
      Client client(reactor.host(), reactor.port());
      for (int i = 0; i < kRequests && client.send("fib 10\n") && client.read_line() == "55"; ++i) ++answered;
    });
  }
  // A reload in the middle retires busy handlers too.
  wait_until([&] { return answered > kClients * kRequests / 3; }, 30s);
  ::kill(reactor.pid(), SIGHUP);
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(answered, kClients * kRequests);
  // The reload alone retires both handlers; --max-requests more, as many as the hand-offs allow (the fewer,
  // the more requests a kept connection's handler serves in one).
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.handler_exits") >= 4; }, 10s))
      << reactor.stats();
  const int64_t exits = reactor.stat("counters.handler_exits");
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(log.find(" warn: "), std::string::npos) << log;
  EXPECT_EQ(log.find("(Killed)\n"), std::string::npos) << log;  // A kill the line gives no reason for.
  // Each exit has its line: retired, or (a replacement still starting when the reload came) killed by it.
  const size_t retired = occurrences(log, " retired after "),
               superseded = occurrences(log, " (Killed): a newer reload replaces it\n");
  EXPECT_GE(retired + superseded, static_cast<size_t>(exits)) << log;
  EXPECT_EQ(occurrences(log, " info: handler "), retired + superseded) << log;
}

// A handler that chose to exit (sys.exit(0)) was logged as killed by signal 9: the reactor read the EOF of
// its channel and SIGKILLed it before it was gone.
TEST(Admin, AHandlerThatExitsByItselfIsLoggedSo) {
  TemporaryFolder folder;
  const std::string command =
      python_handler(folder, "leaving.py", "import sys\n", python_command("leave", {"sys.exit(0)"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command});
  for (int i = 0; i < 3; ++i) {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send("leave\n"));
    client.wait_closed(5s);
    ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.handler_exits") == i + 1; }, 10s));
    ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  }
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log;
  EXPECT_EQ(occurrences(log, "info: handler "), 3u) << log;
  EXPECT_EQ(occurrences(log, " exited by itself with status 0 after 0 requests\n"), 3u) << log;
}

// A pool of 2 whose reload failed said "3 old handlers keep serving": the new handler that failed counted.
TEST(Admin, AnAbandonedReloadCountsTheOldHandlersThatServeOn) {
  TemporaryFolder folder;
  const std::string broken = folder.path("broken");
  ReactorProcess reactor(
      {"--handlers", "2", "--handler-cmd",
       "sh -c 'test -e " + broken + " && exit 1; exec " + environment("HANDOFF_HANDLER") + "'"});
  folder.file("broken", "");
  ::kill(reactor.pid(), SIGHUP);
  ASSERT_TRUE(reactor.wait_for_log("reload abandoned", 10s)) << reactor.stderr_text();
  ASSERT_TRUE(wait_until([&] { return reactor.handler_pids().size() == 2; }, 10s));
  const std::string log = reactor.stderr_text();
  EXPECT_NE(log.find("; 2 old handlers keep serving"), std::string::npos) << log;
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 10"), "55");
}

// "serving with 1 handlers: python3" named the interpreter only.
TEST(Admin, TheStartLineNamesTheWholeHandlerCommand) {
  TemporaryFolder folder;
  const std::string command = python_spin_handler(folder);
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command});
  EXPECT_TRUE(reactor.wait_for_log("info: serving with 1 handler: " + command + "\n", 5s))
      << reactor.stderr_text();
}

// --- The admin port's share of the descriptors ---

// With 256 descriptors, 400 idle admin connections took them all: the service port stopped accepting and
// /healthz took 4.5 s. The admin port holds a bounded number of connections; at the bound the oldest that has
// not sent a request makes room, so a scraper or a health checker is answered however many idle ones come.
TEST(Admin, IdleAdminConnectionsLeaveTheServicePortAndHealthzTheirRoom) {
  ReactorProcess reactor({"--handlers", "1"}, 256);
  std::vector<Client> idle;
  for (int i = 0; i < 400; ++i) idle.emplace_back(reactor.host(), reactor.admin_port());
  // The reactor has taken from its backlog what it will take.
  ASSERT_TRUE(wait_until(
      [&] {
        const size_t before = reactor.open_descriptors();
        std::this_thread::sleep_for(100ms);
        return reactor.open_descriptors() == before;
      },
      10s));

  Client service(reactor.host(), reactor.port());
  ASSERT_TRUE(service.send("fib 10\n"));
  EXPECT_EQ(service.read_line(5s), "55");
  for (int i = 0; i < 5; ++i) {
    const Clock::time_point start = Clock::now();
    EXPECT_EQ(admin(reactor, "GET", "/healthz").status, 200);
    EXPECT_LT(Clock::now() - start, 500ms);
    EXPECT_EQ(admin(reactor, "GET", "/metrics").status, 200);
  }
}

TEST(Admin, TheLogLevelFilters) {
  auto reactor =
      std::make_unique<ReactorProcess>(std::vector<std::string>{"--handlers", "1", "--log-level", "error"});
  EXPECT_EQ(ask(reactor->host(), reactor->port(), "ping"), "pong");
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0);
  EXPECT_EQ(reactor->stderr_text(), "");
}

TEST(Admin, TheStatusPageLoadsInChromiumAndShowsTheHandlers) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  for (int i = 0; i < 10; ++i) ask(reactor.host(), reactor.port(), "fib 18");
  Client busy(reactor.host(), reactor.port());
  busy.send("spin 4000\n");  // One handler shows as busy.
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));

  const std::string url = "http://127.0.0.1:" + std::to_string(reactor.admin_port()) + "/";
  const std::string screenshot = artifacts_folder() + "/status-page.png";
  const std::vector<std::string> chromium = {"chromium",
                                             "--headless",
                                             "--no-sandbox",
                                             "--disable-gpu",
                                             "--disable-quic",
                                             "--no-first-run",
                                             "--disable-background-networking",
                                             "--disable-component-update",
                                             "--disable-sync",
                                             "--user-data-dir=" + artifacts_folder() + "/chromium-profile",
                                             "--window-size=1100,1000",
                                             "--virtual-time-budget=3000",
                                             "--enable-logging=stderr",
                                             "--v=0"};
  std::vector<std::string> shoot = chromium;
  shoot.insert(shoot.end(), {"--screenshot=" + screenshot, url});
  const ProgramResult shot = run_program(shoot, "", 90s);
  EXPECT_EQ(shot.status, 0) << shot.err;
  EXPECT_TRUE(std::filesystem::exists(screenshot));
  std::printf("status page screenshot: %s\n", screenshot.c_str());

  std::vector<std::string> dump = chromium;
  dump.insert(dump.end(), {"--dump-dom", url});
  const ProgramResult dom = run_program(dump, "", 90s);
  EXPECT_EQ(dom.status, 0) << dom.err;
  for (pid_t handler : reactor.handler_pids()) {
    EXPECT_NE(dom.out.find("<td>" + std::to_string(handler) + "</td>"), std::string::npos) << handler;
  }
  EXPECT_NE(dom.out.find("<span class=\"state busy\">busy</span>"), std::string::npos);
  EXPECT_NE(dom.out.find("<td>fib</td><td>10</td><td>10</td>"), std::string::npos);  // The busiest route.
  EXPECT_NE(dom.out.find(">serving<"), std::string::npos);
  // The page's own errors (a failed fetch, a script exception) would show as console messages.
  for (const std::string& err : {shot.err, dom.err}) {
    EXPECT_EQ(err.find("CONSOLE"), std::string::npos) << err;
    EXPECT_EQ(err.find("Uncaught"), std::string::npos) << err;
  }
  EXPECT_EQ(busy.read_line(), "spun 4000");
}

}  // namespace
}  // namespace handoff::testing
