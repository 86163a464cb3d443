// Integration tests of the web API of the handler libraries: one test, two languages. The same small web
// service (handler/examples/notes.cpp and notes.py) behind the real reactor, over real sockets: any method,
// "/", path parameters, a 405 that says what is allowed, a raw target that keeps %2F and a trailing slash, a
// fallback, redirects, two Set-Cookie, JSON, the client's address, a header with CR LF refused, an exception
// whose text only --expose-errors shows, and what a Python handler does when it is retired while busy.

#include <signal.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using namespace std::chrono_literals;

class WebApi : public ::testing::TestWithParam<std::string> {
 protected:
  // One handler: the notes live in its memory.
  ReactorProcess start(std::vector<std::string> more = {}) {
    std::vector<std::string> arguments = {"--handlers", "1", "--handler-cmd", GetParam()};
    arguments.insert(arguments.end(), more.begin(), more.end());
    return ReactorProcess(arguments);
  }
};

HttpResponse round_trip(Client& client, const std::string& request) {
  EXPECT_TRUE(client.send(request));
  return read_response(client, request.starts_with("HEAD "));
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
}

std::string with_body(const std::string& method, const std::string& target, const std::string& body) {
  return method + " " + target + " HTTP/1.1\r\nHost: a\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

TEST_P(WebApi, RoutesTakeAnyMethodAndTheRootAndA405SaysWhatIsAllowed) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  EXPECT_EQ(round_trip(client, get("/")).body, "0 notes\n");
  const HttpResponse stored = round_trip(client, with_body("PUT", "/notes/7", "buy milk"));
  EXPECT_EQ(stored.status, 201);
  EXPECT_EQ(stored.body, "stored 7\n");
  EXPECT_EQ(round_trip(client, get("/")).body, "1 notes\n");
  EXPECT_EQ(round_trip(client, get("/notes/7")).body, "buy milk");
  const HttpResponse head = round_trip(client, "HEAD /notes/7 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.has_header("Content-Length: 8")) << head.headers;
  const HttpResponse options = round_trip(client, "OPTIONS /notes/7 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(options.status, 204);
  EXPECT_TRUE(options.has_header("Allow: GET, HEAD, PUT, DELETE, OPTIONS")) << options.headers;
  const HttpResponse refused = round_trip(client, with_body("POST", "/notes/7", "x"));
  EXPECT_EQ(refused.status, 405);
  EXPECT_TRUE(refused.has_header("Allow: GET, HEAD, PUT, DELETE, OPTIONS")) << refused.headers;
  EXPECT_EQ(round_trip(client, "DELETE /notes/7 HTTP/1.1\r\nHost: a\r\n\r\n").status, 204);
  EXPECT_EQ(round_trip(client, get("/notes/7")).status, 404);
  // The line protocol's commands work as before, on the same port.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "square 12"), "144");
  EXPECT_EQ(round_trip(client, get("/square/12")).body, "144\n");
}

TEST_P(WebApi, TheRawTargetKeepsPercentTwoFAndATrailingSlashAndTheFallbackTakesTheRest) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  EXPECT_EQ(round_trip(client, with_body("PUT", "/notes/a%2Fb", "slashed")).body, "stored a/b\n");
  EXPECT_EQ(round_trip(client, get("/notes/a%2Fb")).body, "slashed");
  EXPECT_EQ(round_trip(client, get("/notes/a/b")).body, "nothing at GET /notes/a/b\n");
  const HttpResponse slash = round_trip(client, get("/notes/a%2Fb/"));
  EXPECT_EQ(slash.status, 404);
  EXPECT_EQ(slash.body, "nothing at GET /notes/a%2Fb/\n");
  EXPECT_EQ(round_trip(client, "PATCH /anything?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").body,
            "nothing at PATCH /anything?x=1\n");
}

TEST_P(WebApi, AHandlerSeesTheClientTheTargetAndTheQueryAndAnswersJson) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  const HttpResponse whoami = round_trip(client, get("/whoami?tag=a&tag=b%20c"));
  EXPECT_EQ(whoami.status, 200);
  EXPECT_TRUE(whoami.has_header("Content-Type: application/json")) << whoami.headers;
  EXPECT_EQ(whoami.body,
            "{\"client\": \"127.0.0.1\", \"method\": \"GET\", \"target\": \"/whoami?tag=a&tag=b%20c\", "
            "\"path\": \"/whoami\", \"query\": \"tag=a&tag=b%20c\", \"version\": \"HTTP/1.1\", "
            "\"id_given\": true, \"tags\": 2}");
}

TEST_P(WebApi, RedirectsCarryALocationAndCookiesComeAsSeveralHeaders) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  const HttpResponse moved = round_trip(client, get("/old"));
  EXPECT_EQ(moved.status, 302);
  EXPECT_TRUE(moved.has_header("Location: /")) << moved.headers;
  const HttpResponse login = round_trip(client, with_body("POST", "/login", ""));
  EXPECT_EQ(login.status, 200);
  EXPECT_TRUE(login.has_header("Set-Cookie: session=abc; HttpOnly\r\nSet-Cookie: theme=dark"))
      << login.headers;
}

// A value the client chose, put in a header with its CR LF, would give the client headers (and responses) of
// its own making: refused, logged, and the connection and the handler serve on.
TEST_P(WebApi, AHeaderWithCrLfIsRefusedAndNeverSent) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  const HttpResponse refused = round_trip(client, get("/echo-header?value=a%0D%0ASet-Cookie:%20stolen=1"));
  EXPECT_EQ(refused.status, 500);
  EXPECT_EQ(refused.headers.find("stolen"), std::string::npos) << refused.headers;
  EXPECT_EQ(refused.headers.find("X-Echo"), std::string::npos) << refused.headers;
  EXPECT_TRUE(reactor.wait_for_log("holding CR, LF or NUL", 10s)) << reactor.stderr_text();
  const HttpResponse fine = round_trip(client, get("/echo-header?value=plain"));
  EXPECT_TRUE(fine.has_header("X-Echo: plain")) << fine.headers;
  EXPECT_EQ(reactor.stderr_text().find("exited"), std::string::npos) << reactor.stderr_text();
}

// An exception's text carries paths, SQL and keys: the client gets "internal error", the log the whole story;
// --expose-errors (development) shows the text to the client too.
TEST_P(WebApi, AnExceptionIsA500WhoseTextOnlyTheLogAndExposeErrorsShow) {
  {
    ReactorProcess reactor = start();
    Client client(reactor.host(), reactor.port());
    const HttpResponse boom = round_trip(client, get("/boom"));
    EXPECT_EQ(boom.status, 500);
    EXPECT_EQ(boom.body, "internal error\n");
    EXPECT_TRUE(reactor.wait_for_log("hunter2", 10s)) << reactor.stderr_text();
    EXPECT_NE(reactor.stderr_text().find("GET /boom"), std::string::npos) << reactor.stderr_text();
    EXPECT_EQ(round_trip(client, get("/")).status, 200);  // The handler serves on, on the same connection.
    EXPECT_EQ(ask(reactor.host(), reactor.port(), "square x"), "ERR internal error");
    EXPECT_EQ(reactor.stderr_text().find("exited"), std::string::npos) << reactor.stderr_text();
  }
  ReactorProcess exposed = start({"--expose-errors"});
  Client client(exposed.host(), exposed.port());
  const HttpResponse boom = round_trip(client, get("/boom"));
  EXPECT_EQ(boom.status, 500);
  EXPECT_NE(boom.body.find("hunter2"), std::string::npos) << boom.body;
}

// The reactor counts requests by the route that answered them, as the handler registered it
// (docs/operations.md): /notes/1 and /notes/2 are one route, GET and PUT two, HEAD counts with GET, a command
// under its name by either protocol, and what no route took (a 405, the fallback, an unknown command) under
// "(none)". Never a path as a label: its values would be as many as the clients care to send.
TEST_P(WebApi, RequestsAreCountedByTheRouteThatAnsweredNeverByThePath) {
  ReactorProcess reactor = start();
  Client client(reactor.host(), reactor.port());
  EXPECT_EQ(round_trip(client, with_body("PUT", "/notes/1", "a")).status, 201);
  EXPECT_EQ(round_trip(client, get("/notes/1")).status, 200);
  EXPECT_EQ(round_trip(client, get("/notes/2")).status, 404);
  EXPECT_EQ(round_trip(client, get("/notes/3")).status, 404);
  EXPECT_EQ(round_trip(client, "HEAD /notes/1 HTTP/1.1\r\nHost: a\r\n\r\n").status, 200);
  EXPECT_EQ(round_trip(client, get("/old")).status, 302);
  EXPECT_EQ(round_trip(client, get("/boom")).status, 500);
  EXPECT_EQ(round_trip(client, get("/square/3")).body, "9\n");
  EXPECT_EQ(round_trip(client, get("/nowhere/1")).status, 404);  // The fallback's.
  EXPECT_EQ(round_trip(client, with_body("POST", "/notes/1", "x")).status, 405);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "square 4"), "16");
  EXPECT_TRUE(ask(reactor.host(), reactor.port(), "nothing").starts_with("ERR unknown command"));
  // A client has its answer a moment before the reactor has the handler's report of it.
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 12; }, 10s)) << reactor.stats();

  const HttpResponse metrics = reactor.admin("GET", "/metrics");
  const ProgramResult check = run_program({"promtool", "check", "metrics"}, metrics.body, 30s);
  EXPECT_EQ(check.status, 0) << check.out << check.err << metrics.body;
  for (const char* line : {
           "handoff_route_requests_total{route=\"GET /notes/{id}\",class=\"2xx\"} 2\n",
           "handoff_route_requests_total{route=\"GET /notes/{id}\",class=\"4xx\"} 2\n",
           "handoff_route_requests_total{route=\"PUT /notes/{id}\",class=\"2xx\"} 1\n",
           "handoff_route_requests_total{route=\"GET /old\",class=\"3xx\"} 1\n",
           "handoff_route_requests_total{route=\"GET /boom\",class=\"5xx\"} 1\n",
           "handoff_route_requests_total{route=\"square\",class=\"2xx\"} 2\n",
           "handoff_route_requests_total{route=\"(none)\",class=\"4xx\"} 3\n",
           "handoff_route_service_seconds_bucket{route=\"GET /notes/{id}\",le=\"+Inf\"} 4\n",
           "handoff_route_service_seconds_count{route=\"GET /notes/{id}\"} 4\n",
       }) {
    EXPECT_NE(metrics.body.find(line), std::string::npos) << line << metrics.body;
  }
  for (const std::string path : {"/notes/1", "/notes/2", "/nowhere/1", "/square/3"}) {
    EXPECT_EQ(metrics.body.find(path), std::string::npos) << path << " is a label value";
  }
  EXPECT_EQ(metrics.body.find("route=\"nothing"), std::string::npos);

  const nlohmann::json routes = nlohmann::json::parse(reactor.stats())["routes"];
  ASSERT_GE(routes.size(), 2u) << routes;
  EXPECT_EQ(routes[0]["route"], "GET /notes/{id}");  // The busiest first.
  EXPECT_EQ(routes[0]["requests"], 4);
  EXPECT_EQ(routes[0]["by_class"]["4xx"], 2);
  EXPECT_GT(routes[0]["p99_seconds"].get<double>(), 0);
  EXPECT_EQ(routes[1]["route"], "(none)");
  EXPECT_EQ(routes[1]["requests"], 3);
}

INSTANTIATE_TEST_SUITE_P(Languages, WebApi,
                         ::testing::Values(environment("HANDOFF_NOTES"),
                                           "python3 " + environment("HANDOFF_EXAMPLES_SOURCE") + "/notes.py"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return std::string(info.index == 0 ? "Cpp" : "Python");
                         });

// What a Python function returns, whatever it is: Reply(200, "text") (a str body) crashed the handler after
// the function returned (the client got 502, the log "killed by signal 9"), and a dict or None went out as
// their repr. A str is text, a dict JSON; anything else is a 500, logged, and the handler serves on.
TEST(PythonHandler, EveryReturnValueIsAnAnswerAndNoneKillsNothing) {
  TemporaryFolder folder;
  const std::string command = python_handler(
      folder, "returns.py", "import os\n",
      python_command("reply_str", {"return Reply(200, 'text')"}) +
          python_command("plain_str", {"return 'plain'"}) +
          python_command("a_dict", {"return {'a': 1, 'b': [True, None]}"}) +
          python_command("nothing", {"return None"}) + python_command("a_number", {"return 42"}) +
          python_command("pid", {"return Reply.text(str(os.getpid()))"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command});
  Client client(reactor.host(), reactor.port());
  const std::string pid = round_trip(client, get("/pid")).body;
  EXPECT_EQ(round_trip(client, get("/reply_str")).body, "text");
  EXPECT_EQ(round_trip(client, get("/plain_str")).body, "plain\n");
  const HttpResponse json = round_trip(client, get("/a_dict"));
  EXPECT_TRUE(json.has_header("Content-Type: application/json")) << json.headers;
  EXPECT_EQ(json.body, "{\"a\": 1, \"b\": [true, null]}");
  for (const std::string path : {"/nothing", "/a_number"}) {
    const HttpResponse wrong = round_trip(client, get(path));
    EXPECT_EQ(wrong.status, 500) << path;
    EXPECT_EQ(wrong.body, "internal error\n") << path;
  }
  EXPECT_TRUE(reactor.wait_for_log("returned", 10s)) << reactor.stderr_text();
  EXPECT_EQ(round_trip(client, get("/pid")).body, pid);  // The same process served every one.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "nothing"), "ERR internal error");
}

// Every retirement of a busy Python handler (SIGHUP, a smaller pool, --max-requests, a takeover) sends it a
// kReclaim, which it read as "unexpected frame type 5" and exited with status 1: an operator read crashes.
TEST(PythonHandler, RetiredWhileBusyByAReloadItLogsNoFailure) {
  TemporaryFolder folder;
  // Its request holds it until the test opens the gate: busy for as long as the test needs, however loaded
  // the machine.
  const std::string gate = folder.path("gate");
  const std::string command = python_handler(
      folder, "held.py", "import os, time\ngate = '" + gate + "'\n",
      python_command(
          "hold", {"while not os.path.exists(gate):", "    time.sleep(0.01)", "return Reply.text('held')"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", command});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const std::vector<pid_t> old = reactor.handler_pids();
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("hold\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s)) << reactor.stats();
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  // Once its replacement is ready, the busy handler is retired: it has its kReclaim before it answers.
  ASSERT_TRUE(wait_until(
      [&] {
        const std::vector<pid_t> now = reactor.handler_pids();
        return std::any_of(now.begin(), now.end(),
                           [&](pid_t pid) { return std::find(old.begin(), old.end(), pid) == old.end(); });
      },
      30s))
      << reactor.stats();
  folder.file("gate", "");
  EXPECT_EQ(busy.read_line(), "held");
  EXPECT_TRUE(wait_until([&] { return reactor.reload_state() == "done"; }, 30s)) << reactor.stats();
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  EXPECT_NE(reactor.handler_pids(), old);
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(log.find("unexpected frame type"), std::string::npos) << log;
  EXPECT_EQ(log.find("exited with status 1"), std::string::npos) << log;
  EXPECT_EQ(log.find("warn"), std::string::npos) << log;
}

}  // namespace
}  // namespace handoff::testing
