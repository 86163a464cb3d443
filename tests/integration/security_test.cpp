// Integration tests of handoff hardened for the open internet (docs/operations.md, "Security"): least
// privilege when started as root, a bounded number of connections, and the admin port's token. (Handler
// memory is bounded too: pool_test.cpp, Recycling.)

#include <unistd.h>

#include <gtest/gtest.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

// The "Uid:" or "Groups:" line of /proc/PID/status, without its name and the blanks around its value.
std::string status_line(pid_t pid, const std::string& name) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(name + ":", 0) != 0) continue;
    const std::string value = line.substr(name.size() + 1);
    const size_t first = value.find_first_not_of(" \t");
    return first == std::string::npos ? "" : value.substr(first, value.find_last_not_of(" \t") - first + 1);
  }
  return "<none>";
}

// Clock ticks of CPU the process has used, user and system (/proc/PID/stat fields 14 and 15).
long cpu_ticks(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// --- Least privilege ---

TEST(LeastPrivilege, StartedAsRootTheReactorAndItsHandlersRunAsTheUserGiven) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root, to drop from it";
  ReactorProcess reactor({"--handlers", "2", "--user", "nobody"});
  ASSERT_TRUE(reactor.wait_for_handlers(2, 10s)) << reactor.stderr_text();
  const std::string nobody = "65534\t65534\t65534\t65534";
  EXPECT_EQ(status_line(reactor.pid(), "Uid"), nobody);
  EXPECT_EQ(status_line(reactor.pid(), "Gid"), nobody);
  EXPECT_EQ(status_line(reactor.pid(), "Groups"), "") << "supplementary groups are cleared";
  for (const pid_t handler : reactor.handler_pids()) {
    EXPECT_EQ(status_line(handler, "Uid"), nobody) << "handler " << handler;
    EXPECT_EQ(status_line(handler, "Groups"), "") << "handler " << handler;
  }
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 20"), "6765");
  EXPECT_NE(reactor.stderr_text().find("running as user nobody (uid 65534)"), std::string::npos)
      << reactor.stderr_text();
}

TEST(LeastPrivilege, StartedAsRootWithoutAUserTheReactorRefusesToRunHandlersAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const ProgramResult result =
      run_program({reactor_path(), "--listen", "127.0.0.1:0", "--admin", "off", "--handlers", "1"}, "", 10s);
  EXPECT_EQ(result.status, 2);
  EXPECT_NE(result.err.find("will not run handlers (users' code) as root: give --user NAME"),
            std::string::npos)
      << result.err;
}

TEST(LeastPrivilege, AnUnknownUserStopsTheReactorAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const ProgramResult result = run_program(
      {reactor_path(), "--listen", "127.0.0.1:0", "--admin", "off", "--user", "no-such-user-here"}, "", 10s);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("--user 'no-such-user-here': no such user"), std::string::npos) << result.err;
}

TEST(LeastPrivilege, UserRootStillNeedsAllowRootHandlers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const ProgramResult result =
      run_program({reactor_path(), "--listen", "127.0.0.1:0", "--admin", "off", "--user", "root"}, "", 10s);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("--user 'root' is root"), std::string::npos) << result.err;
}

// --- Bounded connections ---

// With a low descriptor limit, a reactor that accepted on would run into EMFILE and pause and retry its
// accepts ten times a second. Past --max-connections it stops accepting instead: the clients beyond wait in
// the listen backlog, the reactor does nothing for them, and they are served as soon as others leave.
TEST(Limits, PastMaxConnectionsClientsWaitInTheBacklogWhileTheReactorIdles) {
  ReactorProcess reactor({"--handlers", "1", "--max-connections", "10"}, 64);
  std::vector<Client> first;
  for (int i = 0; i < 10; ++i) first.emplace_back(reactor.host(), reactor.port());
  ASSERT_TRUE(wait_until([&] { return reactor.stat("pool.open_connections") == 10; }, 10s))
      << reactor.stats();
  std::vector<Client> waiting;
  for (int i = 0; i < 10; ++i) {
    waiting.emplace_back(reactor.host(), reactor.port());  // Connected by the kernel, not yet accepted.
    ASSERT_TRUE(waiting.back().send("ping\n"));
  }
  const long before = cpu_ticks(reactor.pid());
  std::this_thread::sleep_for(1s);  // How much CPU the reactor uses over a second is what is under test.
  EXPECT_LT(cpu_ticks(reactor.pid()) - before, 10) << "the reactor spun while clients waited";
  EXPECT_EQ(reactor.stat("pool.open_connections"), 10);
  first.clear();  // Room again: the waiting clients are accepted and answered.
  for (Client& client : waiting) EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(reactor.stderr_text().find("pausing accepts"), std::string::npos) << reactor.stderr_text();
  EXPECT_NE(reactor.stderr_text().find("new ones wait in the listen backlog"), std::string::npos);
}

// --- The admin port's token ---

HttpResponse post_pool(const ReactorProcess& reactor, const std::string& authorization) {
  Client client(reactor.host(), reactor.admin_port());
  client.send("POST /pool?size=2 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + authorization + "\r\n");
  return read_response(client);
}

TEST(AdminToken, WithATokenFileEveryChangeMustCarryTheToken) {
  TemporaryFolder folder;
  const std::string token = "s3cret-token-of-the-operator";
  ReactorProcess reactor({"--handlers", "1", "--admin-token-file", folder.file("token", token + "\n")});
  EXPECT_EQ(post_pool(reactor, "").status, 401);
  EXPECT_EQ(post_pool(reactor, "Authorization: Bearer not-" + token + "\r\n").status, 401);
  EXPECT_EQ(post_pool(reactor, "Authorization: Basic " + token + "\r\n").status, 401);
  EXPECT_EQ(reactor.stat("pool.target"), 1) << "a refused request changed nothing";
  EXPECT_EQ(post_pool(reactor, "Authorization: Bearer " + token + "\r\n").status, 200);
  EXPECT_EQ(reactor.stat("pool.target"), 2);
  EXPECT_EQ(reactor.admin("GET", "/healthz").status, 200);  // Looking needs no token.
}

}  // namespace
}  // namespace handoff::testing
