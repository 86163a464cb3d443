// The chaos test: ~50 concurrent clients on loopback while handlers are killed with SIGKILL every ~100 ms and
// the pool is reloaded with SIGHUP. Every request must get its right answer or an "ERR ..." line within its
// deadline; afterwards no descriptor has leaked in the reactor and the pool is back to its size.

#include <signal.h>

#include <gtest/gtest.h>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kClients = 50;
constexpr int kHandlers = 4;
constexpr auto kChaosTime = 4s;
constexpr int kMaxRequests = 20000;

uint64_t fibonacci(unsigned n) {
  uint64_t a = 0, b = 1;
  for (unsigned i = 0; i < n; ++i) b = std::exchange(a, b) + b;
  return a;
}

TEST(Chaos, EveryRequestIsAnsweredOrGetsAnErrorWhileHandlersDie) {
  ReactorProcess reactor({"--handlers", std::to_string(kHandlers), "--request-timeout", "5s"});
  ASSERT_TRUE(reactor.wait_for_handlers(kHandlers, 10s));
  ASSERT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  const size_t baseline = reactor.quiet_descriptors();

  std::mutex mutex;
  std::map<std::string, int> outcomes;  // "answered", "ERR <kind>", or what went wrong.
  std::atomic<int> requests = 0;
  std::atomic<bool> running = true;

  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 random(c);
      std::map<std::string, int> mine;
      while (running && requests++ < kMaxRequests) {
        const unsigned n = 18 + random() % 10;
        std::string outcome;
        try {
          // One request per connection, as nc does: an answer, an error line, or a failure of the server.
          Client client(reactor.host(), reactor.port());
          client.send("fib " + std::to_string(n) + "\n");
          const std::string line = client.read_line(10s);
          outcome = line == std::to_string(fibonacci(n)) ? "answered"
                    : line.rfind("ERR ", 0) == 0         ? line
                                                         : "FAILED: " + line;
        } catch (const std::exception& error) {
          outcome = std::string("FAILED: ") + error.what();
        }
        ++mine[outcome];
      }
      std::lock_guard lock(mutex);
      for (const auto& [outcome, count] : mine) outcomes[outcome] += count;
    });
  }

  int kills = 0, reloads = 0;
  std::mt19937 random(2026);
  const Clock::time_point end = Clock::now() + kChaosTime;
  for (int round = 0; Clock::now() < end && requests < kMaxRequests; ++round) {
    std::this_thread::sleep_for(100ms);  // The chaos's rhythm, not a wait for a state.
    const std::vector<pid_t> handlers = reactor.handler_pids();
    if (!handlers.empty() && ::kill(handlers[random() % handlers.size()], SIGKILL) == 0) ++kills;
    if (round % 15 == 7 && ::kill(reactor.pid(), SIGHUP) == 0) ++reloads;
  }
  running = false;
  for (std::thread& client : clients) client.join();

  int total = 0, failures = 0;
  std::printf("chaos: %d handler kills, %d reloads\n", kills, reloads);
  for (const auto& [outcome, count] : outcomes) {
    std::printf("chaos: %6d  %s\n", count, outcome.c_str());
    total += count;
    if (outcome.rfind("FAILED", 0) == 0) failures += count;
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(outcomes["answered"], total / 2);
  EXPECT_GT(kills, 10);

  EXPECT_TRUE(reactor.wait_for_handlers(kHandlers, 20s));
  EXPECT_TRUE(reactor.wait_for_descriptors(baseline, 10s)) << reactor.open_descriptors() << " open";
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
}

}  // namespace
}  // namespace handoff::testing
