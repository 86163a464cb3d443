// Integration tests of the dispatch fast paths (docs/architecture.md, "Lingering", "Sending ahead", "Kept
// connections", batches), each of which must give none of handoff's promises away: a handler lingering on a
// keep-alive connection serves its client's next requests without a hand-off, and a request that waits takes
// it back at once; a request sent ahead to a busy handler is still served by whichever handler comes free
// first, and is lost by no kill, reload or queue timeout; a handler keeps a keep-alive connection's socket
// for its next request, and closes its copy once the connection closes or moves. Where a test must know that
// a handler is still busy, it stops that handler (tests/support/stopped_process.hpp) instead of racing a
// wall-clock deadline against its CPU work.

#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/temporary_folder.hpp"
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

// --- Lingering ---

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

const std::vector<std::string> kTwoHandlers = {"--handlers", "2", "--linger", "0"};

// Both handlers of a --handlers 2 reactor, each stopped in the middle of a request that lasts a second at
// least: nothing is answered by them while they are stuck, and nothing sent ahead to them is begun, on a
// quiet machine and on a loaded one alike. The kept client's connection is kept by one of them, the keeper
// (it served that client's `pid` before its own job), so that the client's next request goes ahead to the
// keeper (docs/architecture.md, "Kept connections"); the other is the other one.
struct StuckHandlers {
  explicit StuckHandlers(const ReactorProcess& reactor) : kept(reactor.host(), reactor.port()) {
    EXPECT_TRUE(kept.send("pid\n"));
    const std::string keeper_pid = kept.read_line();
    for (int i = 0; i < 2; ++i) {
      jobs.emplace_back(reactor.host(), reactor.port());
      // The second job finds the first one's handler busy: each handler gets one.
      EXPECT_TRUE(jobs.back().send("pid\nspin 1000\n"));
      const std::string pid = jobs.back().read_line();
      std::optional<StoppedProcess>& stuck = pid == keeper_pid ? keeper : other;
      stuck.emplace(std::stoi(pid));
      EXPECT_TRUE(stuck->stopped()) << pid;
    }
    EXPECT_TRUE(keeper && other) << "the kept client's handler took no job";
  }
  std::string keeper_pid() const { return std::to_string(keeper->pid()); }
  std::string other_pid() const { return std::to_string(other->pid()); }
  // Lets both run again; both jobs are answered.
  void expect_answered() {
    keeper->resume();
    other->resume();
    for (Client& job : jobs) EXPECT_EQ(job.read_line(), "spun 1000");
  }
  Client kept;
  std::vector<Client> jobs;
  std::optional<StoppedProcess> keeper, other;
};

// A request that would wait goes ahead to a busy handler; it must still be served by whichever handler comes
// free first (FIFO: a cheap request under saturation waits only its turn). Here it goes ahead to the keeper,
// which stays stuck, and the other handler, let run, serves it.
TEST(SendAhead, ARequestSentAheadGoesToTheHandlerThatComesFreeFirst) {
  ReactorProcess reactor(kTwoHandlers);
  StuckHandlers stuck(reactor);
  ASSERT_TRUE(stuck.kept.send("pid\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 10s)) << reactor.stats();
  stuck.other->resume();
  EXPECT_EQ(stuck.kept.read_line(), stuck.other_pid());
  EXPECT_EQ(reactor.stat("counters.withdrawn"), 1);
  stuck.expect_answered();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

// Requests keep coming while one handler is stuck on a long request: one sent ahead to it must not wait for
// it while newer ones pass by on the other handler (it goes to that one, before the queue); left there, it
// would wait as long as the stuck handler computes. Three clients keep the other handler busy and the queue
// never empty for long; the request ahead is served while the keeper is still stopped, after a handful of
// theirs at most (those that went ahead before it was taken back).
TEST(SendAhead, ARequestAheadOnAStuckHandlerIsNotPassedByNewerOnes) {
  ReactorProcess reactor(kTwoHandlers);
  StuckHandlers stuck(reactor);
  ASSERT_TRUE(stuck.kept.send("pid\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 10s)) << reactor.stats();
  std::atomic<bool> streaming{true};
  std::atomic<int> streamed{0};
  std::vector<std::thread> stream;
  for (int c = 0; c < 3; ++c) {
    stream.emplace_back([&] {
      Client client(reactor.host(), reactor.port());
      while (streaming && client.send("spin 20\n") && client.read_line() == "spun 20") ++streamed;
    });
  }
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() >= 3; }, 10s)) << reactor.stats();
  stuck.other->resume();
  EXPECT_EQ(stuck.kept.read_line(), stuck.other_pid());
  const int passed_by = streamed;
  streaming = false;
  for (std::thread& client : stream) client.join();
  EXPECT_LE(passed_by, 10) << "newer requests passed the one sent ahead to the stuck handler";
  EXPECT_GE(reactor.stat("counters.withdrawn"), 1);
  stuck.expect_answered();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), 0);
}

// --queue-timeout is for waiting, not for being served: a request sent ahead that its handler serves for
// longer than the timeout is answered, not refused (a refusal would land in the middle of its answer, and the
// handler's report would then find no request). Both handlers are stopped before their first requests come,
// so that the request goes ahead, and it is begun as soon as they run again: it waits a moment, and is served
// for a second and a half at least.
TEST(SendAhead, AQueueTimeoutDoesNotCutARequestThatCameAhead) {
  ReactorProcess reactor(plus(kTwoHandlers, {"--queue-timeout", "1s"}));
  ASSERT_TRUE(wait_until([&] { return reactor.idle_handlers() == 2; }, 10s));
  const StoppedProcesses stopped = stop_each(reactor.handler_pids());
  ASSERT_TRUE(all_stopped(stopped));
  std::vector<Client> first = connect_each_sending(reactor.host(), reactor.port(), 2, "ping\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  Client ahead(reactor.host(), reactor.port());
  ASSERT_TRUE(ahead.send("spin 1500\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 10s)) << reactor.stats();
  for (auto& handler : stopped) handler->resume();
  EXPECT_EQ(ahead.read_line(), "spun 1500");
  for (Client& client : first) EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 1);
  EXPECT_EQ(reactor.stat("counters.errors.busy"), 0);
}

TEST(SendAhead, AHandlerKilledWhileItHoldsOneLosesNothingOfIt) {
  ReactorProcess reactor(kTwoHandlers);
  StuckHandlers stuck(reactor);
  ASSERT_TRUE(stuck.kept.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 10s)) << reactor.stats();
  ASSERT_EQ(::kill(stuck.keeper->pid(), SIGKILL), 0);
  ASSERT_EQ(::kill(stuck.other->pid(), SIGKILL), 0);
  // The requests they computed fail clearly; the one sent ahead had not begun, and is served by another.
  for (Client& job : stuck.jobs) EXPECT_EQ(job.read_line(), "ERR handler crashed");
  EXPECT_EQ(stuck.kept.read_line(), "pong");
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 2);
}

// A reload must not leave a request on an old handler that computes for long: a new handler takes it, while
// both old ones are still stuck.
TEST(SendAhead, AReloadHandsOneSentAheadToANewHandler) {
  ReactorProcess reactor(kTwoHandlers);
  StuckHandlers stuck(reactor);
  ASSERT_TRUE(stuck.kept.send("pid\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.sent_ahead") == 1; }, 10s)) << reactor.stats();
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  const std::string pid = stuck.kept.read_line();
  EXPECT_NE(pid, stuck.keeper_pid());
  EXPECT_NE(pid, stuck.other_pid());
  const std::vector<pid_t> handlers = reactor.handler_pids();
  EXPECT_NE(std::find(handlers.begin(), handlers.end(), std::atoi(pid.c_str())), handlers.end()) << pid;
  stuck.expect_answered();
}

// The Python library does not take connections ahead (its hello says so): a busy Python handler is sent
// nothing before it is idle.
TEST(SendAhead, NothingGoesAheadToAPythonHandler) {
  const TemporaryFolder folder;
  ReactorProcess reactor(plus(kTwoHandlers, {"--handler-cmd", python_spin_handler(folder)}));
  StuckHandlers stuck(reactor);
  Client waiting(reactor.host(), reactor.port());
  ASSERT_TRUE(waiting.send("spin 1\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s)) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
  stuck.expect_answered();
  EXPECT_EQ(waiting.read_line(), "spun 1");
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
  EXPECT_EQ(reactor.stat("counters.batched"), 0);  // Nor are frames batched: its hello does not ask for it.
}

TEST(SendAhead, OffSendsNothingAhead) {
  ReactorProcess reactor(plus(kTwoHandlers, {"--send-ahead", "off"}));
  StuckHandlers stuck(reactor);
  ASSERT_TRUE(stuck.kept.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s)) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
  stuck.expect_answered();
  EXPECT_EQ(stuck.kept.read_line(), "pong");
  EXPECT_EQ(reactor.stat("counters.sent_ahead"), 0);
}

// Keep-alive clients at once, more than the handlers, with work of varied length: requests go ahead, and are
// taken back for a handler that comes free first, and every answer is the right one for its request. With
// as few clients as here a connection often goes ahead to the handler that still holds its withdrawn frame
// from before; a handler that took that stale frame for the new offer would answer an old request again.
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
// go to it several in one write (kCanTakeBatches), each with its own socket or kept copy. Every answer is
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

// --- Kept connections ---

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
  // `spin 2000` lasts two seconds at least: a close within 1.5 s of its start did not wait for it.
  EXPECT_TRUE(kept.wait_closed(1500ms));
  EXPECT_EQ(busy.read_line(), "spun 2000");
  EXPECT_TRUE(busy.wait_closed(10s));  // The idle timeout again.
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
