// Integration tests of upgrading the reactor itself (SIGUSR2, reactor/takeover.hpp): a new reactor takes the
// listening sockets and every connection, idle or in the middle of a request, and no client notices but for
// the handler pids that answer. Real reactors, real clients, real wrk, on loopback.

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/stopped_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

constexpr size_t kIdleConnections = 200;

std::string get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
}

// Opens count keep-alive HTTP connections, each after one answered request: idle, between requests.
std::vector<Client> idle_connections(const ReactorProcess& reactor, size_t count) {
  std::vector<Client> clients;
  for (size_t i = 0; i < count; ++i) {
    clients.emplace_back(reactor.host(), reactor.port());
    clients.back().send(get("/ping"));
    EXPECT_EQ(read_response(clients.back()).status, 200);
  }
  return clients;
}

bool is_handler_of(const ReactorProcess& reactor, const std::string& pid) {
  const std::vector<pid_t> handlers = reactor.handler_pids();
  return std::find(handlers.begin(), handlers.end(), std::atoi(pid.c_str())) != handlers.end();
}

// Every idle connection answers on the new reactor, each on a handler of the new reactor's.
void expect_answered_by(const ReactorProcess& reactor, std::vector<Client>& clients) {
  size_t answered = 0, by_new_handlers = 0;
  for (Client& client : clients) {
    client.send(get("/pid"));
    const HttpResponse response = read_response(client);
    answered += response.status == 200;
    std::string pid = response.body;
    if (!pid.empty() && pid.back() == '\n') pid.pop_back();
    by_new_handlers += is_handler_of(reactor, pid);
  }
  EXPECT_EQ(answered, clients.size());
  EXPECT_EQ(by_new_handlers, clients.size());
}

TEST(Takeover, IdleConnectionsAndTheBytesReadOfThemMoveToTheNewReactor) {
  ReactorProcess reactor({"--handlers", "2"});
  const pid_t old_pid = reactor.pid();
  std::vector<Client> idle = idle_connections(reactor, kIdleConnections);
  Client line(reactor.host(), reactor.port());
  ASSERT_TRUE(line.send("ping\n"));
  ASSERT_EQ(line.read_line(), "pong");
  // Half a request: the old reactor has read it, and the new one must read on from there.
  Client half(reactor.host(), reactor.port());
  ASSERT_TRUE(half.send("GET /fib/20 HTTP/1.1\r\nHo"));
  // A request in progress: it finishes in the old reactor, and its connection follows. Its handler is stopped
  // until the hand-over has begun, so that it is still in progress then, however long the takeover takes.
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("pid\nspin 1000\n"));
  StoppedProcess handler(std::stoi(busy.read_line()));
  ASSERT_TRUE(handler.stopped());

  ASSERT_EQ(reactor.take_over(60s,
                              [&](pid_t) {
                                EXPECT_TRUE(reactor.wait_for_log("passing the connections", 20s));
                                handler.resume();
                              }),
            0)
      << reactor.stderr_text();
  ASSERT_GT(reactor.pid(), 0);
  EXPECT_NE(reactor.pid(), old_pid);
  EXPECT_EQ(busy.read_line(), "spun 1000");
  ASSERT_TRUE(half.send("st: 127.0.0.1\r\n\r\n"));
  const HttpResponse fib = read_response(half);
  EXPECT_EQ(fib.status, 200);
  EXPECT_EQ(fib.body, "6765\n");
  for (Client* client : {&line, &busy}) {
    ASSERT_TRUE(client->send("pid\n"));
    EXPECT_TRUE(is_handler_of(reactor, client->read_line()));
  }
  expect_answered_by(reactor, idle);
  EXPECT_EQ(reactor.stat("counters.taken_over"), static_cast<int64_t>(kIdleConnections + 3));
  EXPECT_EQ(reactor.stat("counters.accepted"), 0);  // Every connection came from the old reactor.
}

TEST(Takeover, UnderLoadWithIdleConnectionsNothingFails) {
  ReactorProcess reactor({"--handlers", "2"});
  std::vector<Client> idle = idle_connections(reactor, kIdleConnections);
  const std::string url = "http://127.0.0.1:" + std::to_string(reactor.port()) + "/fib/15";
  auto load = std::async(std::launch::async, [&] {
    return run_program({"wrk", "--threads", "1", "--connections", "16", "--duration", "3s", url}, "", 30s);
  });
  ASSERT_TRUE(wait_until(
      [&] { return reactor.requests_answered() > static_cast<int64_t>(kIdleConnections) + 500; }, 10s));
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  // Any failed, reset or timed-out request shows as socket errors or non-2xx answers.
  expect_clean_wrk_run(load.get(), 1000);
  EXPECT_GE(reactor.stat("counters.taken_over"), static_cast<int64_t>(kIdleConnections));
  expect_answered_by(reactor, idle);
}

// --pid-file follows the server: the reactor's pid once it is ready, the successor's after a takeover (a
// script that kept $! would lose it), and no file once the server stopped.
TEST(Takeover, ThePidFileHoldsTheReactorThatServes) {
  TemporaryFolder folder;
  const std::string pid_file = folder.path("handoff.pid");
  const auto pid_in_file = [&] {
    std::ifstream file(pid_file);
    std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    return text;
  };
  ReactorProcess reactor({"--handlers", "1", "--pid-file", pid_file});
  EXPECT_EQ(pid_in_file(), std::to_string(reactor.pid()) + "\n");
  const pid_t old = reactor.pid();
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  ASSERT_NE(reactor.pid(), old);
  EXPECT_EQ(pid_in_file(), std::to_string(reactor.pid()) + "\n");
  EXPECT_EQ(reactor.signal_and_wait(SIGTERM, 30s), 0);
  EXPECT_FALSE(std::filesystem::exists(pid_file));
  EXPECT_TRUE(std::filesystem::is_empty(folder.path(".")));  // No temporary file left either.
}

// A pid file the reactor cannot write stops it before it serves, with the reason.
TEST(Takeover, APidFileThatCannotBeWrittenStopsTheStart) {
  const ProgramResult result =
      run_program(reactor_command({"--listen", "127.0.0.1:0", "--admin", "off", "--handlers", "1",
                                   "--pid-file", "/nonexistent/folder/handoff.pid"}),
                  "", 30s);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(
      result.err.find("--pid-file /nonexistent/folder/handoff.pid: cannot create a file there: No such file "
                      "or directory"),
      std::string::npos)
      << result.err;
}

// SIGTERM to the old reactor while it hands its connections over: it finishes the request in progress and
// exits, the connection of that request closing after its answer, as at any stop; the rest are the new one's.
TEST(Takeover, AStopSignalDuringTheHandOverEndsTheOldReactorCleanly) {
  ReactorProcess reactor({"--handlers", "1"});
  Client idle(reactor.host(), reactor.port());
  ASSERT_TRUE(idle.send("ping\n"));
  ASSERT_EQ(idle.read_line(), "pong");
  // Its handler is stopped until the stop signal, so that the request is still in progress then.
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 1000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  StoppedProcess handler(reactor.handler_pids().at(0));
  ASSERT_TRUE(handler.stopped());
  const int status = reactor.take_over(60s, [&](pid_t old) {
    EXPECT_TRUE(reactor.wait_for_log("passing the connections", 20s)) << reactor.stderr_text();
    ::kill(old, SIGTERM);
    handler.resume();
  });
  EXPECT_EQ(status, 0) << reactor.stderr_text();
  EXPECT_EQ(busy.read_line(), "spun 1000");
  EXPECT_TRUE(busy.wait_closed(10s));
  ASSERT_TRUE(idle.send("pid\n"));
  EXPECT_TRUE(is_handler_of(reactor, idle.read_line()));
  // The old reactor still told the new one that nothing more comes.
  EXPECT_TRUE(reactor.wait_for_log("connections taken over (every connection came)", 5s));
}

// A handler lingering on a client whose requests keep coming in time would keep that connection in the old
// reactor until --shutdown-timeout, and then lose it: the hand-over takes it back from the handler.
TEST(Takeover, AConnectionAHandlerLingersOnMovesToo) {
  ReactorProcess reactor({"--handlers", "2", "--linger", "1s", "--shutdown-timeout", "20s"});
  Client steady(reactor.host(), reactor.port());
  std::atomic<bool> done = false;
  std::atomic<int> answered = 0, failed = 0;
  std::thread pinger([&] {
    while (!done) {
      const bool ok = steady.send("ping\n") && steady.read_line() == "pong";
      ++(ok ? answered : failed);
      std::this_thread::sleep_for(50ms);
    }
  });
  ASSERT_TRUE(wait_until([&] { return answered > 5; }, 10s));
  const auto started = std::chrono::steady_clock::now();
  const int status = reactor.take_over(60s);
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(wait_until([&] { return answered > 20; }, 20s));
  done = true;
  pinger.join();
  EXPECT_EQ(status, 0) << reactor.stderr_text();
  // Waiting for the lingering handler, the old reactor would have held the connection until
  // --shutdown-timeout (20 s).
  EXPECT_LT(took, 15s) << "the old reactor waited for the lingering handler";
  EXPECT_EQ(failed, 0);
  ASSERT_TRUE(steady.send("pid\n"));
  EXPECT_TRUE(is_handler_of(reactor, steady.read_line()));
}

// Requests sent ahead to the old reactor's busy handlers, and not begun yet, are taken back and move with
// their connections, as does any still queued: handlers of the new reactor answer all three while the old
// handlers are still stuck (stopped mid-request, so that what went ahead stays unbegun however long the
// takeover takes), and the requests those were computing finish in the old reactor. None is lost.
TEST(Takeover, RequestsSentAheadAndNotBegunMoveToTheNewReactor) {
  ReactorProcess reactor({"--handlers", "2", "--linger", "0"});
  std::vector<Client> busy = connect_each_sending(reactor.host(), reactor.port(), 2, "spin 1000\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  const StoppedProcesses stopped = stop_each(reactor.handler_pids());
  ASSERT_TRUE(all_stopped(stopped));
  std::vector<Client> waiting = connect_each_sending(reactor.host(), reactor.port(), 3, "pid\n");
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string json = reactor.stats();
        return stat_in(json, "counters.sent_ahead") >= 2 && stat_in(json, "pool.queue_length") == 3;
      },
      10s))
      << reactor.stats();
  std::vector<std::string> answers;
  const int status = reactor.take_over(60s, [&](pid_t) {
    for (Client& client : waiting) answers.push_back(client.read_line());
    for (auto& handler : stopped) handler->resume();
  });
  EXPECT_EQ(status, 0) << reactor.stderr_text();
  for (Client& client : busy) EXPECT_EQ(client.read_line(), "spun 1000");
  for (const std::string& pid : answers) EXPECT_TRUE(is_handler_of(reactor, pid)) << pid;
  EXPECT_EQ(reactor.stat("counters.taken_over"), 5);
}

// The new reactor judges a dead handler's answer by all the socket has sent, answers of the old reactor's
// handlers included: a handler that dies before it answers still gets its client "ERR handler crashed".
TEST(Takeover, AConnectionTakenOverStillGetsTheCrashAnswer) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("ping\n"));
  ASSERT_EQ(client.read_line(), "pong");
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  ASSERT_TRUE(client.send("pid\nspin 20000\n"));
  const pid_t serving = std::stoi(client.read_line());
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 1; }, 10s));  // The spin runs.
  ASSERT_EQ(::kill(serving, SIGKILL), 0);
  EXPECT_EQ(client.read_line(5s), "ERR handler crashed");
}

// A successor that dies after it was ready, while a request still runs in the old reactor: the old one
// serves on, with that connection and its ports.
// (Its handler is stopped meanwhile, so that the request still runs however long the takeover takes.)
TEST(Takeover, ASuccessorThatDiesDuringTheHandOverLeavesTheOldOneServing) {
  ReactorProcess reactor({"--handlers", "1"});
  const pid_t old_pid = reactor.pid();
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 1000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  StoppedProcess handler(reactor.handler_pids().at(0));
  ASSERT_TRUE(handler.stopped());
  ::kill(old_pid, SIGUSR2);
  ASSERT_TRUE(reactor.wait_for_log("passing the connections", 20s)) << reactor.stderr_text();
  std::smatch started;
  const std::string log = reactor.stderr_text();
  ASSERT_TRUE(std::regex_search(log, started, std::regex(R"(started the new reactor, pid (\d+))"))) << log;
  ::kill(std::stoi(started[1]), SIGKILL);
  ASSERT_TRUE(reactor.wait_for_log("takeover abandoned during the hand-over", 10s)) << reactor.stderr_text();
  handler.resume();
  EXPECT_EQ(busy.read_line(), "spun 1000");
  ASSERT_TRUE(busy.send("pid\n"));
  EXPECT_TRUE(is_handler_of(reactor, busy.read_line()));  // Still the old reactor's.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  EXPECT_EQ(reactor.stat("pid"), old_pid);  // Its admin port is back too.
}

// The pid of the new reactor that the old one (whose log this is) started last.
pid_t successor_pid(const ReactorProcess& reactor) {
  const std::string log = reactor.stderr_text();
  std::smatch started;
  std::string::const_iterator from = log.begin();
  pid_t last = -1;
  while (std::regex_search(from, log.end(), started, std::regex(R"(started the new reactor, pid (\d+))"))) {
    last = std::stoi(started[1]);
    from = started[0].second;
  }
  return last;
}

// Stops the new reactor for a second as soon as the old one begins passing connections to it: on a loaded
// machine it reads its channel slower than the old reactor writes, and the channel's buffer fills.
void pause_the_successor_as_the_pass_begins(const ReactorProcess& reactor) {
  ASSERT_TRUE(reactor.wait_for_log("is ready; passing", 20s)) << reactor.stderr_text();
  const pid_t successor = successor_pid(reactor);
  ASSERT_GT(successor, 0);
  ASSERT_EQ(::kill(successor, SIGSTOP), 0);
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(::kill(successor, SIGCONT), 0);
}

// Each client asks ping once, a few hundred at a time (fewer than --max-queue): how many got pong.
size_t pings_answered(std::vector<Client>& clients) {
  constexpr size_t kAtOnce = 500;
  size_t answered = 0;
  for (size_t first = 0; first < clients.size(); first += kAtOnce) {
    const size_t end = std::min(first + kAtOnce, clients.size());
    for (size_t i = first; i < end; ++i) clients[i].send("ping\n");
    for (size_t i = first; i < end; ++i) answered += clients[i].read_line() == "pong";
  }
  return answered;
}

void raise_descriptor_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

// Reproduces: a takeover closed most connections once a few hundred were open ("passing a connection to the
// new reactor: Resource temporarily unavailable"): the pass wrote a non-blocking channel as if it blocked.
TEST(Takeover, TenThousandIdleAndAHundredHalfReadConnectionsMovePastAPausedSuccessor) {
  raise_descriptor_limit();
  constexpr size_t kIdle = 10'000, kHalfRead = 100, kHalfBody = 20'000;
  ReactorProcess reactor({"--handlers", "2"});
  std::vector<Client> idle;
  idle.reserve(kIdle);
  for (size_t i = 0; i < kIdle; ++i) idle.emplace_back(reactor.host(), reactor.port());
  ASSERT_EQ(pings_answered(idle), kIdle);
  const std::string head =
      "POST /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(2 * kHalfBody) +
      "\r\n\r\n";
  std::vector<Client> half_read;
  for (size_t i = 0; i < kHalfRead; ++i) {
    half_read.emplace_back(reactor.host(), reactor.port());
    ASSERT_TRUE(half_read.back().send(head + std::string(kHalfBody, 'x')));
  }
  ASSERT_TRUE(wait_until(
      [&] { return reactor.stat("pool.buffered_bytes") >= static_cast<int64_t>(kHalfRead * kHalfBody); },
      10s));

  ASSERT_EQ(reactor.take_over(60s, [&](pid_t) { pause_the_successor_as_the_pass_begins(reactor); }), 0)
      << reactor.stderr_text().substr(0, 4000);
  EXPECT_EQ(reactor.stat("counters.taken_over"), static_cast<int64_t>(kIdle + kHalfRead));
  for (Client& client : half_read) ASSERT_TRUE(client.send(std::string(kHalfBody, 'y')));
  size_t answered = 0;
  for (Client& client : half_read) answered += read_response(client).status == 200;
  EXPECT_EQ(answered, kHalfRead);
  EXPECT_EQ(pings_answered(idle), kIdle) << reactor.stderr_text().substr(0, 6000);
}

// Reproduces: the old reactor aborted (an assertion in ipc's encode) passing a queued request of 16 MiB or
// more: a frame's payload is at most 16 MiB, and the request went in one frame with its byte count. Every
// connection was lost, the two in-flight clients' too.
TEST(Takeover, AQueuedRequestLargerThanAFrameMovesInPieces) {
  ReactorProcess reactor({"--handlers", "2", "--max-request-bytes", "40m", "--max-buffered-bytes", "100m",
                          "--send-ahead", "off"});
  std::vector<Client> busy = connect_each_sending(reactor.host(), reactor.port(), 2, "spin 1000\n");
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 10s));
  // Both handlers stay busy until the hand-over has begun: the upload waits in the queue until then.
  const StoppedProcesses stopped = stop_each(reactor.handler_pids());
  ASSERT_TRUE(all_stopped(stopped));
  constexpr size_t kBody = 20u << 20, kSentBefore = 17u << 20;
  Client upload(reactor.host(), reactor.port());
  ASSERT_TRUE(upload.send("POST /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                          std::to_string(kBody) + "\r\n\r\n" + std::string(kSentBefore, 'x')));
  // The reactor reads the queued request (all it has of it is more than one frame of a takeover holds).
  ASSERT_TRUE(wait_until([&] { return reactor.stat("pool.buffered_bytes") >= int64_t{16} << 20; }, 20s));
  ASSERT_EQ(reactor.take_over(60s,
                              [&](pid_t) {
                                EXPECT_TRUE(reactor.wait_for_log("is ready; passing", 20s));
                                for (auto& handler : stopped) handler->resume();
                              }),
            0)
      << reactor.stderr_text();
  for (Client& client : busy) EXPECT_EQ(client.read_line(), "spun 1000");
  ASSERT_TRUE(upload.send(std::string(kBody - kSentBefore, 'y')));
  const HttpResponse answer = read_response(upload);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "pong\n");
}

// Reproduces: a stop of the old reactor during the hand-over, then of the new one (systemctl stop during an
// upgrade), and the old reactor died of SIGSEGV once its last request was answered (it told a successor that
// was gone already that every connection had been passed).
// (Its handler is stopped until both were signalled, so that its last answer comes after that.)
TEST(Takeover, AStopOfBothReactorsDuringTheHandOverEndsTheOldOneCleanly) {
  ReactorProcess reactor({"--handlers", "1"});
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 1000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  StoppedProcess handler(reactor.handler_pids().at(0));
  ASSERT_TRUE(handler.stopped());
  const int status = reactor.take_over(60s, [&](pid_t old) {
    ASSERT_TRUE(reactor.wait_for_log("is ready; passing", 20s)) << reactor.stderr_text();
    ::kill(old, SIGTERM);
    const pid_t successor = successor_pid(reactor);
    ASSERT_GT(successor, 0);
    ::kill(successor, SIGTERM);
    EXPECT_TRUE(
        wait_until([&] { return !std::filesystem::exists("/proc/" + std::to_string(successor)); }, 20s));
    handler.resume();
  });
  handler.resume();
  EXPECT_EQ(busy.read_line(), "spun 1000");
  EXPECT_EQ(status, 0) << reactor.stderr_text();
}

// Reproduces: at --max-connections, the listener's hold served both the cap and the takeover; the first close
// during the hand-over lifted both, and the old reactor accepted newcomers, never passed its idle connections
// and exited 1 at --shutdown-timeout.
TEST(Takeover, AtTheConnectionCapACloseDuringTheHandOverDoesNotReopenTheOldListener) {
  ReactorProcess reactor(
      {"--handlers", "2", "--max-connections", "3", "--linger", "0", "--shutdown-timeout", "20s"});
  const pid_t old_pid = reactor.pid();
  // The first client's handler is held (stopped) until the hand-over has begun: it answers then, and closes
  // the connection as asked, in the old reactor, during the hand-over.
  Client quits(reactor.host(), reactor.port());
  ASSERT_TRUE(quits.send("pid\nspin 200\nquit\n"));
  const pid_t held = std::stoi(quits.read_line());
  ASSERT_EQ(::kill(held, SIGSTOP), 0);
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 1500\n"));
  Client idle(reactor.host(), reactor.port());
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2; }, 5s));
  std::vector<std::string> newcomers;
  const int status = reactor.take_over(60s, [&](pid_t) {
    ASSERT_TRUE(reactor.wait_for_log("is ready; passing", 20s)) << reactor.stderr_text();
    ::kill(held, SIGCONT);
    EXPECT_EQ(quits.read_line(), "spun 200");
    EXPECT_TRUE(quits.wait_closed(5s));
    for (int i = 0; i < 6; ++i) newcomers.push_back(ask(reactor.host(), reactor.port(), "pid"));
  });
  EXPECT_EQ(status, 0) << reactor.stderr_text();
  EXPECT_EQ(busy.read_line(), "spun 1500");
  ASSERT_TRUE(idle.send("pid\n"));
  EXPECT_TRUE(is_handler_of(reactor, idle.read_line()));
  for (const std::string& pid : newcomers) EXPECT_TRUE(is_handler_of(reactor, pid)) << pid;
  EXPECT_NE(reactor.pid(), old_pid);
}

// Reproduces: a takeover reverted the pool to --handlers (POST /pool?size=3, SIGUSR2: 2 handlers again).
TEST(Takeover, TheNewReactorKeepsThePoolSizeInForce) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_EQ(reactor.admin("POST", "/pool?size=3").status, 200);
  ASSERT_TRUE(reactor.wait_for_handlers(3, 20s));
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  EXPECT_EQ(reactor.stat("pool.target"), 3);
  EXPECT_TRUE(reactor.wait_for_handlers(3, 20s));
}

// Reproduces: the new reactor answered a half-read request's "Expect: 100-continue" a second time, and the
// client read the second "100 Continue" as the answer to its request.
TEST(Takeover, A100ContinueAlreadySentIsNotSentAgain) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send(
      "POST /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  EXPECT_EQ(client.read_line(), "HTTP/1.1 100 Continue\r");
  EXPECT_EQ(client.read_line(), "\r");
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  ASSERT_TRUE(client.send("body"));
  const HttpResponse answer = read_response(client);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "pong\n");
}

// Reproduces: a half-read request's --read-timeout started over in each new reactor (a slowloris with a 4 s
// timeout kept its connection for 9 s across 6 takeovers). It counts from the request's first byte.
TEST(Takeover, TheReadTimeoutOfAHalfReadRequestCountsOnAcrossTakeovers) {
  ReactorProcess reactor({"--handlers", "1", "--read-timeout", "3s"});
  Client slow(reactor.host(), reactor.port());
  const auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.send("GET /ping HTTP/1.1\r\n"));
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  std::this_thread::sleep_until(began + 2500ms);
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  const auto taken_over = std::chrono::steady_clock::now();
  const HttpResponse answer = read_response(slow);
  EXPECT_EQ(answer.status, 408);
  // 3 s from the first byte is at most 0.5 s after the second takeover (however long the takeovers took);
  // started over, it would come 3 s after the new reactor adopted the connection.
  EXPECT_LT(std::chrono::steady_clock::now() - taken_over, 2s);
}

// The reactor started from a copy of its binary, replaced for the upgrade as a package manager replaces a
// file: the new one is written beside it and renamed over it.
class TakeoverOfACopy : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = folder_.path("handoff");
    std::filesystem::copy_file(reactor_path(), binary_);
    previous_ = environment("HANDOFF_REACTOR");
    ::setenv("HANDOFF_REACTOR", binary_.c_str(), 1);
  }
  void TearDown() override { ::setenv("HANDOFF_REACTOR", previous_.c_str(), 1); }

  void install(const std::string& source) {
    const std::string fresh = binary_ + ".new";
    std::filesystem::copy_file(source, fresh, std::filesystem::copy_options::overwrite_existing);
    ::chmod(fresh.c_str(), 0755);
    std::filesystem::rename(fresh, binary_);
  }

  TemporaryFolder folder_;
  std::string binary_;
  std::string previous_;
};

// Reproduces: each abandoned takeover left a zombie: a successor that closed the channel before it was ready
// and exited later was never reaped.
TEST_F(TakeoverOfACopy, AnAbandonedSuccessorIsReaped) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", environment("HANDOFF_HANDLER")});
  install(folder_.file("closes", "#!/bin/sh\nexec 3>&-\nsleep 1\nexit 3\n", true));
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ::kill(reactor.pid(), SIGUSR2);
    ASSERT_TRUE(wait_until(
        [&] {
          const std::string log = reactor.stderr_text();
          size_t abandoned = 0;
          for (size_t at = log.find("takeover abandoned"); at != std::string::npos;
               at = log.find("takeover abandoned", at + 1))
            ++abandoned;
          return abandoned == static_cast<size_t>(attempt);
        },
        10s))
        << reactor.stderr_text();
  }
  // Each successor is reaped: gone from /proc (a zombie stays there until its parent waits for it).
  const std::string log = reactor.stderr_text();
  const std::regex started(R"(started the new reactor, pid (\d+))");
  size_t successors = 0;
  for (auto match = std::sregex_iterator(log.begin(), log.end(), started); match != std::sregex_iterator();
       ++match, ++successors) {
    const std::string proc = "/proc/" + (*match)[1].str();
    EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists(proc); }, 5s)) << proc;
  }
  EXPECT_EQ(successors, 3u);
  EXPECT_TRUE(wait_until([&] { return reactor.handler_pids().size() == 1; }, 5s));
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

// A new reactor that says it is ready and then reads nothing of the channel (wedged, or stopped): the
// connections wait in the old reactor's outbox, and the old one serves on while it waits. After
// --shutdown-timeout with nothing taken it gives the new one up, kills it, and serves again every connection
// it did not take. Those the channel had taken (in its buffer, never read) are lost with it.
TEST_F(TakeoverOfACopy, ASuccessorThatTakesNothingIsGivenUpAndItsConnectionsAreServedHere) {
  raise_descriptor_limit();
  ReactorProcess reactor(
      {"--handlers", "2", "--handler-cmd", environment("HANDOFF_HANDLER"), "--shutdown-timeout", "2s"});
  const pid_t old_pid = reactor.pid();
  constexpr size_t kIdle = 2000;
  std::vector<Client> idle;
  for (size_t i = 0; i < kIdle; ++i) idle.emplace_back(reactor.host(), reactor.port());
  ASSERT_EQ(pings_answered(idle), kIdle);
  // Reads the listening sockets, says kTakeoverReady (the wire format of docs/architecture.md), then nothing.
  install(folder_.file("wedged",
                       "#!/usr/bin/env python3\n"
                       "import socket, struct, time\n"
                       "channel = socket.socket(fileno=3)\n"
                       "while True:\n"
                       "    header, fds, _, _ = socket.recv_fds(channel, 24, 1)\n"
                       "    if struct.unpack('=IHHQII', header)[4] & 2: break\n"
                       "channel.sendall(struct.pack('=IHHQII', 0x46444e48, 2, 7, 0, 0, 0))\n"
                       "time.sleep(60)\n",
                       true));
  ::kill(old_pid, SIGUSR2);
  ASSERT_TRUE(reactor.wait_for_log("killing it", 20s)) << reactor.stderr_text();
  ASSERT_TRUE(reactor.wait_for_log("takeover abandoned during the hand-over", 10s)) << reactor.stderr_text();
  std::smatch given_back;
  const std::string log = reactor.stderr_text();
  ASSERT_TRUE(std::regex_search(log, given_back, std::regex(R"((\d+) of them given back unpassed)"))) << log;
  EXPECT_GT(std::stoul(given_back[1]), kIdle / 2);
  // Each connection given back answers here; each the channel had taken is closed: none hangs.
  size_t answered = 0, closed = 0;
  for (Client& client : idle) {
    client.send("ping\n");
    const std::string line = client.read_line();
    answered += line == "pong";
    closed += line == "<closed>";
  }
  EXPECT_EQ(answered, std::stoul(given_back[1]));
  EXPECT_EQ(answered + closed, kIdle);
  EXPECT_EQ(reactor.pid(), old_pid);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");  // It accepts again.
}

TEST_F(TakeoverOfACopy, ABrokenNewBinaryIsAbandonedAndAFixedOneGoesLive) {
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", environment("HANDOFF_HANDLER")});
  const pid_t old_pid = reactor.pid();
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("ping\n"));
  ASSERT_EQ(client.read_line(), "pong");

  install(folder_.file("broken", "#!/bin/sh\necho 'a broken build' >&2\nexit 3\n", true));
  ::kill(reactor.pid(), SIGUSR2);
  ASSERT_TRUE(reactor.wait_for_log("takeover abandoned", 10s)) << reactor.stderr_text();
  EXPECT_EQ(reactor.pid(), old_pid);
  ASSERT_TRUE(client.send("ping\n"));
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");  // It still accepts.

  install(previous_);
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  EXPECT_NE(reactor.pid(), old_pid);
  ASSERT_TRUE(client.send("pid\n"));
  EXPECT_TRUE(is_handler_of(reactor, client.read_line()));
}

}  // namespace
}  // namespace handoff::testing
