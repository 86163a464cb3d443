// Integration tests of the handler pool, the processes that do the work: requests run in parallel on
// different handlers, the right answer for every one of many clients, no descriptor leaked to a handler or
// left in the reactor, handlers as batch jobs and as nice as asked, a large resize that does not stop the
// loop, and handlers replaced after --max-requests or past --handler-max-rss without failing or delaying a
// request.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/handler_scripts.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t fibonacci(unsigned n) {
  uint64_t a = 0, b = 1;
  for (unsigned i = 0; i < n; ++i) b = std::exchange(a, b) + b;
  return a;
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

TEST(Pool, TwoHundredConcurrentClientsAllGetTheRightAnswer) {
  ReactorProcess reactor({"--handlers", "2"});
  constexpr int kClients = 200;
  std::vector<Client> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(reactor.host(), reactor.port());
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(clients[i].send("fib " + std::to_string(i % 25) + "\n"));
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(clients[i].read_line(), std::to_string(fibonacci(i % 25))) << "client " << i;
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

// --- Priority: the reactor comes first on the CPU ---

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

// --- Resizing ---

// POST /pool?size=1024 blocked the event loop ~6 s while it forked 1,022 processes: no client and no admin
// request was served meanwhile. Handlers of a resize start a few per loop turn now, so the admin port answers
// while the pool grows; and --max-handlers caps the size asked for.
TEST(Resize, ALargeResizeDoesNotStopTheLoopAndItsSizeIsCapped) {
  ReactorProcess reactor({"--handlers", "1", "--max-handlers", "64"});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const HttpResponse too_large = reactor.admin("POST", "/pool?size=65");
  EXPECT_EQ(too_large.status, 400);
  EXPECT_NE(too_large.body.find("from 1 to 64 (--max-handlers)"), std::string::npos) << too_large.body;
  EXPECT_EQ(reactor.stat("pool.target"), 1);

  // The stats request is all there but its last line end before the resize, so that the reactor can answer it
  // in the loop turn after the one that took the resize.
  Client stats(reactor.host(), reactor.admin_port());
  ASSERT_TRUE(stats.send("GET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
  ASSERT_EQ(reactor.admin("POST", "/pool?size=64").status, 200);
  ASSERT_TRUE(stats.send("\r\n"));
  const std::string json = read_response(stats).body;
  const int64_t started =
      stat_in(json, "pool.idle") + stat_in(json, "pool.busy") + stat_in(json, "pool.starting");
  EXPECT_LT(started, 64) << "the admin port answered only once every handler had been started: " << json;
  EXPECT_TRUE(reactor.wait_for_handlers(64, 60s)) << reactor.stats();
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

// --- Recycling ---

// --max-requests retires a handler after its requests without failing one, and the worn handler serves on
// until its replacement has said hello, so that recycling never leaves a request waiting for a handler to
// start: here each replacement takes 2 s to start, and each handler answers three requests at least.
TEST(Recycling, HandlersRetireAfterMaxRequestsWithoutFailingOrDelayingARequest) {
  TemporaryFolder folder;
  ReactorProcess reactor(
      {"--handlers", "1", "--max-requests", "3", "--handler-cmd", switchable_handler(folder)});
  folder.file("slow", "");
  std::vector<std::string> pids;
  std::map<std::string, int> served;
  Clock::duration slowest{};
  // Two recyclings, that is three handlers, for 60 s at most.
  const Clock::time_point deadline = Clock::now() + 60s;
  while (Clock::now() < deadline && served.size() < 3) {
    const Clock::time_point start = Clock::now();
    pids.push_back(ask(reactor.host(), reactor.port(), "pid"));
    slowest = std::max(slowest, Clock::now() - start);
    ASSERT_TRUE(!pids.back().empty() && pids.back().find_first_not_of("0123456789") == std::string::npos)
        << "request " << pids.size() << ": " << pids.back();
    ++served[pids.back()];
  }
  EXPECT_EQ(served.size(), 3u);
  for (size_t i = 1; i < pids.size(); ++i) {
    if (pids[i] != pids[i - 1]) {
      EXPECT_GE(served[pids[i - 1]], 3) << "handler " << pids[i - 1];
    }
  }
  EXPECT_LT(slowest, 1s) << "a request waited for a handler to start";
  EXPECT_TRUE(reactor.wait_for_handlers(1, 10s));
}

// A leaking user function would grow its handler without bound. Past --handler-max-rss the handler is
// replaced once the request it serves is answered.
TEST(Recycling, AHandlerGrownPastMaxRssIsReplacedAfterItsRequest) {
  TemporaryFolder folder;
  const std::string command =
      python_handler(folder, "leak.py", "import os\nkept = []\n",
                     python_command("leak", {"kept.append(b'x' * (40 << 20))  # Written: resident.",
                                             "return Reply.text(str(os.getpid()))"}));
  ReactorProcess reactor({"--handlers", "1", "--handler-max-rss", "100m", "--handler-cmd", command});
  ASSERT_TRUE(reactor.wait_for_handlers(1, 10s));
  const std::string first = ask(reactor.host(), reactor.port(), "leak");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "leak"), first);  // ~80 MiB: still under the limit.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "leak"), first);  // ~120 MiB: answered, then replaced.
  EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.rss_recycles") == 1; }, 5s)) << reactor.stats();
  EXPECT_TRUE(wait_until(
      [&] {
        const std::vector<pid_t> pids = reactor.handler_pids();
        return pids.size() == 1 && std::to_string(pids[0]) != first;
      },
      10s));
  EXPECT_NE(ask(reactor.host(), reactor.port(), "leak"), first);
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 0);
}

}  // namespace
}  // namespace handoff::testing
