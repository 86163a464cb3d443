// Integration tests of the handler pool: parallel work, queueing, idle connections, descriptors, crashes and
// shutdown, through the real reactor and handlers on loopback.

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t fibonacci(unsigned n) {
  uint64_t a = 0, b = 1;
  for (unsigned i = 0; i < n; ++i) b = std::exchange(a, b) + b;
  return a;
}

bool process_exists(pid_t pid) {
  return std::filesystem::exists("/proc/" + std::to_string(pid));
}

TEST(Pool, TwoLongRequestsRunOnTwoDifferentHandlers) {
  ReactorProcess reactor({"--handlers", "2"});
  std::string pids[2];
  std::thread clients[2];
  for (int i = 0; i < 2; ++i) {
    clients[i] = std::thread([&, i] {
      Client client(reactor.host(), reactor.port());
      client.send("spin 300\npid\n");
      EXPECT_EQ(client.read_line(), "spun 300");
      pids[i] = client.read_line();
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_NE(pids[0], pids[1]);
  const std::vector<pid_t> handlers = reactor.handler_pids();
  for (const std::string& pid : pids) {
    EXPECT_NE(std::find(handlers.begin(), handlers.end(), std::stoi(pid)), handlers.end()) << pid;
  }
}

TEST(Pool, AClientArrivingWhileAllHandlersAreBusyWaitsAndIsServed) {
  ReactorProcess reactor({"--handlers", "2"});
  const Clock::time_point start = Clock::now();
  std::thread busy[2];
  for (std::thread& client : busy) {
    client = std::thread([&] { EXPECT_EQ(ask(reactor.host(), reactor.port(), "spin 2000"), "spun 2000"); });
  }
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  Client third(reactor.host(), reactor.port());
  ASSERT_TRUE(third.send("ping\n"));
  EXPECT_EQ(third.read_line(15s), "pong");
  // It could only be answered once a handler was free again.
  EXPECT_GE(Clock::now() - start, 1500ms);
  for (std::thread& client : busy) client.join();
}

TEST(Pool, IdleAndSlowConnectionsDoNotHoldAHandler) {
  ReactorProcess reactor({"--handlers", "1"});
  Client idle(reactor.host(), reactor.port());
  ASSERT_TRUE(idle.send("ping\n"));
  ASSERT_EQ(idle.read_line(), "pong");
  Client trickling(reactor.host(), reactor.port());
  ASSERT_TRUE(trickling.send("fi"));

  // With the only handler pinned by either of those, these would wait forever.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");

  ASSERT_TRUE(trickling.send("b 11\n"));
  EXPECT_EQ(trickling.read_line(), "89");
  ASSERT_TRUE(idle.send("fib 12\n"));
  EXPECT_EQ(idle.read_line(), "144");
}

TEST(Pool, TwoHundredConcurrentClientsAllGetTheRightAnswer) {
  ReactorProcess reactor({"--handlers", "2"});
  constexpr int kClients = 200;
  std::vector<Client> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(reactor.host(), reactor.port());
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i].send("fib " + std::to_string(i % 25) + "\n"));
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(clients[i].read_line(20s), std::to_string(fibonacci(i % 25))) << "client " << i;
  }
}

TEST(Pool, DescriptorsAreBackToBaselineAfterAThousandConnections) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  // The baseline is taken once the reactor has seen that connection go.
  const size_t baseline = reactor.quiet_descriptors();
  ASSERT_GT(baseline, 0u);

  constexpr int kThreads = 10;
  constexpr int kPerThread = 100;
  std::atomic<int> answered = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Client client(reactor.host(), reactor.port());
        // Some clients say quit (the server closes), some just leave, some leave halfway through a line.
        if (i % 3 == 0) {
          client.send("ping\nquit\n");
          if (client.read_line() == "pong" && client.wait_closed(5s)) ++answered;
        } else if (i % 3 == 1) {
          client.send("fib " + std::to_string(t) + "\n");
          if (client.read_line() == std::to_string(fibonacci(t))) ++answered;
        } else {
          client.send("fib 1\nfi");
          if (client.read_line() == "1") ++answered;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(answered, kThreads * kPerThread);

  EXPECT_TRUE(reactor.wait_for_descriptors(baseline, 10s)) << reactor.open_descriptors() << " open";
}

TEST(Pool, HandlersInheritOnlyTheirChannel) {
  ReactorProcess reactor({"--handlers", "2"});
  Client idle(reactor.host(), reactor.port());  // A connection the handlers must not see.
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  ASSERT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  // A handler closes its copy of a client socket just after answering, so the check allows it a moment.
  const auto descriptors_of = [](pid_t handler) {
    std::set<std::string> descriptors;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(handler) + "/fd")) {
      descriptors.insert(entry.path().filename());
    }
    return descriptors;
  };
  const std::set<std::string> expected{"0", "1", "2", "3"};
  for (pid_t handler : reactor.handler_pids()) {
    wait_until([&] { return descriptors_of(handler) == expected; }, 2s);
    EXPECT_EQ(descriptors_of(handler), expected) << "handler " << handler;
  }
}

TEST(Pool, AnIdleHandlerKilledIsReplacedAndServingGoesOn) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  const std::vector<pid_t> before = reactor.handler_pids();
  ASSERT_EQ(::kill(before[0], SIGKILL), 0);

  std::vector<pid_t> after;
  wait_until(
      [&] {
        after = reactor.handler_pids();
        return after.size() == 2 && std::find(after.begin(), after.end(), before[0]) == after.end();
      },
      10s);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(std::find(after.begin(), after.end(), before[0]), after.end());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  EXPECT_NE(reactor.stderr_text().find("killed by signal 9"), std::string::npos) << reactor.stderr_text();
}

TEST(Pool, SigtermFinishesRequestsInFlightThenExits) {
  auto reactor = std::make_unique<ReactorProcess>(std::vector<std::string>{"--handlers", "2"});
  ASSERT_TRUE(reactor->wait_for_handlers(2, 10s));
  const std::vector<pid_t> handlers = reactor->handler_pids();
  Client idle(reactor->host(), reactor->port());
  ASSERT_TRUE(idle.send("ping\n"));
  ASSERT_EQ(idle.read_line(), "pong");

  Client busy(reactor->host(), reactor->port());
  ASSERT_TRUE(busy.send("spin 700\n"));
  ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
  std::thread answer([&] { EXPECT_EQ(busy.read_line(), "spun 700"); });
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0);
  answer.join();
  EXPECT_TRUE(idle.wait_closed(1s));
  for (pid_t handler : handlers) EXPECT_FALSE(process_exists(handler)) << handler;
}

}  // namespace
}  // namespace handoff::testing
