// Integration tests of the reactor's and the handler's command lines, through the real binaries.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cstdlib>

#include "tests/support/reactor_process.hpp"

namespace handoff::testing {
namespace {

using namespace std::chrono_literals;

ProgramResult reactor(std::vector<std::string> arguments) {
  return run_program(reactor_command(std::move(arguments)), "", 20s);
}

TEST(Cli, HelpExplainsEveryOption) {
  const ProgramResult help = reactor({"--help"});
  EXPECT_EQ(help.status, 0);
  for (const char* text : {"--listen", "--handlers", "--handler-cmd", "--max-head-bytes",
                           "--max-request-bytes", "--version", "listening on"}) {
    EXPECT_NE(help.out.find(text), std::string::npos) << text;
  }
  const ProgramResult version = reactor({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out.rfind("handoff 0.", 0), 0u) << version.out;
}

TEST(Cli, ABadOptionIsOneClearLineAndStatus2) {
  for (const std::vector<std::string>& arguments :
       {std::vector<std::string>{"--listen", "8888"}, {"--handlers", "-3"}, {"--no-such-option"}}) {
    const ProgramResult result = reactor(arguments);
    EXPECT_EQ(result.status, 2) << arguments[0];
    EXPECT_EQ(result.err.rfind("handoff: ", 0), 0u) << result.err;
    EXPECT_EQ(result.out, "");
  }
}

TEST(Cli, AHandlerThatCannotStartIsAnErrorAtStartUp) {
  const ProgramResult result =
      reactor({"--listen", "127.0.0.1:0", "--admin", "off", "--handler-cmd", "/nonexistent/handler"});
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("cannot start handler '/nonexistent/handler'"), std::string::npos) << result.err;
  EXPECT_EQ(result.out, "");
}

TEST(Cli, AnAddressInUseIsAnErrorAtStartUp) {
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t length = sizeof(address);
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);

  const ProgramResult result =
      reactor({"--listen", "127.0.0.1:" + std::to_string(ntohs(address.sin_port)), "--admin", "off"});
  ::close(taken);
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("Address already in use"), std::string::npos) << result.err;
}

// Two reactors on one host, one port: with --reuse-port both listen on it and the kernel spreads new
// connections between them; a third without it finds the address in use.
TEST(Cli, ReusePortLetsTwoReactorsShareAPort) {
  ReactorProcess first({"--handlers", "1", "--reuse-port", "--admin", "off"});
  const std::string shared = "127.0.0.1:" + std::to_string(first.port());
  ReactorProcess second({"--handlers", "1", "--reuse-port", "--admin", "off", "--listen", shared});
  EXPECT_EQ(second.port(), first.port());
  // Each reactor's handlers answer to their own reactor: both pids among the answers means both got
  // connections.
  const std::vector<pid_t> first_handlers = first.handler_pids(), second_handlers = second.handler_pids();
  bool first_served = false, second_served = false;
  for (int i = 0; i < 200 && !(first_served && second_served); ++i) {
    const pid_t pid = std::atoi(ask(first.host(), first.port(), "pid").c_str());
    first_served = first_served || std::count(first_handlers.begin(), first_handlers.end(), pid) > 0;
    second_served = second_served || std::count(second_handlers.begin(), second_handlers.end(), pid) > 0;
  }
  EXPECT_TRUE(first_served);
  EXPECT_TRUE(second_served);
  const ProgramResult third = reactor({"--listen", shared, "--admin", "off"});
  EXPECT_EQ(third.status, 1);
  EXPECT_NE(third.err.find("Address already in use"), std::string::npos) << third.err;
}

TEST(Cli, TheHandlerRunByHandSaysItIsStartedByTheReactor) {
  const char* handler = std::getenv("HANDOFF_HANDLER");
  ASSERT_NE(handler, nullptr);
  const ProgramResult alone = run_program({handler}, "", 10s);
  EXPECT_EQ(alone.status, 2);
  EXPECT_NE(alone.err.find("HANDOFF_IPC_FD is not set"), std::string::npos) << alone.err;
  const ProgramResult help = run_program({handler, "--help"}, "", 10s);
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("HANDOFF_IPC_FD"), std::string::npos);
}

}  // namespace
}  // namespace handoff::testing
