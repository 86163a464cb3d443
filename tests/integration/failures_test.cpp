// Integration tests of the failure promises: every client gets an answer or a clear error, never a hang or a
// silent reset; the server stays up; nothing leaks. Real reactor, real handlers, real signals, short
// timeouts.

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string handler_path() {
  const char* path = std::getenv("HANDOFF_HANDLER");
  return path != nullptr ? path : "build/handler/handoff-handler";
}

// A shell script in a fresh temporary folder, removed with the object.
class Script {
 public:
  explicit Script(const std::string& body) {
    char folder[] = "/tmp/handoff-test-XXXXXX";
    folder_ = ::mkdtemp(folder);
    path_ = folder_ + "/handler.sh";
    std::ofstream(path_) << "#!/bin/sh\n" << body;
    ::chmod(path_.c_str(), 0755);
  }
  ~Script() { std::system(("rm -rf '" + folder_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  const std::string& folder() const { return folder_; }

 private:
  std::string folder_, path_;
};

// The first start of the handler command runs bad_start; every later one is the real handler.
Script first_start_misbehaves(const std::string& bad_start) {
  return Script(
      "count=\"$(dirname \"$0\")/starts\"\n"
      "if [ ! -e \"$count\" ]; then : > \"$count\"; " +
      bad_start +
      "; fi\n"
      "exec '" +
      handler_path() + "'\n");
}

pid_t pid_of(Client& client) {
  client.send("pid\n");
  return std::stoi(client.read_line());
}

class HandlerCrash : public ::testing::TestWithParam<int> {};

TEST_P(HandlerCrash, MidRequestTheClientGetsErrHandlerCrashedAndServingGoesOn) {
  ReactorProcess reactor({"--handlers", "2"});
  reactor.expect_crash_reports();
  Client client(reactor.host(), reactor.port());
  // Pipelined: the pid answer is complete before the spin starts, so the reactor can tell that nothing of
  // the spin's answer was written yet.
  ASSERT_TRUE(client.send("pid\nspin 20000\n"));
  const pid_t serving = std::stoi(client.read_line());
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 1; }, 10s));  // The spin runs.
  ASSERT_EQ(::kill(serving, GetParam()), 0);
  EXPECT_EQ(client.read_line(5s), "ERR handler crashed");
  EXPECT_TRUE(client.wait_closed(5s));
  EXPECT_TRUE(reactor.wait_for_handlers(2, 10s));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

INSTANTIATE_TEST_SUITE_P(Signals, HandlerCrash, ::testing::Values(SIGKILL, SIGABRT, SIGSEGV),
                         [](const auto& info) { return std::string(sigabbrev_np(info.param)); });

TEST(Failures, ARequestOverTheTimeoutGetsErrTimeoutAndAFreshHandler) {
  ReactorProcess reactor({"--handlers", "1", "--request-timeout", "400ms"});
  Client client(reactor.host(), reactor.port());
  const pid_t before = pid_of(client);
  const Clock::time_point start = Clock::now();
  ASSERT_TRUE(client.send("spin 10000\nping\n"));
  EXPECT_EQ(client.read_line(5s), "ERR timeout");
  // The connection is closed, so the pipelined ping can never receive the late answer of the spin.
  std::string rest;
  EXPECT_TRUE(client.wait_closed(5s, &rest));
  EXPECT_EQ(rest, "");
  EXPECT_LT(Clock::now() - start, 5s);
  Client next(reactor.host(), reactor.port());
  EXPECT_NE(pid_of(next), before);
  EXPECT_NE(reactor.stderr_text().find("exceeded --request-timeout"), std::string::npos);
}

TEST(Failures, AFullQueueAnswersErrBusyAndAcceptingGoesOn) {
  ReactorProcess reactor({"--handlers", "1", "--max-queue", "1"});
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 1500\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  Client queued(reactor.host(), reactor.port());
  ASSERT_TRUE(queued.send("ping\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.queue_length() == 1; }, 10s));
  Client refused(reactor.host(), reactor.port());
  ASSERT_TRUE(refused.send("ping\n"));
  EXPECT_EQ(refused.read_line(1s), "ERR busy");
  EXPECT_TRUE(refused.wait_closed(2s));
  EXPECT_EQ(queued.read_line(), "pong");
  EXPECT_EQ(busy.read_line(), "spun 1500");
}

TEST(Failures, ARequestThatWaitsTooLongInTheQueueGetsErrBusy) {
  ReactorProcess reactor({"--handlers", "1", "--queue-timeout", "300ms"});
  Client busy(reactor.host(), reactor.port());
  ASSERT_TRUE(busy.send("spin 2000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 1; }, 10s));
  Client waiting(reactor.host(), reactor.port());
  ASSERT_TRUE(waiting.send("ping\n"));
  EXPECT_EQ(waiting.read_line(1500ms), "ERR busy");
  EXPECT_TRUE(waiting.wait_closed(2s));
  EXPECT_EQ(busy.read_line(), "spun 2000");
}

TEST(Failures, HandlersRetireAfterMaxRequestsWithoutFailingOne) {
  ReactorProcess reactor({"--handlers", "1", "--max-requests", "3"});
  // A worn handler serves on until its replacement said hello, so that recycling never leaves a request
  // waiting for a handler to start: each handler answers at least three requests, maybe more.
  std::vector<pid_t> pids;
  std::map<pid_t, int> served;
  // Requests go on until the third handler answers (a replacement may take a while to start under a loaded
  // sanitizer build), for 30 s at most.
  const Clock::time_point deadline = Clock::now() + 30s;
  for (int i = 0; Clock::now() < deadline && served.size() < 3; ++i) {
    Client client(reactor.host(), reactor.port());
    pids.push_back(pid_of(client));
    ASSERT_GT(pids.back(), 0) << "request " << i;
    ++served[pids.back()];
  }
  EXPECT_EQ(served.size(), 3u);
  for (size_t i = 1; i < pids.size(); ++i) {
    if (pids[i] != pids[i - 1]) {
      EXPECT_GE(served[pids[i - 1]], 3) << "handler " << pids[i - 1];
    }
  }
  EXPECT_TRUE(reactor.wait_for_handlers(1, 5s));
}

TEST(Failures, AStalledRequestGetsErrReadTimeoutAndASilentClientIsClosed) {
  ReactorProcess reactor({"--handlers", "1", "--read-timeout", "300ms", "--idle-timeout", "500ms"});
  Client stalled(reactor.host(), reactor.port());
  ASSERT_TRUE(stalled.send("fi"));
  EXPECT_EQ(stalled.read_line(3s), "ERR read timeout");
  EXPECT_TRUE(stalled.wait_closed(2s));

  Client silent(reactor.host(), reactor.port());
  const Clock::time_point start = Clock::now();
  std::string said;
  EXPECT_TRUE(silent.wait_closed(5s, &said));
  EXPECT_EQ(said, "");
  EXPECT_GE(Clock::now() - start, 400ms);

  // A client between requests is idle too, not reading.
  Client between(reactor.host(), reactor.port());
  ASSERT_TRUE(between.send("ping\n"));
  EXPECT_EQ(between.read_line(), "pong");
  EXPECT_TRUE(between.wait_closed(5s));
}

// Out of descriptors, the reactor logged a warning ten times a second for as long as it lasted.
TEST(Failures, OutOfDescriptorsTheReactorSaysSoOnceAndServesAgainWhenTheyCome) {
#ifdef __SANITIZE_ADDRESS__
  // The sanitized build (ASan with UBSan): UBSan's vptr check probes memory through a pipe(2), which fails
  // when no descriptor is left, and then reports a false "invalid vptr". The release build runs this test.
  GTEST_SKIP() << "UBSan cannot check virtual calls without a free descriptor";
#endif
  ReactorProcess reactor({"--handlers", "1", "--max-connections", "1000"}, kFewDescriptors);
  std::vector<Client> held;
  ASSERT_TRUE(use_up_descriptors(reactor, held)) << reactor.stderr_text();
  const auto reports = [&] {
    const std::string log = reactor.stderr_text();
    size_t count = 0;
    for (size_t at = log.find("pausing accepts"); at != std::string::npos;
         at = log.find("pausing accepts", at + 1)) {
      ++count;
    }
    return count;
  };
  // A second of shortage is ten pauses: one report.
  std::this_thread::sleep_for(1s);  // The length of the shortage is what is under test.
  EXPECT_EQ(reports(), 1u) << reactor.stderr_text();
  held.clear();  // The clients leave; their descriptors come back.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

TEST(Failures, AThousandTricklingClientsDoNotSlowDownNormalRequests) {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_max < 2200) GTEST_SKIP() << "needs 2200 descriptors, the hard limit is " << files.rlim_max;
  files.rlim_cur = files.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &files);

  ReactorProcess reactor({"--handlers", "1", "--read-timeout", "60s"});
  constexpr int kSlowClients = 1000;
  std::vector<Client> slow;
  for (int i = 0; i < kSlowClients; ++i) slow.emplace_back(reactor.host(), reactor.port());

  // Each slow client sends "fib 10" a byte at a time, 100 ms apart, while normal requests keep coming.
  std::atomic<bool> trickling = true;
  std::thread trickler([&] {
    for (char byte : std::string("fib 10")) {
      for (Client& client : slow) client.send(std::string(1, byte));
      std::this_thread::sleep_for(100ms);  // The slow clients' pace, not a wait for a state.
    }
    trickling = false;
  });

  Clock::duration slowest{};
  int normal = 0;
  while (trickling || normal < 200) {
    const Clock::time_point start = Clock::now();
    ASSERT_EQ(ask(reactor.host(), reactor.port(), "fib 15"), "610");
    slowest = std::max(slowest, Clock::now() - start);
    ++normal;
  }
  trickler.join();
  // A bound for a machine under load, far below what waiting behind 1000 clients for one handler would take.
  EXPECT_LT(slowest, 1s);

  for (Client& client : slow) client.send("\n");
  int answered = 0;
  for (Client& client : slow) answered += client.read_line(20s) == "55" ? 1 : 0;
  EXPECT_EQ(answered, kSlowClients);
}

// Clients gone before their answers cost nothing but the work: no crash, no error, and the pool serves on. (A
// handler still computing for a client that reset its connection is replaced: `cancelled`.)
TEST(Failures, ClientsThatVanishHurtNothing) {
  ReactorProcess reactor({"--handlers", "1"});
  for (int i = 0; i < 20; ++i) {
    Client client(reactor.host(), reactor.port());
    client.send(i % 2 ? "spin 50\n" : "fib 20\nfib 20\nfib 20\n");
  }  // Gone before the answers.
  Client late(reactor.host(), reactor.port());
  EXPECT_GT(pid_of(late), 0);
  EXPECT_TRUE(reactor.wait_for_handlers(1, 10s));
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 0) << reactor.stats();
  EXPECT_EQ(reactor.stat("counters.handler_exits"), reactor.stat("counters.cancelled")) << reactor.stats();
}

TEST(Failures, AHandlerSendingGarbageIsKilledAndReplaced) {
  const Script script = first_start_misbehaves("printf 'this is not an ipc frame at all' >&3; sleep 30");
  ReactorProcess reactor({"--handlers", "2", "--handler-cmd", script.path()});
  EXPECT_TRUE(reactor.wait_for_log("frame does not start with the handoff magic", 10s))
      << reactor.stderr_text();
  EXPECT_TRUE(reactor.wait_for_handlers(2, 10s));
  // Both handlers serve (the replacement once it said hello): idle handlers take turns, so two pids show.
  std::set<std::string> pids;
  EXPECT_TRUE(wait_until(
      [&] {
        pids.insert(ask(reactor.host(), reactor.port(), "pid"));
        return pids.size() == 2;
      },
      10s));
}

TEST(Failures, AHandlerOfAnotherProtocolVersionIsKilledAndReplaced) {
  // A kHello header with version 2: magic "HNDF", version, type 1, then zeros.
  const Script script = first_start_misbehaves(
      "printf 'HNDF\\002\\000\\001\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000"
      "\\000\\000\\000\\000' >&3; sleep 30");
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", script.path()});
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
  EXPECT_NE(reactor.stderr_text().find("another ipc protocol version"), std::string::npos)
      << reactor.stderr_text();
}

TEST(Failures, AHandlerCommandThatNeverGetsReadyStopsTheReactorWithStatus1) {
  const ProgramResult result =
      run_program(reactor_command({"--listen", "127.0.0.1:0", "--admin", "off", "--handlers", "2",
                                   "--handler-cmd", "/bin/false"}),
                  "", 60s);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("starting the next in"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("giving up"), std::string::npos) << result.err;
}

TEST(Failures, SigtermFinishesQueuedRequestsAndClosesIdleOnes) {
  auto reactor = std::make_unique<ReactorProcess>(std::vector<std::string>{"--handlers", "1"});
  Client idle(reactor->host(), reactor->port());
  Client busy(reactor->host(), reactor->port());
  ASSERT_TRUE(busy.send("spin 600\n"));
  ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
  Client queued(reactor->host(), reactor->port());
  ASSERT_TRUE(queued.send("fib 20\n"));
  ASSERT_TRUE(wait_until([&] { return reactor->queue_length() == 1; }, 10s));
  std::thread stopper([&] { EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 0); });
  EXPECT_EQ(busy.read_line(), "spun 600");
  EXPECT_EQ(queued.read_line(), "6765");
  EXPECT_TRUE(idle.wait_closed(5s));
  stopper.join();
}

TEST(Failures, TheShutdownTimeoutCutsOffLongRequestsWithAnError) {
  auto reactor = std::make_unique<ReactorProcess>(
      std::vector<std::string>{"--handlers", "1", "--shutdown-timeout", "300ms"});
  Client busy(reactor->host(), reactor->port());
  ASSERT_TRUE(busy.send("spin 20000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(reactor->signal_and_wait(SIGTERM, 10s), 1);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(busy.read_line(), "ERR shutting down");
}

TEST(Failures, ASecondSignalStopsAtOnce) {
  auto reactor = std::make_unique<ReactorProcess>(std::vector<std::string>{"--handlers", "1"});
  Client busy(reactor->host(), reactor->port());
  ASSERT_TRUE(busy.send("spin 20000\n"));
  ASSERT_TRUE(wait_until([&] { return reactor->busy_handlers() == 1; }, 10s));
  ::kill(reactor->pid(), SIGINT);
  ASSERT_TRUE(reactor->wait_for_log("finishing", 5s));
  // A second signal within 250 ms is taken for the same one (timeout(1) sends two): the time is the behaviour
  // under test here, not a wait for a state.
  std::this_thread::sleep_for(300ms);
  const Clock::time_point start = Clock::now();
  EXPECT_EQ(reactor->signal_and_wait(SIGINT, 10s), 1);
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(busy.read_line(), "ERR shutting down");
}

TEST(Failures, SighupReplacesEveryHandlerWithoutFailingARequest) {
  ReactorProcess reactor({"--handlers", "2"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  const std::vector<pid_t> old_handlers = reactor.handler_pids();

  Client long_request(reactor.host(), reactor.port());
  ASSERT_TRUE(long_request.send("spin 800\n"));
  std::atomic<bool> running = true;
  std::atomic<int> answered = 0, failed = 0;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      while (running) {
        (ask(reactor.host(), reactor.port(), "fib 12") == "144" ? answered : failed)++;
      }
    });
  }
  ASSERT_TRUE(wait_until([&] { return answered > 10; }, 10s));
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  EXPECT_EQ(long_request.read_line(), "spun 800");  // The old handler finished its request.
  EXPECT_TRUE(wait_until([&] { return reactor.reload_state() == "done"; }, 10s)) << reactor.stats();
  const int after_reload = answered;
  EXPECT_TRUE(wait_until([&] { return answered > after_reload + 10; }, 10s));
  running = false;
  for (std::thread& thread : load) thread.join();
  EXPECT_EQ(failed, 0);
  EXPECT_GT(answered, 0);

  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s));
  for (pid_t handler : reactor.handler_pids()) {
    EXPECT_EQ(std::find(old_handlers.begin(), old_handlers.end(), handler), old_handlers.end()) << handler;
  }
}

// Reproduces: a handler whose command forked a child (fork without exec, as multiprocessing's fork start
// method does) left the connection open for as long as the child lived, after the client's quit: only the
// crash path ended the connection for the client, by shutting it down.
TEST(Failures, AConnectionTheHandlerClosesEndsEvenIfAForkedChildHoldsTheSocket) {
  TemporaryFolder folder;
  const std::string script = folder.file("forks.py",
                                         "import os, time\n"
                                         "from handoff_handler import Handler, Reply\n"
                                         "handler = Handler()\n"
                                         "@handler.command('fork')\n"
                                         "def fork(request):\n"
                                         "    if os.fork() == 0:\n"
                                         "        time.sleep(20)\n"
                                         "        os._exit(0)\n"
                                         "    return Reply.text('forked')\n"
                                         "handler.run()\n");
  ReactorProcess reactor({"--handlers", "1", "--handler-cmd", "python3 " + script});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("fork\n"));
  ASSERT_EQ(client.read_line(), "forked");
  ASSERT_TRUE(client.send("quit\n"));
  EXPECT_TRUE(client.wait_closed(5s));
}

}  // namespace
}  // namespace handoff::testing
