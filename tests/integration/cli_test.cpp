// Integration tests of the reactor's and the handler's command lines, through the real binaries.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <thread>

#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"

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

// The man page is help2man's rendering of --help in the build tree, installed on other machines: the build
// tree's paths and this machine's core count would be wrong there.
TEST(Cli, HelpStatesDefaultsTrueWhereverTheBinaryIsInstalled) {
  const ProgramResult help = reactor({"--help"});
  ASSERT_EQ(help.status, 0);
  // The help's lines are wrapped: its words are compared with one space between them.
  std::string text;
  for (const char c : help.out) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      text += c;
    } else if (!text.empty() && text.back() != ' ') {
      text += ' ';
    }
  }
  const std::string reactor_file = reactor_path();
  const std::string build_tree = reactor_file.substr(0, reactor_file.rfind("/reactor/"));
  EXPECT_EQ(text.find(build_tree), std::string::npos) << help.out;
  EXPECT_NE(text.find("Default: handoff-handler beside the reactor"), std::string::npos) << help.out;
  const size_t at = text.find("--handlers N ");
  ASSERT_NE(at, std::string::npos) << help.out;
  const std::string handlers = text.substr(at, text.find(" --max-handlers N ", at) - at);
  EXPECT_NE(handlers.find("(default: one per core"), std::string::npos) << handlers;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  EXPECT_EQ(handlers.find("(default: " + std::to_string(cores) + ")"), std::string::npos) << handlers;
}

// One --listen silently dropped for the other would leave the operator believing the reactor listens on both.
TEST(Cli, AnOptionGivenTwiceIsRefused) {
  for (const std::vector<std::string>& arguments :
       {std::vector<std::string>{"--admin", "off", "--admin", "127.0.0.1:0"},
        {"--handlers", "1", "--handlers", "2"}}) {
    const ProgramResult result = reactor(arguments);
    EXPECT_EQ(result.status, 2) << arguments[0];
    EXPECT_EQ(result.err.rfind("handoff: " + arguments[0] + " is given twice", 0), 0u) << result.err;
  }
}

// A token is compared with the header's value, which loses its blanks around it: the file's token must too,
// or no request could ever carry it.
TEST(Cli, ATokenFileWithBlanksAroundTheTokenIsTrimmed) {
  TemporaryFolder folder;
  const std::string token = "s3cret-token-of-the-operator";
  ReactorProcess reactor(
      {"--handlers", "1", "--admin-token-file", folder.file("token", " \t" + token + " \r\nsecond line\n")});
  Client client(reactor.host(), reactor.admin_port());
  client.send("POST /pool?size=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n\r\n");
  EXPECT_EQ(read_response(client).status, 200);
}

// A token no header can carry (a NUL, a control character) is refused at start-up, with the reason.
TEST(Cli, ATokenWithAControlCharacterIsRefusedAtStartUp) {
  TemporaryFolder folder;
  for (const std::string& token :
       {std::string("s3cret-token\0of-the-operator", 28), std::string("s3cret-token\x01of-the-operator")}) {
    const ProgramResult result = reactor({"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--handlers",
                                          "1", "--admin-token-file", folder.file("token", token + "\n")});
    EXPECT_EQ(result.status, 2) << result.err;
    EXPECT_NE(result.err.find("control character"), std::string::npos) << result.err;
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
