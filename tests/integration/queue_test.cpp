// Integration tests of waiting for a handler and of the time limits on it (docs/operations.md, "What the
// client sees"): a request that finds every handler busy waits its turn and is served; a full queue and a
// queue timeout answer "ERR busy", a request timeout "ERR timeout"; a client that leaves while its request
// waits or runs costs nothing, one that only half-closes is still answered; no request waits behind another
// connection's pipeline. Where a test must know that a handler has not finished yet, it stops that handler
// (tests/support/stopped_process.hpp) rather than race a deadline against its CPU work.

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

pid_t pid_of(Client& client) {
  client.send("pid\n");
  return std::stoi(client.read_line());
}

// The only handler of a --handlers 1 reactor, stopped in the middle of a request that lasts a second at least
// (so it cannot have finished before it was stopped), and the client that waits for that request's answer.
struct StuckHandler {
  explicit StuckHandler(const ReactorProcess& reactor) : client(reactor.host(), reactor.port()) {
    EXPECT_TRUE(client.send("spin 1000\n"));
    EXPECT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
    stopped.emplace(reactor.handler_pids().at(0));
    EXPECT_TRUE(stopped->stopped());
  }
  // Lets the handler finish; its client gets its answer.
  void expect_answered() {
    stopped->resume();
    EXPECT_EQ(client.read_line(), "spun 1000");
  }
  Client client;
  std::optional<StoppedProcess> stopped;
};

// Every handler is busy: a newcomer waits (the reactor counts it as queued while both spin), and is served
// once one of them is done.
TEST(Queue, AClientArrivingWhileAllHandlersAreBusyWaitsAndIsServed) {
  ReactorProcess reactor({"--handlers", "2"});
  std::vector<Client> busy = connect_each_sending(reactor.host(), reactor.port(), 2, "spin 1500\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  Client third(reactor.host(), reactor.port());
  ASSERT_TRUE(third.send("ping\n"));
  EXPECT_TRUE(wait_until(
      [&] {
        const std::string json = reactor.stats();
        return stat_in(json, "pool.queue_length") == 1 && stat_in(json, "counters.requests") == 0;
      },
      10s))
      << reactor.stats();
  EXPECT_EQ(third.read_line(), "pong");
  for (Client& client : busy) EXPECT_EQ(client.read_line(), "spun 1500");
}

// The only handler is stuck and one request waits: one more is refused at once, not after a wait.
TEST(Queue, AFullQueueAnswersErrBusyAtOnceAndAcceptingGoesOn) {
  ReactorProcess reactor({"--handlers", "1", "--max-queue", "1"});
  StuckHandler stuck(reactor);
  Client queued(reactor.host(), reactor.port());
  ASSERT_TRUE(queued.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s));
  Client refused(reactor.host(), reactor.port());
  ASSERT_TRUE(refused.send("ping\n"));
  EXPECT_EQ(refused.read_line(), "ERR busy");
  EXPECT_TRUE(refused.wait_closed(10s));
  EXPECT_EQ(reactor.stat("counters.errors.busy"), 1);
  stuck.expect_answered();
  EXPECT_EQ(queued.read_line(), "pong");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

// While the only handler is stuck, a waiting request is refused once it has waited --queue-timeout.
TEST(Queue, ARequestThatWaitsTooLongGetsErrBusy) {
  ReactorProcess reactor({"--handlers", "1", "--queue-timeout", "300ms"});
  StuckHandler stuck(reactor);
  Client waiting(reactor.host(), reactor.port());
  const Clock::time_point sent = Clock::now();
  ASSERT_TRUE(waiting.send("ping\n"));
  EXPECT_EQ(waiting.read_line(), "ERR busy");
  // Not before its time: the reactor's timers count on the loop's clock, read at the start of a turn in whole
  // milliseconds, so the refusal may come a moment short of 300 ms after the send.
  EXPECT_GE(Clock::now() - sent, 290ms);
  EXPECT_TRUE(waiting.wait_closed(10s));
  stuck.expect_answered();
}

// `spin 10000` lasts at least 10 s: an "ERR timeout" read within 5 s is the timeout's.
TEST(Queue, ARequestOverTheTimeoutGetsErrTimeoutAndAFreshHandler) {
  ReactorProcess reactor({"--handlers", "1", "--request-timeout", "400ms"});
  Client client(reactor.host(), reactor.port());
  const pid_t before = pid_of(client);
  ASSERT_TRUE(client.send("spin 10000\nping\n"));
  EXPECT_EQ(client.read_line(5s), "ERR timeout");
  // The connection is closed, so the pipelined ping can never receive the late answer of the spin.
  std::string rest;
  EXPECT_TRUE(client.wait_closed(10s, &rest));
  EXPECT_EQ(rest, "");
  Client next(reactor.host(), reactor.port());
  EXPECT_NE(pid_of(next), before);
  EXPECT_NE(reactor.stderr_text().find("exceeded --request-timeout"), std::string::npos);
}

// --- A client that leaves while its request waits ---

class LeavingWhileWaiting : public ::testing::TestWithParam<std::string> {};

// Over HTTP a client that closes has left (nginx's rule): its request is dropped at once, while the only
// handler is still stuck, and never computed; sent ahead to that handler (--send-ahead on), it is withdrawn,
// and the handler skips it.
TEST_P(LeavingWhileWaiting, AnHttpClientThatLeavesIsDroppedAtOnceAndNeverComputed) {
  const bool ahead = GetParam() == "on";
  ReactorProcess reactor({"--handlers", "1", "--send-ahead", GetParam()});
  StuckHandler stuck(reactor);
  {
    Client leaving(reactor.host(), reactor.port());
    ASSERT_TRUE(leaving.send("GET /spin/2000 HTTP/1.1\r\nHost: a\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s));
    EXPECT_EQ(reactor.stat("counters.sent_ahead"), ahead ? 1 : 0);
  }
  EXPECT_TRUE(wait_until([&] { return reactor.queue_length() == 0; }, 10s)) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.abandoned"), 1) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.withdrawn"), ahead ? 1 : 0) << reactor.stats();
  stuck.expect_answered();
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 1; }, 10s));
  EXPECT_EQ(reactor.requests_answered(), 1);  // The spin only.
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0);
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

INSTANTIATE_TEST_SUITE_P(SendAhead, LeavingWhileWaiting, ::testing::Values("on", "off"),
                         [](const auto& info) { return "SendAhead_" + info.param; });

// `printf 'fib 20\n' | nc -N` sends its request, then EOF, and waits for the answer: on the line protocol EOF
// is no sign that the client left, whether its request runs or waits.
TEST(Queue, LineClientsThatOnlyHalfCloseAreStillAnsweredRunningOrWaiting) {
  ReactorProcess reactor({"--handlers", "1"});
  StuckHandler running(reactor);
  running.client.finish_sending();
  Client waiting(reactor.host(), reactor.port());
  ASSERT_TRUE(waiting.send("fib 20\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s));
  waiting.finish_sending();
  running.expect_answered();
  EXPECT_TRUE(running.client.wait_closed(10s));
  EXPECT_EQ(waiting.read_line(), "6765");
  EXPECT_TRUE(waiting.wait_closed(10s));
  EXPECT_EQ(reactor.stat("counters.abandoned"), 0);
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0);
}

// --- A client that leaves while its request runs ---

// Requests whose clients had left were computed anyway: two fire-and-forget `fib 92` held both handlers until
// --request-timeout. A running request whose client has gone (over HTTP, EOF; on either protocol, a reset)
// is cancelled now: the built-in spin does not look, so its handler is replaced once --cancel-grace (1 s) has
// passed, and the cancel counted.
TEST(Cancel, AnHttpClientThatLeavesWhileItsRequestRunsCancelsIt) {
  ReactorProcess reactor({"--handlers", "1"});
  {
    Client leaving(reactor.host(), reactor.port());
    ASSERT_TRUE(leaving.send("GET /spin/20000 HTTP/1.1\r\nHost: a\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  }
  EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.cancelled") == 1; }, 10s)) << reactor.stats();
  EXPECT_TRUE(reactor.wait_for_handlers(1, 10s));
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 0);
}

TEST(Cancel, ALineClientThatResetsWhileItsRequestRunsCancelsIt) {
  ReactorProcess reactor({"--handlers", "1"});
  {
    Client leaving(reactor.host(), reactor.port());
    ASSERT_TRUE(leaving.send("spin 20000\n"));
    ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
    const linger reset_on_close{.l_onoff = 1, .l_linger = 0};
    ASSERT_EQ(::setsockopt(leaving.fd(), SOL_SOCKET, SO_LINGER, &reset_on_close, sizeof(reset_on_close)), 0);
  }
  EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.cancelled") == 1; }, 10s)) << reactor.stats();
  EXPECT_TRUE(reactor.wait_for_handlers(1, 10s));
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
}

// A client that reads its answer and closes at once must not get its handler killed as if it had left early:
// the handler is about to report the answer it wrote.
TEST(Cancel, ClientsThatCloseRightAfterTheirAnswerCancelNothing) {
  ReactorProcess reactor({"--handlers", "2"});
  for (int i = 0; i < 200; ++i) {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send("GET /fib/15 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    ASSERT_EQ(read_response(client).status, 200);
  }
  EXPECT_TRUE(wait_until([&] { return reactor.requests_answered() == 200; }, 10s)) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0) << reactor.stats();
}

// --- Cancellation that can be gentle: the handler is told, and killed only after --cancel-grace ---

size_t occurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// The service_ms of the access log line of request (its first line, as logged); -1 when there is none.
double service_ms_of(const std::string& log, const std::string& request) {
  const size_t line = log.find("\"" + request + "\" ");
  if (line == std::string::npos) return -1;
  const size_t at = log.find("service_ms=", line);
  return at == std::string::npos ? -1 : std::stod(log.substr(at + 11));
}

// An HTTP client that sends request, and leaves (closes) once the only handler has begun it.
void leave_once_begun(const ReactorProcess& reactor, const std::string& request) {
  Client leaving(reactor.host(), reactor.port());
  ASSERT_TRUE(leaving.send(request));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s)) << reactor.stats();
}

// Each test runs with a handler of each library: "Cpp" or "Python".
class GentleCancel : public ::testing::TestWithParam<std::string> {
 protected:
  // handler/examples/primes: it looks at request.cancelled every 1024 numbers.
  std::string cooperative_handler() const {
    return GetParam() == "Cpp" ? environment("HANDOFF_PRIMES")
                               : "python3 " + environment("HANDOFF_EXAMPLES_SOURCE") + "/primes.py";
  }
  // spin MS, which never looks: the built-in handler, or a Python one.
  std::string stubborn_handler() const {
    return GetParam() == "Cpp" ? environment("HANDOFF_HANDLER") : python_spin_handler(folder_);
  }
  TemporaryFolder folder_;
};

const std::string kEndlessPrimes = "GET /primes/1000000000000 HTTP/1.1\r\nHost: a\r\n\r\n";

// Every cancel cost a process start: for a Python app that imports much, seconds each. A handler whose code
// looks at request.cancelled stops by itself, long before a grace that no loaded machine outlasts: the same
// process serves the next request, nothing is killed, and the request is logged once, as one its handler
// ended itself. Without the word in its answer record it would run until --request-timeout.
TEST_P(GentleCancel, AHandlerThatLooksStopsWithinTheGraceAndIsNotReplaced) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", cooperative_handler(), "--cancel-grace", "600s",
                          "--request-timeout", "600s", "--access-log", "on"});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const std::vector<pid_t> before = reactor.handler_pids();
  leave_once_begun(reactor, kEndlessPrimes);
  EXPECT_TRUE(wait_until(
      [&] { return reactor.stat("counters.cancelled_gently") == 1 && reactor.busy_handlers() == 0; }, 60s))
      << reactor.stats();
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "primes 100"), "25");
  EXPECT_EQ(reactor.handler_pids(), before);
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.respawns"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0) << reactor.stats();
  ASSERT_TRUE(reactor.wait_for_log("\"primes 100\" 200", 10s));
  EXPECT_EQ(reactor.stat("counters.requests"), 1) << reactor.stats();  // The primes below 100 alone.
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(occurrences(log, "\"GET /primes/1000000000000 HTTP/1.1\" 499 "), 1u) << log;
  EXPECT_EQ(occurrences(log, " reason=\"the client left; its handler ended the request itself\""), 1u) << log;
  EXPECT_EQ(occurrences(log, " access "), 2u) << log;
}

// A handler whose code never looks is killed once the grace has passed since its client left — not before:
// the reactor's own measure of the request's run, in its access line, is at least the grace — and replaced.
TEST_P(GentleCancel, AHandlerThatDoesNotLookIsKilledOnceTheGraceHasPassed) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", stubborn_handler(), "--cancel-grace", "300ms",
                          "--request-timeout", "600s", "--access-log", "on"});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const std::vector<pid_t> before = reactor.handler_pids();
  leave_once_begun(reactor, "GET /spin/600000 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.cancelled") == 1; }, 60s)) << reactor.stats();
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.respawns") == 1; }, 30s)) << reactor.stats();
  ASSERT_TRUE(reactor.wait_for_handlers(1, 30s));
  EXPECT_NE(reactor.handler_pids(), before);
  EXPECT_EQ(reactor.stat("counters.cancelled_gently"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 0) << reactor.stats();
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(occurrences(log, "\"GET /spin/600000 HTTP/1.1\" 499 "), 1u) << log;
  EXPECT_EQ(occurrences(log, " reason=\"cancelled: the client left\""), 1u) << log;
  EXPECT_GE(service_ms_of(log, "GET /spin/600000 HTTP/1.1"), 300) << log;
  EXPECT_NE(log.find("--cancel-grace (300 ms) later"), std::string::npos) << log;
}

// --cancel off: a handler that never looks is not killed for its departed client, whatever the grace says.
// Its request runs to its end (the answer going nowhere), and the same process serves the next request.
TEST_P(GentleCancel, WithCancelOffTheRequestRunsToItsEndAndTheHandlerServesOn) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", stubborn_handler(), "--cancel", "off",
                          "--cancel-grace", "0", "--access-log", "on"});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const std::vector<pid_t> before = reactor.handler_pids();
  leave_once_begun(reactor, "GET /spin/300 HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_TRUE(wait_until(
      [&] { return reactor.stat("counters.cancelled_gently") == 1 && reactor.busy_handlers() == 0; }, 60s))
      << reactor.stats();
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "spin 1"), "spun 1");
  EXPECT_EQ(reactor.handler_pids(), before);
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.respawns"), 0) << reactor.stats();
  ASSERT_TRUE(reactor.wait_for_log("\"spin 1\" 200", 10s));
  const std::string log = reactor.stderr_text();
  EXPECT_EQ(occurrences(log, "\"GET /spin/300 HTTP/1.1\" 499 "), 1u) << log;
  // It ran all of its 300 ms (CPU time for the built-in spin, which takes at least as long on the clock).
  EXPECT_GE(service_ms_of(log, "GET /spin/300 HTTP/1.1"), 300) << log;
}

INSTANTIATE_TEST_SUITE_P(Libraries, GentleCancel, ::testing::Values("Cpp", "Python"),
                         [](const auto& info) { return info.param; });

// --- No request waits behind another connection's pipeline ---

TEST(Pipelining, AnotherClientIsServedBetweenTheRequestsOfAPipeline) {
  ReactorProcess reactor({"--handlers", "1"});
  Client hog(reactor.host(), reactor.port());
  ASSERT_TRUE(hog.send("spin 1000\nspin 1000\nspin 1000\nspin 1000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  Client other(reactor.host(), reactor.port());
  ASSERT_TRUE(other.send("ping\n"));
  EXPECT_EQ(other.read_line(), "pong");
  // Each spin's answer is written the moment it is done, and the next spin lasts a second at least: when the
  // pong arrives, the hog has at most the answer of the one spin that was running. Two would mean the ping
  // waited. (What this reads is only what has come already, so a loaded machine can only make it fewer.)
  int spun_before_pong = 0;
  while (hog.read_line(50ms) == "spun 1000") ++spun_before_pong;
  EXPECT_LE(spun_before_pong, 1) << "the ping waited behind more than one spin of the pipeline";
  for (int i = spun_before_pong; i < 4; ++i) EXPECT_EQ(hog.read_line(), "spun 1000") << i;
}

// --- Fair queueing: clients are served in turn ---

// The access log's lines for requests of source (an address, "127.0.0.1:"), up to the first line of
// until, if given.
size_t answered_for(const std::string& log, const std::string& source, const std::string& until = "") {
  size_t count = 0;
  for (size_t at = 0, end; (end = log.find('\n', at)) != std::string::npos; at = end + 1) {
    const std::string line = log.substr(at, end - at);
    if (!until.empty() && line.find(" access " + until) != std::string::npos) break;
    if (line.find(" access " + source) != std::string::npos) ++count;
  }
  return count;
}

const std::string kSpin50 = "GET /spin/50 HTTP/1.1\r\nHost: a\r\n\r\n";

// One client (127.0.0.1) has 200 requests of 50 ms of CPU each waiting; a second one (127.0.0.2) asks once.
// It is served in its turn: behind at most the requests the two handlers run and the one each holds sent
// ahead, not behind the first client's 200. The order is read from the access log, which the reactor writes
// as answers come: no clock decides it.
TEST(FairQueue, ASecondClientIsServedWithinTwoServiceTimesNotBehindTheFirstClientsQueue) {
  ReactorProcess reactor({"--handlers", "2", "--access-log", "on", "--max-queue", "1000", "--queue-timeout",
                          "600s", "--request-timeout", "600s"});
  std::vector<Client> crowd = connect_each_sending(reactor.host(), reactor.port(), 200, kSpin50);
  // The steady state: the first answers set each handler's depth ahead to one (requests longer than
  // 100 µs), and the aheads sent before that are served.
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() >= 12; }, 120s));
  // The snapshot and the second client's arrival with both handlers held still: no answer can come between.
  std::vector<std::unique_ptr<StoppedProcess>> held;
  for (const pid_t pid : reactor.handler_pids()) held.push_back(std::make_unique<StoppedProcess>(pid));
  // Reports a handler sent just before it stopped are read by now (the queue no longer moves).
  int64_t waiting = -1;
  ASSERT_TRUE(wait_until(
      [&] {
        const int64_t before = std::exchange(waiting, reactor.queue_length());
        return before == waiting;
      },
      10s));
  ASSERT_GE(waiting, 150);
  // /stats names the client that crowds the queue.
  const std::string stats = reactor.stats();
  EXPECT_NE(stats.find("\"waiting_clients\":[{\"client\":\"127.0.0.1\",\"waiting\":"), std::string::npos)
      << stats;
  const size_t crowd_before = answered_for(reactor.stderr_text(), "127.0.0.1:");
  Client second(reactor.host(), reactor.port(), "127.0.0.2");
  const auto sent_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(second.send(kSpin50));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("pool.queue_length") == waiting + 1; }, 10s))
      << reactor.stats();
  held.clear();  // Resumed.
  EXPECT_EQ(read_response(second).status, 200);
  const auto waited = std::chrono::steady_clock::now() - sent_at;
  ASSERT_TRUE(reactor.wait_for_log(" access 127.0.0.2:", 10s));
  const size_t crowd_between = answered_for(reactor.stderr_text(), "127.0.0.1:", "127.0.0.2:") - crowd_before;
  std::printf(
      "fairness: with %lld of the first client's requests waiting, the second client's request was "
      "answered %lld ms after it was sent (50 ms of it its own), behind %zu of them\n",
      static_cast<long long>(waiting),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()),
      crowd_between);
  // Its turn comes at the second request a handler takes (the first client's turn may be first), and it
  // waits behind that handler's current one: two service times. Answered meanwhile: each handler's current
  // and next one (4), the other handler's next while it runs (1), and one more as the handlers' runs fall
  // (1). Without turns, it would wait behind the whole queue.
  EXPECT_LE(crowd_between, 6u);
  crowd.clear();  // HTTP clients that leave: their queued requests are dropped, the running ones cancelled.
}

// --max-queue-per-client: one client's excess is refused at once (503), while another client's request
// still waits and is served.
TEST(FairQueue, MaxQueuePerClientRefusesOneClientsExcessAtOnce) {
  ReactorProcess reactor({"--handlers", "2", "--max-queue-per-client", "20", "--queue-timeout", "600s",
                          "--request-timeout", "600s"});
  // Both handlers busy, and held still: nothing the first client sent from then on is served meanwhile.
  std::vector<Client> crowd = connect_each_sending(reactor.host(), reactor.port(), 2, kSpin50);
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  std::vector<std::unique_ptr<StoppedProcess>> held;
  for (const pid_t pid : reactor.handler_pids()) held.push_back(std::make_unique<StoppedProcess>(pid));
  for (Client& client : connect_each_sending(reactor.host(), reactor.port(), 98, kSpin50)) {
    crowd.push_back(std::move(client));
  }
  // Of the 98: some sent ahead to the busy handlers (--send-ahead), 20 queued, the rest refused at once.
  ASSERT_TRUE(
      wait_until([&] { return reactor.stat("counters.busy_client") + reactor.queue_length() == 98; }, 30s))
      << reactor.stats();
  const int64_t refused = reactor.stat("counters.busy_client");
  EXPECT_EQ(refused, 98 - 20 - reactor.stat("counters.sent_ahead")) << reactor.stats();
  EXPECT_NE(reactor.stats().find("{\"client\":\"127.0.0.1\",\"waiting\":20}"), std::string::npos)
      << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.errors.busy"), refused);
  // Another client's request is taken, and served once the handlers go on.
  Client second(reactor.host(), reactor.port(), "127.0.0.2");
  ASSERT_TRUE(second.send(kSpin50));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 98 - refused + 1; }, 10s)) << reactor.stats();
  held.clear();
  EXPECT_EQ(read_response(second).status, 200);
  EXPECT_EQ(reactor.stat("counters.busy_client"), refused);
  size_t busy_answers = 0;
  for (Client& client : crowd) {
    const HttpResponse response = read_response(client);
    if (response.status == 503) ++busy_answers;
    if (busy_answers == static_cast<size_t>(refused)) break;
  }
  EXPECT_EQ(busy_answers, static_cast<size_t>(refused));
  crowd.clear();
}

}  // namespace
}  // namespace handoff::testing
