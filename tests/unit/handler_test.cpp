// Unit tests of the handler: the line protocol's commands, and serving one hand-off over a socketpair.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "handler/builtin_commands.hpp"
#include "handler/client_io.hpp"
#include "handler/http_session.hpp"
#include "handler/line_session.hpp"
#include "http/request_parser.hpp"
#include "http/response.hpp"
#include "ipc/request_record.hpp"
#include "ipc/unique_fd.hpp"
#include "ipc/wire.hpp"

namespace handoff::handler {
namespace {

using handoff::Handler;

using namespace std::chrono_literals;

// The built-in handler: the API with the built-in commands.
const Handler& builtin() {
  static const Handler handler = [] {
    Handler h;
    add_builtin_commands(h);
    return h;
  }();
  return handler;
}

// The line protocol's answer to one line, without its line end.
std::string answer(std::string_view line) {
  std::string text = answer_line(builtin(), line).text;
  if (!text.empty()) text.pop_back();
  return text;
}

TEST(Commands, AnswerEachCommand) {
  EXPECT_EQ(answer("ping"), "pong");
  EXPECT_EQ(answer("fib 0"), "0");
  EXPECT_EQ(answer("fib 1"), "1");
  EXPECT_EQ(answer("fib 30"), "832040");
  EXPECT_EQ(answer("  fib\t20  "), "6765");
  EXPECT_EQ(answer("pid"), std::to_string(getpid()));
  EXPECT_EQ(answer("spin 5"), "spun 5");
  const LineAnswer quit = answer_line(builtin(), "quit");
  EXPECT_TRUE(quit.close);
  EXPECT_EQ(quit.text, "");
}

TEST(Commands, LargestFibonacciFitsIn64Bits) {
  // fib(92) by recursion takes ages; check the bound through the recurrence's top instead.
  uint64_t a = 0, b = 1;
  for (unsigned i = 0; i < kMaxFibonacciIndex; ++i) b = std::exchange(a, b) + b;
  EXPECT_EQ(a, 7540113804746346429ull);
  EXPECT_EQ(fibonacci(40), 102334155u);
}

TEST(Commands, ExplainWhatWasWrong) {
  EXPECT_EQ(answer("fib 93"), "ERR fib takes one whole number from 0 to 92");
  EXPECT_EQ(answer("fib -1"), "ERR fib takes one whole number from 0 to 92");
  EXPECT_EQ(answer("fib x"), "ERR fib takes one whole number from 0 to 92");
  EXPECT_EQ(answer("fib 1 2"), "ERR fib takes one whole number from 0 to 92");
  EXPECT_EQ(answer("fib"), "ERR fib takes one whole number from 0 to 92");
  EXPECT_EQ(answer("spin 600001"), "ERR spin takes one whole number of milliseconds from 0 to 600000");
  EXPECT_EQ(answer("ping now"), "ERR ping takes no argument");
  EXPECT_EQ(answer("quit now"), "ERR quit takes no argument");
  EXPECT_EQ(answer(""), "ERR empty request");
  EXPECT_EQ(answer("   "), "ERR empty request");
  EXPECT_EQ(answer("PING"), "ERR unknown command 'PING' (commands: ping, pid, client, fib, spin, quit)");
  EXPECT_EQ(answer(std::string("a\x01z", 3)).substr(0, 25), "ERR unknown command 'a?z'");
  EXPECT_EQ(answer(std::string(100, 'x')).substr(21, 44), std::string(40, 'x') + "...'");
}

// An HTTP request as execute() takes it.
Request http_request(std::string_view method, std::string_view path) {
  return {.protocol = Protocol::kHttp, .method = method, .target = path, .path = path};
}

// An exception's text may carry paths, SQL and keys: the client gets it only with --expose-errors.
TEST(HandlerApi, ExceptionsBecome500sWhoseTextOnlyADeveloperSees) {
  Handler handler;
  handler.command("boom", [](const Request&) -> Reply { throw std::runtime_error("out of cheese"); });
  handler.command("blob", [](const Request& request) {
    return Reply::bytes(std::string(request.body), "application/x-blob");
  });
  ::testing::internal::CaptureStderr();
  const Reply boom = handler.execute({.command = "boom"});
  const std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.body, "internal error");
  EXPECT_NE(logged.find("line 'boom': threw: out of cheese"), std::string::npos) << logged;
  EXPECT_EQ(answer_line(handler, "boom").text, "ERR internal error\n");
  ASSERT_EQ(::setenv("HANDOFF_EXPOSE_ERRORS", "1", 1), 0);
  EXPECT_EQ(handler.execute({.command = "boom"}).body, "internal error: out of cheese");
  EXPECT_EQ(answer_line(handler, "boom").text, "ERR internal error: out of cheese\n");
  ASSERT_EQ(::unsetenv("HANDOFF_EXPOSE_ERRORS"), 0);
  const Reply blob = handler.execute({.command = "blob", .body = "\x01\x02"});
  EXPECT_EQ(blob.content_type, "application/x-blob");
  EXPECT_EQ(blob.body, "\x01\x02");
  EXPECT_EQ(handler.execute({.command = "nothing"}).status, 404);
  EXPECT_EQ(Reply::text("x").body, "x\n");
  EXPECT_EQ(Reply::text("y\n").body, "y\n");
}

// A handler that took its content type from the request wrote it into the head verbatim, CR LF and all, and
// the client could be given headers and a whole second response. A reply whose content type or header holds
// CR, LF or NUL is refused as a status outside 200-599 is: a 500, logged once with what was refused.
TEST(HandlerApi, AHeaderWithCrLfOrNulIsRefused) {
  Handler handler;
  handler.command("typed", [](const Request& request) {
    return Reply::bytes("data", std::string(request.arguments.at(0)));
  });
  handler.route("GET", "/header/{value}", [](const Request& request) {
    return Reply::text("x").header("X-Echo", std::string(*request.path_parameter("value")));
  });
  for (const std::string_view path :
       {"/typed/text%2Fhtml%0D%0ASet-Cookie: a=b", "/typed/text%2Fhtml%0AX: 1", "/typed/text%2Fhtml%0DX: 1",
        "/typed/text%2Fhtml%00", "/header/a%0D%0ASet-Cookie: a=b"}) {
    ::testing::internal::CaptureStderr();
    const Reply reply = handler.execute(http_request("GET", path));
    const std::string logged = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(reply.status, 500) << path;
    EXPECT_EQ(reply.content_type, Reply{}.content_type);
    EXPECT_TRUE(reply.headers.empty());
    EXPECT_EQ(reply.body, "internal error");
    EXPECT_EQ(std::count(logged.begin(), logged.end(), '\n'), 1) << logged;
    EXPECT_NE(logged.find("holding CR, LF or NUL"), std::string::npos) << logged;
    // What was refused, escaped, so that the log line is one line too.
    EXPECT_NE(logged.find("\\"), std::string::npos) << logged;
  }
  EXPECT_EQ(handler.execute(http_request("GET", "/typed/text%2Fx-a; b=\"c d\"\t")).status, 200);
}

// What the server writes itself, a reply may not: a second Content-Length is request smuggling's tool.
TEST(HandlerApi, HeadersTheServerOwnsAndNamesThatAreNoTokensAreRefused) {
  Handler handler;
  handler.route("GET", "/", [](const Request& request) {
    return Reply::text("x").header(std::string(request.query), "1");
  });
  for (const std::string_view name :
       {"Content-Length", "transfer-encoding", "Connection", "DATE", "Bad Name", "Bad:Name", ""}) {
    ::testing::internal::CaptureStderr();
    Request request = http_request("GET", "/");
    request.query = name;
    EXPECT_EQ(handler.execute(request).status, 500) << name;
    ::testing::internal::GetCapturedStderr();
  }
  Request fine = http_request("GET", "/");
  fine.query = "X-Fine_1.~";
  EXPECT_EQ(handler.execute(fine).status, 200);
}

// Routes: any method, "/" routable, {name} segments percent-decoded one by one (a %2F stays inside its
// parameter), a trailing slash significant, HEAD answered by GET, 405 with the methods the path has, and a
// fallback for the rest. Commands keep their GET/HEAD/POST.
TEST(HandlerApi, RoutesTakeAnyMethodAndPathParameters) {
  Handler handler;
  handler.route("GET", "/", [](const Request&) { return Reply::text("root"); });
  handler.route("PUT", "/items/{id}", [](const Request& request) {
    return Reply::text("put " + std::string(*request.path_parameter("id")), 201);
  });
  handler.route("DELETE", "/items/{id}", [](const Request&) { return Reply{.status = 204}; });
  handler.route("GET", "/items/{id}/", [](const Request&) { return Reply::text("slash"); });
  handler.route("OPTIONS", "/items",
                [](const Request&) { return Reply{.status = 204}.header("Allow", "x"); });
  handler.command("fib",
                  [](const Request& request) { return Reply::text(std::string(request.arguments[0])); });
  EXPECT_EQ(handler.execute(http_request("GET", "/")).body, "root\n");
  EXPECT_EQ(handler.execute(http_request("HEAD", "/")).body, "root\n");  // The session leaves the body out.
  const Reply put = handler.execute(http_request("PUT", "/items/a%2Fb"));
  EXPECT_EQ(put.status, 201);
  EXPECT_EQ(put.body, "put a/b\n");
  EXPECT_EQ(handler.execute(http_request("DELETE", "/items/7")).status, 204);
  EXPECT_EQ(handler.execute(http_request("GET", "/items/7/")).body, "slash\n");
  EXPECT_EQ(handler.execute(http_request("OPTIONS", "/items")).status, 204);
  const Reply refused = handler.execute(http_request("POST", "/items/7"));
  EXPECT_EQ(refused.status, 405);
  ASSERT_EQ(refused.headers.size(), 1u);
  EXPECT_EQ(refused.headers[0], (std::pair<std::string, std::string>("Allow", "PUT, DELETE")));
  EXPECT_EQ(handler.execute(http_request("GET", "/items/")).status, 404);  // {id} takes no empty segment.
  EXPECT_EQ(handler.execute(http_request("GET", "/fib/5")).body, "5\n");
  EXPECT_EQ(handler.execute(http_request("PUT", "/fib/5")).status, 405);
  EXPECT_EQ(handler.execute(http_request("GET", "/nothing")).status, 404);
  // A route no request could reach is a mistake of the program's, said at its start.
  const Command any = [](const Request&) { return Reply::text("x"); };
  EXPECT_THROW(handler.route("GET", "items/{id}", any), std::invalid_argument);
  EXPECT_THROW(handler.route("GET", "", any), std::invalid_argument);
  EXPECT_THROW(handler.route("G T", "/", any), std::invalid_argument);
  EXPECT_THROW(handler.route("", "/", any), std::invalid_argument);
  handler.fallback(
      [](const Request& request) { return Reply::text("fallback " + std::string(request.target)); });
  EXPECT_EQ(handler.execute(http_request("PATCH", "/nothing/%2F")).body, "fallback /nothing/%2F\n");
  EXPECT_EQ(handler.execute(http_request("POST", "/items/7")).status, 405);  // The path is a route's.
}

// The reactor counts requests by route (docs/operations.md): each answer names the route or command that
// made it by its place in the order of registration, routes and commands alike, from 1; nothing matched is 0.
TEST(HandlerApi, EachAnswerNamesItsRouteByTheOrderOfRegistration) {
  Handler handler;
  const Command echo = [](const Request& request) { return Reply::text(std::string(request.method)); };
  handler.route("GET", "/notes/{id}", echo);
  handler.command("fib", echo, {.retryable = true});
  handler.route("PUT", "/notes/{id}", echo);
  const auto route_of = [&](Request request) {
    uint16_t route = 99;
    handler.execute(std::move(request), route);
    return route;
  };
  EXPECT_EQ(route_of(http_request("GET", "/notes/1")), 1);
  EXPECT_EQ(route_of(http_request("GET", "/notes/2")), 1);
  EXPECT_EQ(route_of(http_request("HEAD", "/notes/2")), 1);  // A GET route answers HEAD.
  EXPECT_EQ(route_of(http_request("PUT", "/notes/2")), 3);
  EXPECT_EQ(route_of(http_request("GET", "/fib/5")), 2);
  EXPECT_EQ(route_of({.command = "fib"}), 2);
  EXPECT_EQ(route_of(http_request("DELETE", "/notes/2")), 0);  // 405.
  EXPECT_EQ(route_of(http_request("PUT", "/fib/5")), 0);       // 405.
  EXPECT_EQ(route_of(http_request("GET", "/nothing")), 0);
  EXPECT_EQ(route_of({.command = "nothing"}), 0);
  handler.fallback(echo);
  EXPECT_EQ(route_of(http_request("GET", "/nothing")), 0);
  EXPECT_EQ(answer_line(handler, "fib 3").route, 2);
}

TEST(HandlerApi, RequestLookupsTakeEveryValue) {
  const Request request{.query = "a=1&b=x+y&a=%32&c&bad=%zz",
                        .headers = {{"Set-Thing", "1"}, {"Host", "h"}, {"set-thing", "2"}}};
  EXPECT_EQ(request.query_parameter("a"), "1");
  EXPECT_EQ(request.query_parameters("a"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(request.query_parameter("b"), "x y");
  EXPECT_EQ(request.query_parameter("c"), "");
  EXPECT_EQ(request.query_parameter("bad"), std::nullopt);
  EXPECT_EQ(request.query_parameter("d"), std::nullopt);
  EXPECT_EQ(request.header("SET-THING"), "1");
  EXPECT_EQ(request.header_values("set-thing"), (std::vector<std::string_view>{"1", "2"}));
  EXPECT_EQ(request.header("x"), std::nullopt);
  const Reply redirect = Reply::redirect("/there");
  EXPECT_EQ(redirect.status, 302);
  EXPECT_EQ(redirect.headers.at(0), (std::pair<std::string, std::string>("Location", "/there")));
  EXPECT_EQ(Reply::json("{}").content_type, "application/json");
}

TEST(Commands, SpinBurnsCpuTime) {
  const clock_t before = clock();
  spin_cpu(50);
  EXPECT_GE((clock() - before) * 1000 / CLOCKS_PER_SEC, 49);
}

// A connected pair: the session's end is non-blocking, as a socket shared with the reactor is.
struct Socketpair {
  Socketpair() {
    int ends[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
    served = ipc::UniqueFd(ends[0]);
    client = ipc::UniqueFd(ends[1]);
    EXPECT_EQ(::fcntl(served.get(), F_SETFL, O_NONBLOCK), 0);
  }
  std::string client_reads() {
    std::string text;
    char chunk[4096];
    ssize_t got;
    ::fcntl(client.get(), F_SETFL, O_NONBLOCK);
    while ((got = ::read(client.get(), chunk, sizeof(chunk))) > 0) text.append(chunk, got);
    return text;
  }
  ipc::UniqueFd served, client;
};

const AnsweredCallback ignore_progress = [](uint64_t, int, uint16_t) {};

// An error or an exception whose text held a line break became several answer lines, and a client that
// pipelines took "fake answer" for the answer to its next request (issue 28). An answer is one line whatever
// it holds: the line end it may end in goes, and each CR, LF and NUL left in it becomes a space.
TEST(LineAnswers, AreOneLineWhateverTheReplyHolds) {
  Handler handler;
  handler.command("boom",
                  [](const Request&) -> Reply { throw std::runtime_error("no record\nfake answer"); });
  handler.command("refuse", [](const Request&) { return Reply::error("no\r\nfake answer\n"); });
  handler.command("lines", [](const Request&) { return Reply::text("one\ntwo\r\n"); });
  handler.command("blob", [](const Request&) { return Reply::bytes(std::string("a\0b\rc\n\n", 7)); });
  handler.command("echo",
                  [](const Request& request) { return Reply::text(std::string(request.arguments[0])); });
  ASSERT_EQ(::setenv("HANDOFF_EXPOSE_ERRORS", "1", 1), 0);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(answer_line(handler, "boom").text, "ERR internal error: no record fake answer\n");
  EXPECT_EQ(answer_line(handler, "refuse").text, "ERR no  fake answer\n");
  EXPECT_EQ(answer_line(handler, "lines").text, "one two\n");
  EXPECT_EQ(answer_line(handler, "blob").text, "a b c \n");
  EXPECT_EQ(answer_line(handler, "echo a\rb").text, "a b\n");
  EXPECT_EQ(answer_line(handler, "echo crlf\r\n").text, "crlf\n");

  Socketpair pair;
  serve_lines(handler, pair.served.get(), nullptr, "boom\necho x\nrefuse\necho y\n", 0, Limits{},
              ignore_progress);
  ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(::unsetenv("HANDOFF_EXPOSE_ERRORS"), 0);
  EXPECT_EQ(pair.client_reads(), "ERR internal error: no record fake answer\nx\nERR no  fake answer\ny\n");
}

// What the reactor sends for raw: its first request, parsed as the reactor parses it (a line, or HTTP by
// http::RequestParser), in a request record, and the bytes after it as the record's rest.
class Record {
 public:
  Record(std::string_view raw, bool http) {
    ipc::RequestFields fields{.request_id = 41, .client_address = "192.0.2.9", .client_port = 5150};
    if (!http) {
      const size_t end = raw.find('\n');
      fields.target = raw.substr(0, end);
      if (fields.target.ends_with('\r')) fields.target.remove_suffix(1);
      fields.rest = end == std::string_view::npos ? "" : raw.substr(end + 1);
      ipc::append_request_record(payload_, fields, std::vector<http::HeaderField>());
    } else {
      http::RequestParser parser({});
      const size_t taken = parser.feed(raw);
      EXPECT_EQ(parser.state(), http::RequestParser::State::kComplete) << raw;
      fields.http_minor = parser.head().version_minor;
      fields.keep_alive = parser.head().keep_alive;
      fields.method = parser.head().method;
      fields.target = parser.head().target;
      fields.body = parser.body();
      fields.rest = raw.substr(taken);
      ipc::append_request_record(payload_, fields, parser.head().headers);
    }
    EXPECT_TRUE(ipc::decode_request_record(payload_, view_));
  }
  Record(const Record&) = delete;

  const ipc::RequestView* view() const { return &view_; }
  std::string rest() const { return std::string(view_.rest); }

 private:
  std::string payload_;
  ipc::RequestView view_;
};

// One hand-off as the handler serves it: the record of raw's first request, then its rest.
SessionOutcome serve_lines_of(const Handler& handler, int fd, std::string_view raw, uint32_t flags = 0,
                              const AnsweredCallback& on_answered = ignore_progress,
                              const Limits& limits = {}) {
  const Record record(raw, false);
  return serve_lines(handler, fd, record.view(), record.rest(), flags, limits, on_answered,
                     {.client_address = record.view()->client_address, .client_port = 5150});
}
SessionOutcome serve_http_of(const Handler& handler, int fd, std::string_view raw,
                             const AnsweredCallback& on_answered = ignore_progress) {
  const Record record(raw, true);
  return serve_http(handler, fd, record.view(), record.rest(), ipc::kFlagHttp, Limits{}, on_answered,
                    {.client_address = record.view()->client_address, .client_port = 5150});
}

TEST(LineSession, AnswersTheRecordsLineAndPipelinedLinesAndGivesBackAPartialOne) {
  Socketpair pair;
  std::vector<uint64_t> progress;
  const SessionOutcome outcome =
      serve_lines_of(builtin(), pair.served.get(), "ping\r\nfib 10\npid\nfib 2", 0,
                     [&](uint64_t bytes, int, uint16_t) { progress.push_back(bytes); });
  // Reported between requests: after "pong\n" and after "55\n", not after the last answer.
  EXPECT_EQ(progress, (std::vector<uint64_t>{5, 8}));
  EXPECT_TRUE(outcome.keep_open);
  EXPECT_EQ(outcome.unconsumed, "fib 2");
  EXPECT_EQ(pair.client_reads(), "pong\n55\n" + std::to_string(getpid()) + "\n");
}

// A command sees what the record says of its request: the line, the client, the reactor's number.
TEST(LineSession, ACommandSeesTheLineTheClientAndTheId) {
  Handler handler;
  handler.command("who", [](const Request& request) {
    return Reply::text(std::string(request.target) + "|" + std::string(request.client_address) + ":" +
                       std::to_string(request.client_port) + "|" + std::to_string(request.id));
  });
  Socketpair pair;
  serve_lines_of(handler, pair.served.get(), "who  am i\nwho\n");
  // The line after the record's was read by no reactor: it has no number.
  EXPECT_EQ(pair.client_reads(), "who  am i|192.0.2.9:5150|41\nwho|192.0.2.9:5150|0\n");
}

TEST(LineSession, QuitClosesAndSkipsTheRest) {
  Socketpair pair;
  const SessionOutcome outcome = serve_lines_of(builtin(), pair.served.get(), "ping\nquit\nping\n");
  EXPECT_FALSE(outcome.keep_open);
  EXPECT_EQ(pair.client_reads(), "pong\n");
}

TEST(LineSession, ALastLineWithoutLineEndIsAnsweredWhenInputEnded) {
  Socketpair pair;
  const SessionOutcome outcome =
      serve_lines_of(builtin(), pair.served.get(), "ping\nfib 7", ipc::kFlagInputClosed);
  EXPECT_FALSE(outcome.keep_open);
  EXPECT_EQ(pair.client_reads(), "pong\n13\n");

  Socketpair alone;  // The record's line is all the client sent, without its line end.
  EXPECT_FALSE(serve_lines_of(builtin(), alone.served.get(), "fib 8", ipc::kFlagInputClosed).keep_open);
  EXPECT_EQ(alone.client_reads(), "21\n");
}

// The reactor is the one judge of requests: a line too long, whole or not, goes back to it unanswered (it
// refuses it), with the answers before it reported.
TEST(LineSession, ALineOverTheLimitGoesBackToTheReactor) {
  const Limits limits{.max_request_bytes = 100};
  Socketpair partial;
  const SessionOutcome handed_back = serve_lines_of(
      builtin(), partial.served.get(), "ping\n" + std::string(300, 'x'), 0, ignore_progress, limits);
  EXPECT_TRUE(handed_back.keep_open);
  EXPECT_EQ(handed_back.unconsumed, std::string(300, 'x'));
  EXPECT_EQ(partial.client_reads(), "pong\n");

  Socketpair whole;
  std::vector<int> statuses;
  const std::string too_long = std::string(101, 'y') + "\nping\n";
  const SessionOutcome complete = serve_lines_of(
      builtin(), whole.served.get(), "ping\nfib 5\n" + too_long, 0,
      [&](uint64_t, int status, uint16_t) { statuses.push_back(status); }, limits);
  EXPECT_TRUE(complete.keep_open);
  EXPECT_EQ(complete.unconsumed, too_long);
  EXPECT_EQ(whole.client_reads(), "pong\n5\n");
  EXPECT_EQ(statuses, (std::vector<int>{200, 200}));
}

// A complete line, then a last one cut by EOF: both answered, each reported with the command that answered
// it (the reactor counts requests by the reports, per route).
TEST(LineSession, EachAnswerIsReportedTheLastLineCutByEofToo) {
  Socketpair pair;
  std::vector<int> statuses;
  std::vector<uint16_t> routes;
  const SessionOutcome outcome =
      serve_lines_of(builtin(), pair.served.get(), "ping\nnope\nfib x", ipc::kFlagInputClosed,
                     [&](uint64_t, int status, uint16_t route) {
                       statuses.push_back(status);
                       routes.push_back(route);
                     });
  EXPECT_FALSE(outcome.keep_open);
  EXPECT_EQ(pair.client_reads(),
            "pong\nERR unknown command 'nope' (commands: ping, pid, client, fib, spin, quit)\n"
            "ERR fib takes one whole number from 0 to 92\n");
  EXPECT_EQ(statuses, (std::vector<int>{200, 404}));  // Between answers; the last goes with the end.
  EXPECT_EQ(routes, (std::vector<uint16_t>{1, 0}));   // ping is the first registered; no command, none.
  EXPECT_EQ(outcome.status, 400);
  EXPECT_EQ(outcome.route, 4);  // fib answered, with an error.
}

// --write-timeout bounded the whole answer: a client that kept reading, but took longer than the timeout in
// all, had its answer cut (issue 28: 26.7 of 50 MB). It bounds the time without progress now, as nginx's
// send_timeout does: the clock starts over whenever some bytes go out.
TEST(ClientIo, AnAnswerToAClientThatKeepsReadingIsWrittenWholeHoweverLongItTakes) {
  Socketpair pair;
  const std::string answer(8 << 20, 'x');
  size_t received = 0;
  std::thread reader([&] {
    char chunk[64 << 10];
    ssize_t got;
    // 64 KiB every 10 ms: the pace of the client, not a wait for a state. The whole answer takes more than
    // a second, and no wait for room in the socket a fraction of the timeout.
    while (received < answer.size() && (got = ::read(pair.client.get(), chunk, sizeof(chunk))) > 0) {
      received += got;
      std::this_thread::sleep_for(10ms);
    }
  });
  EXPECT_EQ(write_all(pair.served.get(), answer, 300ms), std::error_code());
  pair.served.reset();  // The reader sees the end of a cut answer.
  reader.join();
  EXPECT_EQ(received, answer.size());
}

// What the write timeout is for: a client that takes nothing more does not hold the handler.
TEST(ClientIo, AClientThatStopsReadingIsGivenUpAfterTheWriteTimeout) {
  Socketpair pair;
  const std::string answer(8 << 20, 'x');
  std::thread reader([&] {
    char chunk[64 << 10];
    for (size_t received = 0; received < (1u << 20);) {
      const ssize_t got = ::read(pair.client.get(), chunk, sizeof(chunk));
      if (got <= 0) break;
      received += got;
    }
  });
  EXPECT_EQ(write_all(pair.served.get(), answer, 300ms), std::errc::timed_out);
  pair.served.reset();
  reader.join();
}

TEST(LineSession, AVanishedClientDoesNotHurt) {
  Socketpair pair;
  pair.client.reset();
  const SessionOutcome outcome = serve_lines_of(builtin(), pair.served.get(), "ping\nping\n");
  EXPECT_FALSE(outcome.keep_open);
}

TEST(HttpSession, AnswersTheRecordsRequestAndPipelinedOnesAndGivesBackAPartialOne) {
  Socketpair pair;
  std::vector<uint64_t> progress;
  const std::string partial = "GET /fib/7 HTTP/1.1\r\nHost: a\r\nHo";
  const SessionOutcome outcome =
      serve_http_of(builtin(), pair.served.get(),
                    "GET /ping HTTP/1.1\r\nHost: a\r\n\r\nGET /fib/10 HTTP/1.1\r\nHost: a\r\n\r\n" + partial,
                    [&](uint64_t bytes, int, uint16_t) { progress.push_back(bytes); });
  EXPECT_TRUE(outcome.keep_open);
  EXPECT_EQ(outcome.unconsumed, partial);
  std::string written = pair.client_reads();
  // Every response has a Date header (RFC 9110 section 6.6.1); its value is the second it was written.
  ASSERT_NE(written.find("\r\nDate: "), std::string::npos) << written;
  const std::string pong =
      "HTTP/1.1 200 OK\r\nServer: handoff\r\nDate: " + written.substr(written.find("Date: ") + 6, 29) +
      "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n\r\npong\n";
  EXPECT_TRUE(written.starts_with(pong)) << written;
  EXPECT_TRUE(written.ends_with("\r\n\r\n55\n")) << written;
  EXPECT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0], pong.size());
}

// The reactor is the one judge of requests: a pipelined request the handler's parser would refuse is handed
// back unanswered (the reactor refuses it, with the same parser), and the handler writes nothing for it.
TEST(HttpSession, APipelinedRequestTheParserRefusesGoesBackToTheReactor) {
  Socketpair pair;
  const std::string bad = "GET /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx";
  const SessionOutcome outcome =
      serve_http_of(builtin(), pair.served.get(), "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n" + bad);
  EXPECT_TRUE(outcome.keep_open);
  EXPECT_EQ(outcome.unconsumed, bad);
  const std::string written = pair.client_reads();
  EXPECT_EQ(written.find("HTTP/1.1 4"), std::string::npos) << written;
  EXPECT_TRUE(written.ends_with("pong\n")) << written;
}

// Any status a handler chooses goes out with its reason phrase, the handler's content type and headers; the
// request shows the method, target, path, query, header fields, body, client and id.
TEST(HttpSession, AHandlerSeesTheWholeRequestAndChoosesStatusAndHeaders) {
  Handler handler;
  handler.route("POST", "/make/{what}", [](const Request& request) {
    const std::string seen =
        std::string(request.method) + " " + std::string(request.target) + " " + std::string(request.path) +
        " " + std::string(request.query) + " " + std::string(request.header("x-tag").value_or("-")) + " " +
        request.query_parameter("n").value_or("-") + " " + std::string(request.body) + " " +
        std::string(request.client_address) + " " + std::string(request.version) + " " +
        std::to_string(request.id) + " " + std::string(*request.path_parameter("what"));
    return Reply{.status = 201, .body = seen, .content_type = "application/x-made"}
        .header("Set-Cookie", "a=1")
        .header("Set-Cookie", "b=2");
  });
  handler.command("bad", [](const Request&) { return Reply{.status = 102, .body = "waiting"}; });
  Socketpair pair;
  ::testing::internal::CaptureStderr();
  serve_http_of(handler, pair.served.get(),
                "POST /make/a%2Fb?n=a%2Bb&z HTTP/1.0\r\nConnection: keep-alive\r\nX-Tag: blue\r\n"
                "Content-Length: 3\r\n\r\nabcGET /bad HTTP/1.1\r\nHost: a\r\n\r\n");
  ::testing::internal::GetCapturedStderr();
  const std::string written = pair.client_reads();
  EXPECT_TRUE(written.starts_with("HTTP/1.1 201 Created\r\n")) << written;
  EXPECT_NE(written.find("Content-Type: application/x-made\r\n"), std::string::npos) << written;
  EXPECT_NE(written.find("Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nConnection: keep-alive\r\n\r\n"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("\r\n\r\nPOST /make/a%2Fb?n=a%2Bb&z /make/a%2Fb n=a%2Bb&z blue a+b abc 192.0.2.9 "
                         "HTTP/1.0 41 a/b"),
            std::string::npos)
      << written;
  // A status that is not final would leave the client waiting: it becomes a 500.
  EXPECT_NE(written.find("HTTP/1.1 500 Internal Server Error\r\n"), std::string::npos) << written;
}

// The same through the HTTP session, over a socket: the head holds no header of the client's making, and the
// pipelined request after it gets its own answer.
TEST(HttpSession, AContentTypeWithCrLfIsA500AndSplitsNothing) {
  Handler handler;
  handler.command("typed", [](const Request& request) {
    return Reply::bytes("data", request.query_parameter("type").value_or("text/plain"));
  });
  Socketpair pair;
  ::testing::internal::CaptureStderr();
  serve_http_of(handler, pair.served.get(),
                "GET /typed?type=text/html%0d%0aSet-Cookie:%20a=b%0d%0aContent-Length:%200%0d%0a%0d%0a"
                "HTTP/1.1%20200%20OK HTTP/1.1\r\nHost: a\r\n\r\nGET /typed HTTP/1.1\r\nHost: a\r\n\r\n");
  ::testing::internal::GetCapturedStderr();
  const std::string written = pair.client_reads();
  EXPECT_TRUE(written.starts_with("HTTP/1.1 500 Internal Server Error\r\n")) << written;
  EXPECT_EQ(written.find("Set-Cookie"), std::string::npos) << written;
  EXPECT_EQ(written.find("HTTP/1.1 200 OK\r\n"), written.rfind("HTTP/1.1 ")) << written;
  EXPECT_TRUE(written.ends_with("Content-Type: text/plain\r\nContent-Length: 4\r\n\r\ndata")) << written;
}

}  // namespace
}  // namespace handoff::handler
