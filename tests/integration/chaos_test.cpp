// The chaos test: ~50 concurrent clients on loopback while handlers are killed with SIGKILL every ~50 ms and
// the pool is reloaded with SIGHUP. A third of the clients send one line per connection, as nc does; a third
// keep a line-protocol connection open for request after request; a third do the same over HTTP/1.1. Every
// request must get its right answer or an error (an "ERR ..." line, a 5xx) within its deadline, never a bare
// EOF: a handler killed right after writing an answer must not cost the client its connection. Afterwards no
// descriptor has leaked in the reactor and the pool is back to its size.

#include <signal.h>

#include <gtest/gtest.h>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>
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

enum class ClientKind { kOneLinePerConnection, kKeepAliveLines, kKeepAliveHttp };

// "answered", "ERR <kind>", or "FAILED: <what came>".
std::string ask_line(Client& client, unsigned n) {
  if (!client.send("fib " + std::to_string(n) + "\n")) return "FAILED: the connection was closed";
  const std::string line = client.read_line(10s);
  if (line == std::to_string(fibonacci(n))) return "answered";
  return line.rfind("ERR ", 0) == 0 ? line : "FAILED: " + line;
}

// "answered", "HTTP <5xx status>", or "FAILED: <what came>".
std::string ask_http(Client& client, unsigned n) {
  if (!client.send("GET /fib/" + std::to_string(n) + " HTTP/1.1\r\nHost: chaos\r\n\r\n")) {
    return "FAILED: the connection was closed";
  }
  const HttpResponse response = read_response(client);
  if (response.status == 200 && response.body == std::to_string(fibonacci(n)) + "\n") return "answered";
  if (response.status >= 500) return "HTTP " + std::to_string(response.status);
  return "FAILED: HTTP " + std::to_string(response.status) + " " + response.body;
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
      const ClientKind kind = static_cast<ClientKind>(c % 3);
      std::optional<Client> client;
      while (running && requests++ < kMaxRequests) {
        const unsigned n = 18 + random() % 10;
        std::string outcome;
        try {
          if (!client || kind == ClientKind::kOneLinePerConnection)
            client.emplace(reactor.host(), reactor.port());
          outcome = kind == ClientKind::kKeepAliveHttp ? ask_http(*client, n) : ask_line(*client, n);
        } catch (const std::exception& error) {
          outcome = std::string("FAILED: ") + error.what();
        }
        // After an error the server closes the connection; so does a client that met a failure.
        if (outcome != "answered") client.reset();
        ++mine[outcome];
      }
      std::lock_guard lock(mutex);
      for (const auto& [outcome, count] : mine) outcomes[outcome] += count;
    });
  }

  int kills = 0, reloads = 0;
  pid_t last_killed = 0;
  std::mt19937 random(2026);
  const Clock::time_point end = Clock::now() + kChaosTime;
  for (int round = 0; Clock::now() < end && requests < kMaxRequests; ++round) {
    std::this_thread::sleep_for(50ms);  // The chaos's rhythm, not a wait for a state.
    const std::vector<pid_t> handlers = reactor.handler_pids();
    const pid_t victim = handlers.empty() ? 0 : handlers[random() % handlers.size()];
    if (victim != 0 && ::kill(victim, SIGKILL) == 0) {
      ++kills;
      last_killed = victim;
    }
    if (round % 30 == 15 && ::kill(reactor.pid(), SIGHUP) == 0) ++reloads;
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

  // A request sent before the reactor saw the last kill rightly gets "ERR handler crashed".
  EXPECT_TRUE(reactor.wait_for_log("handler " + std::to_string(last_killed) + " was killed", 10s));
  EXPECT_TRUE(reactor.wait_for_handlers(kHandlers, 20s));
  EXPECT_TRUE(reactor.wait_for_descriptors(baseline, 10s)) << reactor.open_descriptors() << " open";
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
}

}  // namespace
}  // namespace handoff::testing
