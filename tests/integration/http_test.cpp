// Integration tests of HTTP/1.1 on the line protocol's port: real curl and wrk, and raw requests for the
// malformed cases, through the real reactor and handlers on loopback.

#include <signal.h>

#include <gtest/gtest.h>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

std::string url(const ReactorProcess& reactor, const std::string& path) {
  return "http://" + reactor.host() + ":" + std::to_string(reactor.port()) + path;
}

ProgramResult curl(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), {"curl", "--silent", "--show-error", "--max-time", "20"});
  return run_program(arguments, "", 30s);
}

HttpResponse send_and_read(const ReactorProcess& reactor, const std::string& request, bool head = false) {
  Client client(reactor.host(), reactor.port());
  client.send(request);
  return read_response(client, head);
}

TEST(Http, CurlGetsTheAnswer) {
  ReactorProcess reactor({"--handlers", "2"});
  const ProgramResult result = curl({url(reactor, "/fib/30")});
  EXPECT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "832040\n");
  EXPECT_EQ(curl({url(reactor, "/ping")}).out, "pong\n");
  EXPECT_EQ(curl({url(reactor, "/spin/10")}).out, "spun 10\n");
  const std::string pid = curl({url(reactor, "/pid")}).out;
  const std::vector<pid_t> handlers = reactor.handler_pids();
  EXPECT_NE(std::find(handlers.begin(), handlers.end(), std::stoi(pid)), handlers.end()) << pid;
}

TEST(Http, CurlReusesOneConnectionForSeveralUrls) {
  ReactorProcess reactor({"--handlers", "2"});
  const ProgramResult result =
      curl({"--verbose", url(reactor, "/fib/10"), url(reactor, "/ping"), url(reactor, "/fib/20")});
  EXPECT_EQ(result.out, "55\npong\n6765\n");
  int reuses = 0;
  for (size_t at = 0; (at = result.err.find("Re-using existing connection", at)) != std::string::npos; ++at)
    ++reuses;
  EXPECT_EQ(reuses, 2) << result.err;
}

TEST(Http, Http10ClosesUnlessAskedToKeepAlive) {
  ReactorProcess reactor({"--handlers", "1"});
  const ProgramResult closing = curl({"--http1.0", "--include", url(reactor, "/fib/12")});
  EXPECT_NE(closing.out.find("Connection: close\r\n"), std::string::npos) << closing.out;
  EXPECT_TRUE(closing.out.ends_with("\r\n\r\n144\n")) << closing.out;

  const ProgramResult kept = curl({"--http1.0", "--verbose", "--header", "Connection: keep-alive",
                                   url(reactor, "/fib/12"), url(reactor, "/ping")});
  EXPECT_EQ(kept.out, "144\npong\n");
  EXPECT_NE(kept.err.find("Re-using existing connection"), std::string::npos) << kept.err;
}

TEST(Http, HeadAnswersHeadersOnly) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  // Pipelined HEAD then GET: if HEAD sent a body, the GET's status line would not come next.
  client.send("HEAD /fib/30 HTTP/1.1\r\nHost: x\r\n\r\nGET /ping HTTP/1.1\r\nHost: x\r\n\r\n");
  const HttpResponse head = read_response(client, true);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.has_header("Content-Length: 7")) << head.headers;
  const HttpResponse get = read_response(client);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "pong\n");
}

TEST(Http, PipelinedRequestsAreAnsweredInOrder) {
  ReactorProcess reactor({"--handlers", "2"});
  Client client(reactor.host(), reactor.port());
  std::string requests;
  for (int n : {5, 10, 15, 20}) requests += "GET /fib/" + std::to_string(n) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  client.send(requests);
  for (const char* answer : {"5\n", "55\n", "610\n", "6765\n"}) EXPECT_EQ(read_response(client).body, answer);
}

TEST(Http, StatusCodesForWhatCannotBeServed) {
  ReactorProcess reactor({"--handlers", "1", "--max-head-bytes", "1k", "--max-request-bytes", "2k"});
  EXPECT_EQ(send_and_read(reactor, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
  EXPECT_EQ(send_and_read(reactor, "GET /quit HTTP/1.1\r\nHost: a\r\n\r\n").status, 404);
  const HttpResponse bad_argument = send_and_read(reactor, "GET /fib/93 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(bad_argument.status, 400);
  EXPECT_EQ(bad_argument.body, "fib takes one whole number from 0 to 92\n");
  const HttpResponse put =
      send_and_read(reactor, "PUT /fib/10 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(put.status, 405);
  EXPECT_TRUE(put.has_header("Allow: GET, HEAD, POST")) << put.headers;
  EXPECT_EQ(send_and_read(reactor, "GET /ping HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n").status, 400);
  EXPECT_EQ(send_and_read(reactor, "GET /ping HTTP/2.0\r\n\r\n").status, 505);
  EXPECT_EQ(send_and_read(reactor, "GET /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n").status,
            413);
  const HttpResponse huge = send_and_read(
      reactor, "GET /ping HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(4000, 'x') + "\r\n\r\n");
  EXPECT_EQ(huge.status, 431);
  EXPECT_TRUE(huge.has_header("Connection: close"));
}

TEST(Http, BodiesAreReadWhetherSizedOrChunkedAndCapped) {
  ReactorProcess reactor({"--handlers", "1", "--max-request-bytes", "1k"});
  Client client(reactor.host(), reactor.port());
  // A sized body and a chunked one are consumed whole: the requests after them are read correctly.
  client.send("PUT /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world");
  EXPECT_EQ(read_response(client).status, 405);
  client.send(
      "PUT /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
      "world\r\n0\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 405);
  client.send("GET /fib/11 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(read_response(client).body, "89\n");
  // A chunked body over the cap.
  client.send("POST /ping HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" +
              std::string(2048, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 413);
  EXPECT_TRUE(client.wait_closed(5s));
}

TEST(Http, AStalledRequestGets408) {
  ReactorProcess reactor({"--handlers", "1", "--read-timeout", "300ms"});
  Client client(reactor.host(), reactor.port());
  client.send("GET /ping HTTP/1.1\r\nHost: x\r\n");
  const HttpResponse response = read_response(client);
  EXPECT_EQ(response.status, 408);
  EXPECT_TRUE(response.has_header("Connection: close"));
  EXPECT_TRUE(client.wait_closed(5s));
}

TEST(Http, AHandlerWaitingForAStalledBodyGivesUpWith408) {
  // The head is complete, so the handler has the connection and reads the body itself: it gives up after
  // the same --read-timeout as the reactor.
  ReactorProcess reactor({"--handlers", "1", "--read-timeout", "300ms"});
  Client client(reactor.host(), reactor.port());
  client.send("POST /ping HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
  const HttpResponse response = read_response(client);
  EXPECT_EQ(response.status, 408);
  EXPECT_TRUE(response.has_header("Connection: close"));
  EXPECT_TRUE(client.wait_closed(5s));
  EXPECT_EQ(send_and_read(reactor, "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n").body,
            "pong\n");  // The handler is free.
}

TEST(Http, TheReactorsOwnAnswersAreHttp) {
  // --request-timeout leaves room for a loaded machine: spin burns CPU time, which the tests running beside
  // this one stretch in wall-clock time.
  ReactorProcess reactor({"--handlers", "1", "--max-queue", "0", "--request-timeout", "3s"});
  reactor.expect_crash_reports();
  // Until a (new) handler has said hello, nothing may wait either: wait until one is idle.
  const auto wait_until_served = [&] {
    return wait_until([&] { return reactor.idle_handlers() == 1; }, 10s);
  };
  ASSERT_TRUE(wait_until_served());
  // The only handler is busy and nothing may wait: 503 with Retry-After.
  Client busy(reactor.host(), reactor.port());
  busy.send("GET /spin/300 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  const HttpResponse refused = send_and_read(reactor, "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(refused.status, 503);
  EXPECT_TRUE(refused.has_header("Retry-After: 1")) << refused.headers;
  EXPECT_EQ(read_response(busy).status, 200);

  // Too long: 504.
  ASSERT_TRUE(wait_until_served());
  const HttpResponse slow = send_and_read(reactor, "GET /spin/20000 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(slow.status, 504);

  // The handler dies mid-request: 502.
  ASSERT_TRUE(wait_until_served());
  Client client(reactor.host(), reactor.port());
  const int64_t answered_before = reactor.requests_answered();
  client.send("GET /pid HTTP/1.1\r\nHost: a\r\n\r\nGET /spin/20000 HTTP/1.1\r\nHost: a\r\n\r\n");
  const pid_t handler = std::stoi(read_response(client).body);
  // The reactor has the handler's report of the first answer: the spin runs.
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == answered_before + 1; }, 10s));
  ::kill(handler, SIGKILL);
  const HttpResponse crashed = read_response(client);
  EXPECT_EQ(crashed.status, 502);
  EXPECT_EQ(crashed.body, "handler crashed\n");
}

TEST(Http, KeepAliveConnectionsDoNotHoldAHandler) {
  ReactorProcess reactor({"--handlers", "1"});
  Client kept(reactor.host(), reactor.port());
  kept.send("GET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(read_response(kept).status, 200);
  // The kept-alive connection is idle; the only handler is free for others.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(send_and_read(reactor, "GET /fib/3 HTTP/1.1\r\nHost: a\r\n\r\n").body, "2\n");
  kept.send("GET /fib/4 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(read_response(kept).body, "3\n");
}

TEST(Http, NetcatUsersSeeNoChange) {
  ReactorProcess reactor({"--handlers", "1"});
  const ProgramResult result =
      run_program({"nc", "-N", reactor.host(), std::to_string(reactor.port())}, "fib 30\n", 20s);
  EXPECT_EQ(result.out, "832040\n");
}

TEST(Http, ABoundedWrkRunHasNoErrors) {
  ReactorProcess reactor({"--handlers", "2"});
  const ProgramResult result = run_program(
      {"wrk", "--threads", "2", "--connections", "16", "--duration", "1s", url(reactor, "/fib/15")}, "", 30s);
  expect_clean_wrk_run(result, 100);
}

}  // namespace
}  // namespace handoff::testing
