// --preload: the handler command starts once as a template that loads the app, and handlers are forked from
// it. The app here takes 2 s to import (as one that imports Flask and numpy may), and notes each import in a
// file: how many times it was loaded is the state these tests assert, and the 2 s the clock they show.

#include <signal.h>
#include <sys/types.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kImportTime = 2s;  // What the app's import sleeps.

// A Python app that is slow to import. /pid answers the handler's pid, /version the VERSION below, and
// /hold, once it wrote its pid to the file "held", holds its handler until the file "gate" exists.
std::string slow_app(const TemporaryFolder& folder, const std::string& version,
                     const std::string& tail = "") {
  return folder.file("app.py",
                     "import os, time\n"
                     "VERSION = '" +
                         version +
                         "'\n"
                         "time.sleep(2)  # An import as slow as Flask's and numpy's together.\n"
                         "with open('" +
                         folder.path("imports") +
                         "', 'a') as imports:\n"
                         "    imports.write('%d\\n' % os.getpid())\n"
                         "from handoff_handler import Handler\n"
                         "handler = Handler()\n"
                         "@handler.route('/pid')\n"
                         "def pid(request):\n"
                         "    return str(os.getpid())\n"
                         "@handler.route('/version')\n"
                         "def version(request):\n"
                         "    return VERSION\n"
                         "@handler.route('/hold')\n"
                         "def hold(request):\n"
                         "    with open('" +
                         folder.path("held") +
                         "', 'w') as held:\n"
                         "        held.write(str(os.getpid()))\n"
                         "    while not os.path.exists('" +
                         folder.path("gate") +
                         "'):\n"
                         "        time.sleep(0.01)\n"
                         "    return 'held'\n" +
                         tail + "handler.run()\n");
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

pid_t parent_of(pid_t pid) {
  // /proc/PID/stat: "pid (comm) state ppid ...", and comm may hold spaces and parentheses.
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t after_comm = stat.rfind(')');
  return after_comm == std::string::npos ? 0 : std::atoi(stat.c_str() + after_comm + 4);
}

size_t imports(const TemporaryFolder& folder) {
  std::ifstream file(folder.path("imports"));
  return std::count(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>(), '\n');
}

HttpResponse get(const ReactorProcess& reactor, const std::string& target) {
  Client client(reactor.host(), reactor.port());
  client.send("GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  return read_response(client);
}

// The pids of the handlers in /stats (with --preload the reactor's children are its templates).
std::set<pid_t> serving_pids(const ReactorProcess& reactor) {
  const std::string stats = reactor.stats();
  std::set<pid_t> pids;
  const std::regex pid_field("\"pid\":([0-9]+),\"state\":\"[a-z]+\",\"requests\"");
  for (auto it = std::sregex_iterator(stats.begin(), stats.end(), pid_field); it != std::sregex_iterator();
       ++it)
    pids.insert(std::stoi((*it)[1]));
  return pids;
}

std::vector<std::string> arguments(const std::string& app, bool preload, unsigned handlers) {
  std::vector<std::string> arguments = {"--handlers", std::to_string(handlers), "--handler-cmd",
                                        "python3 " + app};
  if (preload) arguments.push_back("--preload");
  return arguments;
}

// Every handler has said hello and is idle.
bool all_ready(const ReactorProcess& reactor, unsigned handlers) {
  return wait_until([&] { return reactor.idle_handlers() == handlers; }, 30s);
}

// Clients that ask /pid on fresh connections, one request after another each, until stopped: what they got.
class Load {
 public:
  explicit Load(const ReactorProcess& reactor, int clients) {
    for (int i = 0; i < clients; ++i) {
      threads_.emplace_back([this, &reactor] {
        while (!stop_) {
          const HttpResponse answer = get(reactor, "/pid");
          const std::lock_guard lock(mutex_);
          if (answer.status == 200) {
            pids_.insert(std::stoi(answer.body));
            ++answered_;
          } else {
            ++failed_;
          }
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (std::thread& thread : threads_)
      if (thread.joinable()) thread.join();
  }
  bool saw_any_of_but(const std::set<pid_t>& known) {
    const std::lock_guard lock(mutex_);
    return std::any_of(pids_.begin(), pids_.end(), [&](pid_t pid) { return !known.contains(pid); });
  }
  int answered() {
    const std::lock_guard lock(mutex_);
    return answered_;
  }
  int failed() {
    const std::lock_guard lock(mutex_);
    return failed_;
  }

 private:
  std::atomic<bool> stop_ = false;
  std::mutex mutex_;
  std::set<pid_t> pids_;
  int answered_ = 0;
  int failed_ = 0;
  std::vector<std::thread> threads_;
};

// A handler SIGKILLed in the middle of a request, while clients keep asking: its client gets the 502, every
// other request is answered, and the replacement serves. With --preload it is forked (the app is not loaded
// again); without, it loads the app again, and serves no sooner than the import takes.
void kill_a_handler_under_load(bool preload) {
  TemporaryFolder folder;
  // The victim's GET is not run again on another handler (that would hold it too): its client gets the 502.
  std::vector<std::string> options = arguments(slow_app(folder, "one"), preload, 3);
  options.insert(options.end(), {"--retry-crashed", "off"});
  ReactorProcess reactor(options);
  ASSERT_TRUE(all_ready(reactor, 3)) << reactor.stats();
  const std::set<pid_t> before = serving_pids(reactor);
  ASSERT_EQ(before.size(), 3u) << reactor.stats();
  const size_t imported = imports(folder);
  EXPECT_EQ(imported, preload ? 1u : 3u);

  Client victim(reactor.host(), reactor.port());
  ASSERT_TRUE(victim.send("GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return !read_file(folder.path("held")).empty(); }, 10s));
  const pid_t held = std::stoi(read_file(folder.path("held")));

  Load load(reactor, 3);
  ASSERT_TRUE(wait_until([&] { return load.answered() >= 20; }, 30s)) << reactor.stats();
  const Clock::time_point killed = Clock::now();
  ASSERT_GT(held, 0);  // kill(0) would signal this test's whole process group.
  ASSERT_EQ(::kill(held, SIGKILL), 0);
  EXPECT_EQ(read_response(victim).status, 502);
  ASSERT_TRUE(wait_until([&] { return load.saw_any_of_but(before); }, 30s)) << reactor.stats();
  const auto respawn = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  const int answered_after = load.answered();
  load.stop();

  std::printf("%s: a handler SIGKILLed under load served again, replaced, after %lld ms (%d answers)\n",
              preload ? "--preload" : "without --preload", static_cast<long long>(respawn.count()),
              answered_after);
  EXPECT_EQ(load.failed(), 0) << reactor.stderr_text();
  if (preload) {
    EXPECT_EQ(imports(folder), imported) << "the replacement loaded the app again";
  } else {
    EXPECT_EQ(imports(folder), imported + 1);
    EXPECT_GE(respawn, kImportTime) << "a replacement that loads the app takes its import time";
  }
}

TEST(Preload, AHandlerKilledUnderLoadIsForkedAgainNotLoaded) {
  kill_a_handler_under_load(true);
}

TEST(Preload, WithoutItAReplacementLoadsTheAppAgain) {
  kill_a_handler_under_load(false);
}

TEST(Preload, SighupLoadsTheNewCodeInANewTemplate) {
  TemporaryFolder folder;
  ReactorProcess reactor(arguments(slow_app(folder, "one"), true, 2));
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  EXPECT_EQ(get(reactor, "/version").body, "one\n");
  const std::vector<pid_t> templates = reactor.handler_pids();
  ASSERT_EQ(templates.size(), 1u);

  slow_app(folder, "two");
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return reactor.reload_state() == "done"; }, 30s)) << reactor.stderr_text();
  EXPECT_EQ(get(reactor, "/version").body, "two\n");
  EXPECT_EQ(get(reactor, "/version").body, "two\n");
  EXPECT_EQ(imports(folder), 2u);
  // The old template exits once its last handler is gone.
  EXPECT_TRUE(wait_until(
      [&] {
        const std::vector<pid_t> now = reactor.handler_pids();
        return now.size() == 1 && now != templates;
      },
      30s));
  EXPECT_TRUE(reactor.wait_for_log("template " + std::to_string(templates[0]) + " exited with status 0", 10s))
      << reactor.stderr_text();
  // /stats shows the one template left, and the handlers it forked.
  const std::string stats = reactor.stats();
  EXPECT_NE(stats.find("\"templates\":[{\"pid\":" + std::to_string(reactor.handler_pids().at(0)) +
                       ",\"state\":\"ready\",\"handlers\":2}]"),
            std::string::npos)
      << stats;
}

TEST(Preload, SighupWithASyntaxErrorKeepsTheOldHandlersServing) {
  TemporaryFolder folder;
  ReactorProcess reactor(arguments(slow_app(folder, "one"), true, 2));
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  const std::set<pid_t> before = serving_pids(reactor);

  slow_app(folder, "two", "def broken(:\n");
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return reactor.reload_state() == "abandoned"; }, 30s))
      << reactor.stderr_text();
  EXPECT_EQ(get(reactor, "/version").body, "one\n");
  EXPECT_EQ(reactor.admin("GET", "/healthz").status, 200);
  EXPECT_EQ(serving_pids(reactor), before);
  const std::string log = reactor.stderr_text();
  EXPECT_NE(log.find("SyntaxError"), std::string::npos) << log;
  EXPECT_NE(log.find("reload abandoned"), std::string::npos) << log;

  // Fixed, the next SIGHUP goes through.
  slow_app(folder, "three");
  ASSERT_EQ(::kill(reactor.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_until([&] { return reactor.reload_state() == "done"; }, 30s)) << reactor.stderr_text();
  EXPECT_EQ(get(reactor, "/version").body, "three\n");
}

TEST(Preload, ATemplateThatDiesIsStartedAgainAndItsHandlersServeOn) {
  TemporaryFolder folder;
  ReactorProcess reactor(arguments(slow_app(folder, "one"), true, 2));
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  const std::set<pid_t> handlers = serving_pids(reactor);
  // A ready handler is one whose pid is known, forked or not (its hello may come before its template's
  // report).
  ASSERT_EQ(handlers.size(), 2u) << reactor.stats();
  ASSERT_FALSE(handlers.contains(0)) << reactor.stats();
  const std::vector<pid_t> templates = reactor.handler_pids();
  ASSERT_EQ(templates.size(), 1u);

  ASSERT_EQ(::kill(templates[0], SIGKILL), 0);
  ASSERT_TRUE(
      reactor.wait_for_log("template " + std::to_string(templates[0]) + " was killed by signal 9", 10s));
  for (int i = 0; i < 4; ++i) {
    const HttpResponse answer = get(reactor, "/pid");
    EXPECT_EQ(answer.status, 200);
    EXPECT_TRUE(handlers.contains(std::stoi(answer.body))) << answer.body;
  }
  // The new template loads the app once; a handler replaced from now on is forked from it.
  ASSERT_TRUE(wait_until([&] { return imports(folder) == 2; }, 30s));
  ASSERT_TRUE(reactor.wait_for_log("is ready: handlers are forked from it", 30s));
  ASSERT_EQ(::kill(*handlers.begin(), SIGKILL), 0);  // Each above 0: checked at the start.
  ASSERT_TRUE(wait_until(
      [&] {
        const std::set<pid_t> now = serving_pids(reactor);
        return now.size() == 2 && !now.contains(*handlers.begin()) && reactor.idle_handlers() == 2;
      },
      30s))
      << reactor.stats();
  EXPECT_EQ(imports(folder), 2u);
  EXPECT_EQ(get(reactor, "/version").status, 200);
}

// Six impatient clients leave while their requests run or wait: each running one is cancelled, and its
// handler replaced by a fork, not by loading the app again (without --preload, each cost a whole import).
TEST(Preload, CancelledRequestsCostAForkNotAnImport) {
  TemporaryFolder folder;
  ReactorProcess reactor(arguments(slow_app(folder, "one"), true, 2));
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  {
    std::vector<Client> impatient;
    for (int i = 0; i < 6; ++i) {
      impatient.emplace_back(reactor.host(), reactor.port());
      ASSERT_TRUE(impatient.back().send("GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    }
    ASSERT_TRUE(wait_until([&] { return reactor.busy_handlers() == 2 && reactor.queue_length() == 4; }, 10s))
        << reactor.stats();
  }  // All six leave.
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.cancelled") == 2; }, 10s)) << reactor.stats();
  ASSERT_TRUE(wait_until([&] { return reactor.stat("counters.abandoned") == 4; }, 10s)) << reactor.stats();
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  EXPECT_EQ(get(reactor, "/version").body, "one\n");
  EXPECT_EQ(imports(folder), 1u);
}

// Handlers recycled by --max-requests and added by SIGTTIN are forked too: the app is loaded once in all.
TEST(Preload, RecycledAndAddedHandlersAreForked) {
  TemporaryFolder folder;
  std::vector<std::string> options = arguments(slow_app(folder, "one"), true, 2);
  options.insert(options.end(), {"--max-requests", "3"});
  ReactorProcess reactor(options);
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  const std::set<pid_t> first = serving_pids(reactor);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(get(reactor, "/version").status, 200);
  ASSERT_EQ(::kill(reactor.pid(), SIGTTIN), 0);
  // Every worn handler gone, its replacement and the one added ready.
  ASSERT_TRUE(wait_until(
      [&] {
        return reactor.idle_handlers() == 3 && reactor.stat("pool.retiring") == 0 &&
               serving_pids(reactor).size() == 3;
      },
      30s))
      << reactor.stats();
  const std::set<pid_t> now = serving_pids(reactor);
  EXPECT_EQ(now.size(), 3u);
  for (const pid_t pid : first) EXPECT_FALSE(now.contains(pid)) << "handler " << pid << " was not recycled";
  EXPECT_EQ(imports(folder), 1u);
}

// The C++ library forks handlers from its template too: what ran before Handler::run ran once.
TEST(Preload, TheCppLibraryForksHandlersToo) {
  ReactorProcess reactor({"--handlers", "2", "--preload"});
  ASSERT_TRUE(all_ready(reactor, 2)) << reactor.stats();
  const std::vector<pid_t> templates = reactor.handler_pids();
  ASSERT_EQ(templates.size(), 1u);
  const pid_t first = std::stoi(ask(reactor.host(), reactor.port(), "pid"));
  EXPECT_EQ(parent_of(first), templates[0]);
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  ASSERT_TRUE(wait_until(
      [&] {
        const std::set<pid_t> now = serving_pids(reactor);
        return now.size() == 2 && !now.contains(first) && reactor.idle_handlers() == 2;
      },
      30s))
      << reactor.stats();
  for (const pid_t handler : serving_pids(reactor)) EXPECT_EQ(parent_of(handler), templates[0]);
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 10"), "55");
}

// A handler command whose library knows no template says hello as a handler: the reactor names the reason,
// and gives up as it does on any handler command that never gets ready.
TEST(Preload, AHandlerThatCannotBeATemplateIsNamed) {
  TemporaryFolder folder;
  // A kHello frame of version 2 with no capability: magic "HNDF", version, type 1, then zeros.
  const std::string handler =
      folder.file("hello.sh",
                  "#!/bin/sh\n"
                  "printf 'HNDF\\002\\000\\001\\000\\000\\000\\000\\000\\000\\000\\000\\000"
                  "\\000\\000\\000\\000\\000\\000\\000\\000' >&3\n"
                  "exec sleep 30\n",
                  true);
  const ProgramResult result =
      run_program(reactor_command({"--listen", "127.0.0.1:0", "--admin", "off", "--handlers", "1",
                                   "--preload", "--handler-cmd", handler}),
                  "", 60s);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("its handler library cannot preload"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("giving up"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace handoff::testing
