// Integration tests of the dispatch fast paths (issue "Hand-off at the speed of a prefork server"): a handler
// lingering on a keep-alive connection serves its client's next requests without a hand-off, and gives none
// of handoff's promises away for it — a request that waits takes the handler back at once, a handler killed
// while it lingers loses nothing, a client that leaves costs no handler.

#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/python_spin_handler.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

uint64_t fibonacci(int n) {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

// Runs clients keep-alive clients at once, each asking `fib N` requests times, one after another, N from
// n_of(client, request); returns how many answers were right.
int right_fib_answers(const ReactorProcess& reactor, int clients, int requests,
                      const std::function<int(int, int)>& n_of) {
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Client client(reactor.host(), reactor.port());
      for (int i = 0; i < requests; ++i) {
        const int n = n_of(c, i);
        if (!client.send("fib " + std::to_string(n) + "\n")) return;
        if (client.read_line() == std::to_string(fibonacci(n))) ++right;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return right;
}

// A linger far longer than any test step: what the test sees is the reclaim, never the linger running out.
const std::vector<std::string> kLongLinger = {"--handlers", "2", "--linger", "1s"};

// arguments followed by more.
std::vector<std::string> plus(std::vector<std::string> arguments, std::initializer_list<std::string> more) {
  arguments.insert(arguments.end(), more);
  return arguments;
}

TEST(Linger, ServesAKeepAliveClientsNextRequestsWithoutAHandOff) {
  ReactorProcess reactor(kLongLinger);
  Client line(reactor.host(), reactor.port());
  ASSERT_TRUE(line.send("pid\n"));
  const std::string pid = line.read_line();
  for (int i = 0; i < 19; ++i) {
    ASSERT_TRUE(line.send("pid\n"));
    EXPECT_EQ(line.read_line(), pid);
  }
  // A handler lingers only while another is idle, so that a new client finds one: one client at a time here.
  line.finish_sending();
  ASSERT_TRUE(line.wait_closed(5s));
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 2; }, 5s));
  Client http(reactor.host(), reactor.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(http.send("GET /fib/10 HTTP/1.1\r\nHost: t\r\n\r\n"));
    const HttpResponse response = read_response(http);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "55\n");
  }
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 40; }, 5s));
  // One hand-off a connection: every later request was read and served by the handler that held it.
  EXPECT_EQ(reactor.stat("counters.hand_offs"), 2);
  EXPECT_EQ(reactor.stat("counters.reclaims"), 0);
}

TEST(Linger, OffHandsOffEveryRequest) {
  ReactorProcess reactor({"--handlers", "2", "--linger", "0"});
  Client line(reactor.host(), reactor.port());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(line.send("ping\n"));
    EXPECT_EQ(line.read_line(), "pong");
  }
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 10; }, 5s));
  EXPECT_EQ(reactor.stat("counters.hand_offs"), 10);
}

// Both handlers of a --handlers 2 reactor taken: one lingers on an idle client (whose answer named its pid),
// the other computes for spin_ms.
struct BothHandlersTaken {
  BothHandlersTaken(const ReactorProcess& reactor, int spin_ms)
      : idle(reactor.host(), reactor.port()), computing(reactor.host(), reactor.port()) {
    EXPECT_TRUE(idle.send("pid\n"));
    lingering_pid = idle.read_line();
    lingering_since = std::chrono::steady_clock::now();
    // It lingers only while the other is idle: the computing request must not come before it began to. Its
    // answer is out before it decides, and a loaded machine may run the other first.
    EXPECT_TRUE(
        wait_until([&] { return reactor.stats().find("\"state\":\"lingering\"") != std::string::npos; }, 5s));
    EXPECT_TRUE(computing.send("spin " + std::to_string(spin_ms) + "\n"));
    EXPECT_TRUE(wait_until([&] { return reactor.idle_handlers() == 0; }, 5s));
  }
  // Whether the linger (kLongLinger: 1 s) has most of its time left: on a loaded machine the set-up can take
  // so long that it ends, and a request then meets a handler that just stopped lingering.
  bool lingers_on() const { return std::chrono::steady_clock::now() - lingering_since < 400ms; }
  Client idle;
  std::string lingering_pid;
  std::chrono::steady_clock::time_point lingering_since;
  Client computing;
};

// Runs check on a fresh reactor with both handlers taken, until the set-up finishes while the linger has most
// of its time left (three tries).
void with_both_taken(const std::vector<std::string>& arguments, int spin_ms,
                     const std::function<void(const ReactorProcess&, BothHandlersTaken&)>& check) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    ReactorProcess reactor(arguments);
    BothHandlersTaken taken(reactor, spin_ms);
    if (!taken.lingers_on()) continue;
    check(reactor, taken);
    return;
  }
  FAIL() << "the set-up never finished within the first 400 ms of the linger";
}

// A third client's request must not wait for the linger (1 s) nor for the computation (3 s): it takes the
// lingering handler back.
TEST(Linger, AWaitingRequestTakesTheLingeringHandlerBackAtOnce) {
  with_both_taken(kLongLinger, 3000, [](const ReactorProcess& reactor, BothHandlersTaken& taken) {
    Client waiting(reactor.host(), reactor.port());
    ASSERT_TRUE(waiting.send("pid\n"));
    EXPECT_EQ(waiting.read_line(900ms), taken.lingering_pid);
    EXPECT_EQ(reactor.stat("counters.reclaims"), 1);
    // The connection it lingered on went back to the reactor, and is served as before.
    ASSERT_TRUE(taken.idle.send("ping\n"));
    EXPECT_EQ(taken.idle.read_line(), "pong");
    EXPECT_EQ(taken.computing.read_line(), "spun 3000");
  });
}

// With no room in the queue, a request is still not refused while a handler only lingers.
TEST(Linger, ALingeringHandlerIsNotBusyForAFullQueue) {
  with_both_taken(plus(kLongLinger, {"--max-queue", "0"}), 2000,
                  [](const ReactorProcess& reactor, BothHandlersTaken& taken) {
                    Client waiting(reactor.host(), reactor.port());
                    ASSERT_TRUE(waiting.send("pid\n"));
                    EXPECT_EQ(waiting.read_line(900ms), taken.lingering_pid);
                    EXPECT_EQ(reactor.stat("counters.errors.busy"), 0);
                  });
}

// A client that keeps its handler lingering (its next request always comes in time) must not keep an old
// handler alive through a reload.
TEST(Linger, AReloadRetiresAHandlerThatLingers) {
  ReactorProcess reactor(kLongLinger);
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("pid\n"));
  const std::string old_pid = client.read_line();
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return reactor.reload_state() == "done"; }, 10s));
  ASSERT_TRUE(wait_until(
      [&] {
        if (!client.send("pid\n")) return false;
        return client.read_line() != old_pid;
      },
      10s));
  ASSERT_TRUE(wait_until([&] { return reactor.handler_pids().size() == 2; }, 10s));
  for (const pid_t handler : reactor.handler_pids()) EXPECT_NE(std::to_string(handler), old_pid);
}

TEST(Linger, AHandlerKilledWhileItLingersLosesNothing) {
  ReactorProcess reactor(kLongLinger);
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("pid\n"));
  const pid_t lingering = std::stoi(client.read_line());
  ASSERT_EQ(::kill(lingering, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.handler_exits") == 1; }, 5s));
  // No error for the request it never had; the connection goes on, served by another handler.
  ASSERT_TRUE(client.send("pid\n"));
  const std::string next = client.read_line();
  EXPECT_NE(next, std::to_string(lingering));
  EXPECT_EQ(next.find("ERR"), std::string::npos) << next;
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 0);
}

TEST(Linger, AClientThatLeavesWhileItsHandlerLingersCostsNoHandler) {
  ReactorProcess reactor(kLongLinger);
  for (int i = 0; i < 5; ++i) {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send("GET /fib/5 HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_EQ(read_response(client).status, 200);
  }  // Each closes while its handler lingers on it.
  ASSERT_TRUE(wait_until([&] { return reactor.stat("pool.open_connections") == 0; }, 5s));
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0);
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
  EXPECT_EQ(reactor.stat("counters.requests"), 5);
}

// --- A busy handler is sent its next request ahead ---

// Both handlers of a --handlers 2 reactor compute: first_ms, then (on the other) second_ms.
struct BothHandlersCompute {
  BothHandlersCompute(const ReactorProcess& reactor, int first_ms, int second_ms)
      : first_ms(first_ms),
        second_ms(second_ms),
        first(reactor.host(), reactor.port()),
        second(reactor.host(), reactor.port()) {
    EXPECT_TRUE(first.send("spin " + std::to_string(first_ms) + "\n"));
    EXPECT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 5s));
    EXPECT_TRUE(second.send("spin " + std::to_string(second_ms) + "\n"));
    EXPECT_TRUE(wait_until([&] { return reactor.idle_handlers() == 0; }, 5s));
  }
  // Both computations are answered in full.
  void expect_answered() {
    EXPECT_EQ(first.read_line(), "spun " + std::to_string(first_ms));
    EXPECT_EQ(second.read_line(), "spun " + std::to_string(second_ms));
  }
  int first_ms, second_ms;
  Client first, second;
};

const std::vector<std::string> kTwoHandlers = {"--handlers", "2", "--linger", "0"};

// A request that would wait goes ahead to a busy handler; it must still be served by whichever handler comes
// free first (FIFO: a cheap request under saturation waits only its turn). Each way round once, so that one
// of the two rounds sends it ahead to the handler that computes for long.
TEST(SendAhead, ARequestSentAheadGoesToTheHandlerThatComesFreeFirst) {
  ReactorProcess reactor(kTwoHandlers);
  for (const auto& [first_ms, second_ms] : {std::pair{2000, 200}, std::pair{200, 2000}}) {
    BothHandlersCompute computing(reactor, first_ms, second_ms);
    Client cheap(reactor.host(), reactor.port());
    ASSERT_TRUE(cheap.send("ping\n"));
    EXPECT_EQ(cheap.read_line(1500ms), "pong") << first_ms << " then " << second_ms;
    computing.expect_answered();
  }
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 2);
  EXPECT_GE(reactor.stat("counters.withdrawn"), 1);
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

// Requests keep coming while one handler is stuck on a long request: one sent ahead to it must not wait
// for it while newer ones pass by on the other handler (it goes to that one, before the queue). The stuck
// handler is the one that became busy last, which is where the dispatcher sends the next request ahead; the
// first version left it there for the 2 s.
TEST(SendAhead, ARequestAheadOnAStuckHandlerIsNotPassedByNewerOnes) {
  ReactorProcess reactor(kTwoHandlers);
  BothHandlersCompute computing(reactor, 300, 2000);
  Client cheap(reactor.host(), reactor.port());
  ASSERT_TRUE(cheap.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 5s));
  // Three clients keep the other handler busy, and the queue never empty for long.
  std::atomic<bool> streaming{true};
  std::vector<std::thread> stream;
  for (int c = 0; c < 3; ++c) {
    stream.emplace_back([&] {
      Client client(reactor.host(), reactor.port());
      while (streaming && client.send("spin 20\n") && client.read_line() == "spun 20") {
      }
    });
  }
  EXPECT_EQ(cheap.read_line(1000ms), "pong");
  streaming = false;
  for (std::thread& client : stream) client.join();
  computing.expect_answered();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

// --queue-timeout is for waiting, not for being served: a request sent ahead that its handler serves for
// longer than the timeout is answered, not refused (the first version refused it in the middle of its
// answer, and then the reactor failed on the handler's report).
TEST(SendAhead, AQueueTimeoutDoesNotCutARequestThatCameAhead) {
  ReactorProcess reactor(plus(kTwoHandlers, {"--queue-timeout", "300ms"}));
  BothHandlersCompute computing(reactor, 1000, 100);
  Client ahead(reactor.host(), reactor.port());
  ASSERT_TRUE(ahead.send("spin 700\n"));
  EXPECT_EQ(ahead.read_line(), "spun 700");
  computing.expect_answered();
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 1);
  EXPECT_EQ(reactor.stat("counters.errors.busy"), 0);
}

TEST(SendAhead, AHandlerKilledWhileItHoldsOneLosesNothingOfIt) {
  ReactorProcess reactor(kTwoHandlers);
  BothHandlersCompute computing(reactor, 5000, 5000);
  Client cheap(reactor.host(), reactor.port());
  ASSERT_TRUE(cheap.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 5s));
  for (const pid_t handler : reactor.handler_pids()) ASSERT_EQ(::kill(handler, SIGKILL), 0);
  // The requests they computed fail clearly; the one sent ahead had not begun, and is served by another.
  EXPECT_EQ(computing.first.read_line(), "ERR handler crashed");
  EXPECT_EQ(computing.second.read_line(), "ERR handler crashed");
  EXPECT_EQ(cheap.read_line(), "pong");
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 2);
}

// Over HTTP a client that closes has left (nginx's rule): its request is dropped unserved, and the handler it
// was sent ahead to skips it.
TEST(SendAhead, AClientThatLeavesWhileItsRequestIsAheadCostsNothing) {
  ReactorProcess reactor(kTwoHandlers);
  BothHandlersCompute computing(reactor, 1000, 1000);
  {
    Client leaving(reactor.host(), reactor.port());
    ASSERT_TRUE(leaving.send("GET /fib/20 HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 5s));
  }
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.abandoned") == 1; }, 5s));
  computing.expect_answered();
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 2; }, 5s));
  EXPECT_EQ(reactor.stat("counters.withdrawn"), 1);
  EXPECT_EQ(reactor.stat("counters.requests"), 2);
  EXPECT_EQ(reactor.stat("counters.cancelled"), 0);
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

// A reload must not leave a request on an old handler that computes for long: the new handlers take it.
TEST(SendAhead, AReloadHandsOneSentAheadToANewHandler) {
  ReactorProcess reactor(kTwoHandlers);
  const std::vector<pid_t> old = reactor.handler_pids();
  BothHandlersCompute computing(reactor, 3000, 3000);
  Client cheap(reactor.host(), reactor.port());
  ASSERT_TRUE(cheap.send("pid\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 5s));
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  const std::string pid = cheap.read_line(2500ms);
  ASSERT_FALSE(pid.empty());
  for (const pid_t handler : old) EXPECT_NE(pid, std::to_string(handler));
  computing.expect_answered();
}

// The Python library does not take connections ahead (its hello says so): a busy Python handler is sent
// nothing before it is idle.
TEST(SendAhead, NothingGoesAheadToAPythonHandler) {
  const TemporaryFolder folder;
  ReactorProcess reactor(plus(kTwoHandlers, {"--handler-cmd", python_spin_handler(folder)}));
  BothHandlersCompute computing(reactor, 300, 300);
  Client waiting(reactor.host(), reactor.port());
  ASSERT_TRUE(waiting.send("spin 1\n"));
  EXPECT_EQ(waiting.read_line(), "spun 1");
  computing.expect_answered();
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
  EXPECT_EQ(reactor.stat("counters.batched"), 0);  // Nor are frames batched: its hello does not ask for it.
}

TEST(SendAhead, OffSendsNothingAhead) {
  ReactorProcess reactor(plus(kTwoHandlers, {"--send-ahead", "off"}));
  BothHandlersCompute computing(reactor, 300, 300);
  Client cheap(reactor.host(), reactor.port());
  ASSERT_TRUE(cheap.send("ping\n"));
  EXPECT_EQ(cheap.read_line(), "pong");
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
}

// Keep-alive clients at once, more than the handlers, with work of varied length: requests go ahead, and are
// taken back for a handler that comes free first, and every answer is the right one for its request. With
// as few clients as here a connection often goes ahead to the handler that still holds its withdrawn frame
// from before; the first version took that stale frame for the new offer and answered an old request again.
TEST(SendAhead, UnderLoadEveryAnswerIsRight) {
  ReactorProcess reactor(kTwoHandlers);
  constexpr int kClients = 4, kRequests = 2500;
  EXPECT_EQ(right_fib_answers(reactor, kClients, kRequests, [](int c, int i) { return 16 + (c + i) % 5; }),
            kClients * kRequests);
  EXPECT_GT(reactor.stat("counters.sent_ahead"), 0);
  EXPECT_GT(reactor.stat("counters.withdrawn"), 0);
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

// Many keep-alive clients, two handlers: a handler's reports make room for the requests that wait, and those
// go to it several in one write (kFlagTakesBatches), each with its own socket or kept copy. Every answer is
// the right one, and no descriptor is left over in a handler.
TEST(Batches, UnderLoadSeveralHandOffsShareAWriteAndEveryAnswerIsRight) {
  ReactorProcess reactor(kTwoHandlers);
  ASSERT_TRUE(reactor.wait_for_handlers(2, 5s));
  std::vector<size_t> before;
  for (const pid_t handler : reactor.handler_pids()) before.push_back(count_descriptors(handler));
  constexpr int kClients = 24, kRequests = 400;
  EXPECT_EQ(right_fib_answers(reactor, kClients, kRequests, [](int c, int i) { return (c + i) % 18; }),
            kClients * kRequests);
  EXPECT_GT(reactor.stat("counters.batched"), 0);
  EXPECT_LT(reactor.stat("counters.batched"), reactor.stat("counters.hand_offs"));
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
  const std::vector<pid_t> handlers = reactor.handler_pids();
  for (size_t i = 0; i < handlers.size(); ++i) {
    EXPECT_TRUE(wait_until([&] { return count_descriptors(handlers[i]) == before[i]; }, 5s)) << handlers[i];
  }
}

// --- The reactor comes first on the CPU ---

// Field number field (1-based, as proc(5) counts) of /proc/PID/stat.
long proc_stat_field(pid_t pid, int field) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(file, text);
  std::istringstream rest(text.substr(text.rfind(')') + 2));  // After "pid (comm) ": field 3 on.
  std::string value;
  for (int i = 3; i <= field && rest >> value; ++i) {
  }
  return std::stol(value);
}
constexpr int kNiceField = 19, kPolicyField = 41;
constexpr long kSchedBatch = 3, kSchedOther = 0;

TEST(HandlerPriority, HandlersAreBatchJobsAndAsNiceAsAsked) {
  ReactorProcess reactor({"--handlers", "2", "--handler-nice", "3"});
  const long reactor_nice = proc_stat_field(reactor.pid(), kNiceField);
  EXPECT_EQ(proc_stat_field(reactor.pid(), kPolicyField), kSchedOther);
  for (const pid_t handler : reactor.handler_pids()) {
    EXPECT_EQ(proc_stat_field(handler, kPolicyField), kSchedBatch) << handler;
    EXPECT_EQ(proc_stat_field(handler, kNiceField), std::min(reactor_nice + 3, 19L)) << handler;
  }
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

TEST(HandlerPriority, NormalLeavesHandlersAsTheReactor) {
  ReactorProcess reactor({"--handlers", "1", "--handler-sched", "normal"});
  for (const pid_t handler : reactor.handler_pids()) {
    EXPECT_EQ(proc_stat_field(handler, kPolicyField), kSchedOther);
    EXPECT_EQ(proc_stat_field(handler, kNiceField), proc_stat_field(reactor.pid(), kNiceField));
  }
}

const std::vector<std::string> kOneHandlerNoLinger = {"--handlers", "1", "--linger", "0"};

// Affinity: the handler keeps its copy of a keep-alive socket, and the connection's next requests come to it
// without a descriptor.
TEST(KeptConnections, AConnectionsNextRequestsNeedNoDescriptor) {
  ReactorProcess reactor(kOneHandlerNoLinger);
  Client client(reactor.host(), reactor.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.send("ping\n"));
    EXPECT_EQ(client.read_line(), "pong");
  }
  Client http(reactor.host(), reactor.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(http.send("GET /fib/10 HTTP/1.1\r\nHost: t\r\n\r\n"));
    EXPECT_EQ(read_response(http).body, "55\n");
  }
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 10; }, 5s));
  EXPECT_EQ(reactor.stat("counters.hand_offs"), 10);
  EXPECT_EQ(reactor.stat("counters.kept"), 8);  // All but each connection's first.
}

// Connections that close, whether the client or the reactor ends them, leave no copy in the handler.
TEST(KeptConnections, ClosedConnectionsLeaveNoCopyInTheHandler) {
  ReactorProcess reactor(kOneHandlerNoLinger);
  ASSERT_TRUE(reactor.wait_for_handlers(1, 5s));
  const pid_t handler = reactor.handler_pids().at(0);
  const size_t before = count_descriptors(handler);
  {
    std::vector<Client> clients;
    for (int i = 0; i < 20; ++i) {
      clients.emplace_back(reactor.host(), reactor.port());
      ASSERT_TRUE(clients.back().send("ping\n"));
      EXPECT_EQ(clients.back().read_line(), "pong");
    }
    EXPECT_GE(count_descriptors(handler), before + 20);  // It keeps them while they are open...
  }
  // ... and closes them once they are closed.
  ASSERT_TRUE(wait_until([&] { return count_descriptors(handler) == before; }, 5s))
      << count_descriptors(handler);
}

// The reactor ends a connection whose socket a busy handler still holds: the client sees the end at once,
// not when that handler is done with its request and closes its copy, which it does then.
TEST(KeptConnections, AConnectionTheReactorClosesEndsWhileItsHandlerIsBusy) {
  ReactorProcess reactor(plus(kOneHandlerNoLinger, {"--idle-timeout", "300ms"}));
  ASSERT_TRUE(reactor.wait_for_handlers(1, 5s));
  const pid_t handler = reactor.handler_pids().at(0);
  const size_t before = count_descriptors(handler);
  Client kept(reactor.host(), reactor.port());
  ASSERT_TRUE(kept.send("ping\n"));
  ASSERT_EQ(kept.read_line(), "pong");
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 2000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 5s));
  EXPECT_TRUE(kept.wait_closed(1500ms));
  EXPECT_EQ(busy.read_line(), "spun 2000");
  EXPECT_TRUE(busy.wait_closed(3s));  // The idle timeout again.
  EXPECT_TRUE(wait_until([&] { return count_descriptors(handler) == before; }, 5s))
      << count_descriptors(handler);
}

// With two handlers, a connection's requests may go to either: one that moves to the other handler has its
// copy in the first closed, and every answer is right.
TEST(KeptConnections, ConnectionsThatMoveBetweenHandlersAreAnsweredAndLeaveNoCopies) {
  ReactorProcess reactor({"--handlers", "2", "--linger", "0"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 5s));
  std::vector<size_t> before;
  for (const pid_t handler : reactor.handler_pids()) before.push_back(count_descriptors(handler));
  EXPECT_EQ(right_fib_answers(reactor, 6, 300, [](int c, int i) { return (c + i) % 20; }), 6 * 300);
  EXPECT_GT(reactor.stat("counters.kept"), 0);
  const std::vector<pid_t> handlers = reactor.handler_pids();
  for (size_t i = 0; i < handlers.size(); ++i) {
    EXPECT_TRUE(wait_until([&] { return count_descriptors(handlers[i]) == before[i]; }, 5s)) << handlers[i];
  }
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

}  // namespace
}  // namespace handoff::testing
