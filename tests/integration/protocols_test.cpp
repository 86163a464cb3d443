// Integration tests of the two protocols on the one port (docs/protocol.md): the line protocol through real
// nc and raw sockets, HTTP/1.1 through real curl and wrk and raw requests for the malformed cases, the
// reactor's own answers in each, and no delayed-ACK stall for pipelined requests. Real reactor, real
// handlers, loopback.

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

// --- The line protocol ---

std::string nc(const ReactorProcess& reactor, const std::string& input) {
  const ProgramResult result =
      run_program({"nc", "-N", reactor.host(), std::to_string(reactor.port())}, input, 20s);
  EXPECT_EQ(result.status, 0) << result.err;
  return result.out;
}

TEST(LineProtocol, NetcatGetsTheAnswer) {
  ReactorProcess reactor({"--handlers", "2"});
  EXPECT_EQ(nc(reactor, "fib 30\n"), "832040\n");
  EXPECT_EQ(nc(reactor, "ping\r\n"), "pong\n");
}

TEST(LineProtocol, EveryCommandAndItsErrorsOnOneSession) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  const std::vector<std::pair<std::string, std::string>> exchanges = {
      {"ping", "pong"},
      {"fib 0", "0"},
      {"fib 25", "75025"},
      {"spin 20", "spun 20"},
      {"fib 93", "ERR fib takes one whole number from 0 to 92"},
      {"fib -1", "ERR fib takes one whole number from 0 to 92"},
      {"spin forever", "ERR spin takes one whole number of milliseconds from 0 to 600000"},
      {"hello", "ERR unknown command 'hello' (commands: ping, pid, client, fib, spin, quit)"},
      {"", "ERR empty request"},
      {"ping", "pong"},  // Still usable after errors.
  };
  for (const auto& [request, answer] : exchanges) {
    ASSERT_TRUE(client.send(request + "\r\n"));
    EXPECT_EQ(client.read_line(), answer) << request;
  }
  ASSERT_TRUE(client.send("pid\n"));
  const std::vector<pid_t> handlers = reactor.handler_pids();
  ASSERT_EQ(handlers.size(), 1u);
  EXPECT_EQ(client.read_line(), std::to_string(handlers[0]));

  ASSERT_TRUE(client.send("quit\n"));
  std::string rest;
  EXPECT_TRUE(client.wait_closed(5s, &rest));
  EXPECT_EQ(rest, "");
}

TEST(LineProtocol, PipelinedLinesAreAllAnsweredInOrder) {
  ReactorProcess reactor({"--handlers", "2"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("fib 20\nping\nfib 10\nbogus\nfib 1\n"));
  EXPECT_EQ(client.read_line(), "6765");
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "55");
  EXPECT_EQ(client.read_line().substr(0, 19), "ERR unknown command");
  EXPECT_EQ(client.read_line(), "1");

  // A request split across packets, with the rest of a pipeline behind it.
  // The pauses make separate packets (the client's pace); they wait for no state.
  ASSERT_TRUE(client.send("fi"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(client.send("b 12\npi"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(client.send("ng\n"));
  EXPECT_EQ(client.read_line(), "144");
  EXPECT_EQ(client.read_line(), "pong");
}

TEST(LineProtocol, ATelnetLikeSessionKeepsItsConnection) {
  ReactorProcess reactor({"--handlers", "2"});
  Client client(reactor.host(), reactor.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.send("fib " + std::to_string(i) + "\r\n"));
    ASSERT_NE(client.read_line(), "<closed>");
    std::this_thread::sleep_for(5ms);  // A person typing, not a wait for a state.
  }
  ASSERT_TRUE(client.send("ping\r\n"));
  EXPECT_EQ(client.read_line(), "pong");
}

TEST(LineProtocol, ALastLineWithoutLineEndIsAnsweredAtEof) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("ping\nfib 20"));
  client.finish_sending();
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "6765");
  EXPECT_TRUE(client.wait_closed(5s));
}

TEST(LineProtocol, ALineLongerThanTheHeadCapIsFinishedByTheHandler) {
  ReactorProcess reactor({"--handlers", "1", "--max-head-bytes", "16"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("fib" + std::string(5000, ' ') + "21\nping\n"));
  EXPECT_EQ(client.read_line(), "10946");
  EXPECT_EQ(client.read_line(), "pong");
  ASSERT_TRUE(client.send("fib 22\n"));
  EXPECT_EQ(client.read_line(), "17711");
}

TEST(LineProtocol, ALineOverTheRequestCapIsRefusedThenClosed) {
  ReactorProcess reactor({"--handlers", "1", "--max-request-bytes", "100k"});
  Client client(reactor.host(), reactor.port());
  std::thread sender([&] { client.send("fib " + std::string(300 * 1024, '1') + "\nping\n"); });
  EXPECT_EQ(client.read_line(), "ERR request too large");
  EXPECT_TRUE(client.wait_closed(10s));
  sender.join();
  // The server is unharmed.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

TEST(LineProtocol, ServesIpv6) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool has_ipv6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_ipv6) GTEST_SKIP() << "no IPv6 loopback on this machine";

  ReactorProcess reactor({"--listen", "[::1]:0", "--handlers", "1"});
  EXPECT_EQ(reactor.host(), "::1");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 30"), "832040");
  EXPECT_EQ(nc(reactor, "ping\n"), "pong\n");
}

// --- HTTP/1.1 ---

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

TEST(Http, TheReactorsOwnAnswersAreHttp) {
  // --request-timeout leaves room for a loaded machine: `spin 300` burns CPU time, which the tests running
  // beside this one stretch in wall-clock time; `spin 20000` lasts 20 s at least, and gets the 504.
  ReactorProcess reactor({"--handlers", "1", "--max-queue", "0", "--request-timeout", "3s"});
  reactor.expect_crash_reports();
  // Until a (new) handler has said hello, nothing may wait either: wait until one is idle.
  const auto wait_until_served = [&] {
    return wait_until([&] { return reactor.idle_handlers() == 1; }, 10s);
  };
  ASSERT_TRUE(wait_until_served());
  // The only handler is busy (stopped, so that it stays busy) and nothing may wait: 503 with Retry-After.
  Client busy(reactor.host(), reactor.port());
  busy.send("GET /spin/300 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  {
    const StoppedProcess stuck(reactor.handler_pids().at(0));
    ASSERT_TRUE(stuck.stopped());
    const HttpResponse refused = send_and_read(reactor, "GET /ping HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(refused.status, 503);
    EXPECT_TRUE(refused.has_header("Retry-After: 1")) << refused.headers;
  }
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

TEST(Http, ABoundedWrkRunHasNoErrors) {
  ReactorProcess reactor({"--handlers", "2"});
  const ProgramResult result = run_program(
      {"wrk", "--threads", "2", "--connections", "16", "--duration", "1s", url(reactor, "/fib/15")}, "", 30s);
  expect_clean_wrk_run(result, 100);
}

// --- Two requests in one packet: no delayed-ACK stall ---

// The median of twenty rounds on one connection, each a request sent and its answers read.
Clock::duration median_round(Client& client, const std::string& request,
                             const std::function<void(Client&)>& read_answers) {
  std::vector<Clock::duration> rounds;
  for (int round = 0; round < 20; ++round) {
    EXPECT_TRUE(client.send(request));
    const Clock::time_point start = Clock::now();
    read_answers(client);
    rounds.push_back(Clock::now() - start);
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds[rounds.size() / 2];
}

// With Nagle's algorithm the second answer of two pipelined requests waits for the ACK of the first, and once
// a connection is past its first exchanges (TCP quick-ACK mode) that ACK is delayed by 40 ms. Two requests in
// one packet must take about as long as one: the medians of twenty rounds of each, on the same connection in
// the same run, tell that apart from the slower rounds of a loaded machine, which slow both alike.
TEST(Nagle, TwoPipelinedRequestsAreAnsweredWithoutWaitingForAnAck) {
  struct Protocol {
    std::string request;
    std::function<void(Client&)> read_answer;
  };
  const Protocol protocols[] = {
      {"ping\n", [](Client& client) { EXPECT_EQ(client.read_line(), "pong"); }},
      {"GET /ping HTTP/1.1\r\nHost: a\r\n\r\n",
       [](Client& client) { EXPECT_EQ(read_response(client).body, "pong\n"); }},
  };
  ReactorProcess reactor({"--handlers", "1"});
  for (const Protocol& protocol : protocols) {
    Client client(reactor.host(), reactor.port());
    const Clock::duration one = median_round(client, protocol.request, protocol.read_answer);
    const Clock::duration two =
        median_round(client, protocol.request + protocol.request, [&](Client& client) {
          protocol.read_answer(client);
          protocol.read_answer(client);
        });
    EXPECT_LT(two, one + 25ms) << protocol.request << "the median round took "
                               << std::chrono::duration_cast<std::chrono::microseconds>(two).count()
                               << " us for two requests, "
                               << std::chrono::duration_cast<std::chrono::microseconds>(one).count()
                               << " us for one";
  }
}

}  // namespace
}  // namespace handoff::testing
