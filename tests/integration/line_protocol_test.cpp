// Integration tests of the line protocol through the real reactor, its handlers and real nc, on loopback.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <thread>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

std::string nc(const ReactorProcess& reactor, const std::string& input) {
  const ProgramResult result =
      run_program({"nc", "-N", reactor.host(), std::to_string(reactor.port())}, input, 20s);
  EXPECT_EQ(result.status, 0) << result.err;
  return result.out;
}

TEST(LineProtocol, NetcatGetsTheAnswer) {
  ReactorProcess reactor({"--handlers", "2"});
  EXPECT_EQ(nc(reactor, "fib 30\n"), "832040\n");
  EXPECT_EQ(nc(reactor, "ping\r\n"), "pong\n");
}

TEST(LineProtocol, EveryCommandAndItsErrorsOnOneSession) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  const std::vector<std::pair<std::string, std::string>> exchanges = {
      {"ping", "pong"},
      {"fib 0", "0"},
      {"fib 25", "75025"},
      {"spin 20", "spun 20"},
      {"fib 93", "ERR fib takes one whole number from 0 to 92"},
      {"fib -1", "ERR fib takes one whole number from 0 to 92"},
      {"spin forever", "ERR spin takes one whole number of milliseconds from 0 to 600000"},
      {"hello", "ERR unknown command 'hello' (commands: ping, pid, fib, spin, quit)"},
      {"", "ERR empty request"},
      {"ping", "pong"},  // Still usable after errors.
  };
  for (const auto& [request, answer] : exchanges) {
    ASSERT_TRUE(client.send(request + "\r\n"));
    EXPECT_EQ(client.read_line(), answer) << request;
  }
  ASSERT_TRUE(client.send("pid\n"));
  const std::vector<pid_t> handlers = reactor.handler_pids();
  ASSERT_EQ(handlers.size(), 1u);
  EXPECT_EQ(client.read_line(), std::to_string(handlers[0]));

  ASSERT_TRUE(client.send("quit\n"));
  std::string rest;
  EXPECT_TRUE(client.wait_closed(5s, &rest));
  EXPECT_EQ(rest, "");
}

TEST(LineProtocol, PipelinedLinesAreAllAnsweredInOrder) {
  ReactorProcess reactor({"--handlers", "2"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("fib 20\nping\nfib 10\nbogus\nfib 1\n"));
  EXPECT_EQ(client.read_line(), "6765");
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "55");
  EXPECT_EQ(client.read_line().substr(0, 19), "ERR unknown command");
  EXPECT_EQ(client.read_line(), "1");

  // A request split across packets, with the rest of a pipeline behind it.
  // The pauses make separate packets (the client's pace); they wait for no state.
  ASSERT_TRUE(client.send("fi"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(client.send("b 12\npi"));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(client.send("ng\n"));
  EXPECT_EQ(client.read_line(), "144");
  EXPECT_EQ(client.read_line(), "pong");
}

TEST(LineProtocol, ATelnetLikeSessionKeepsItsConnection) {
  ReactorProcess reactor({"--handlers", "2"});
  Client client(reactor.host(), reactor.port());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client.send("fib " + std::to_string(i) + "\r\n"));
    ASSERT_NE(client.read_line(), "<closed>");
    std::this_thread::sleep_for(5ms);  // A person typing, not a wait for a state.
  }
  ASSERT_TRUE(client.send("ping\r\n"));
  EXPECT_EQ(client.read_line(), "pong");
}

TEST(LineProtocol, ALastLineWithoutLineEndIsAnsweredAtEof) {
  ReactorProcess reactor({"--handlers", "1"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("ping\nfib 20"));
  client.finish_sending();
  EXPECT_EQ(client.read_line(), "pong");
  EXPECT_EQ(client.read_line(), "6765");
  EXPECT_TRUE(client.wait_closed(5s));
}

TEST(LineProtocol, ALineLongerThanTheHeadCapIsFinishedByTheHandler) {
  ReactorProcess reactor({"--handlers", "1", "--max-head-bytes", "16"});
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("fib" + std::string(5000, ' ') + "21\nping\n"));
  EXPECT_EQ(client.read_line(), "10946");
  EXPECT_EQ(client.read_line(), "pong");
  ASSERT_TRUE(client.send("fib 22\n"));
  EXPECT_EQ(client.read_line(), "17711");
}

TEST(LineProtocol, ALineOverTheRequestCapIsRefusedThenClosed) {
  ReactorProcess reactor({"--handlers", "1", "--max-request-bytes", "100k"});
  Client client(reactor.host(), reactor.port());
  std::thread sender([&] { client.send("fib " + std::string(300 * 1024, '1') + "\nping\n"); });
  EXPECT_EQ(client.read_line(), "ERR request too large");
  EXPECT_TRUE(client.wait_closed(10s));
  sender.join();
  // The server is unharmed.
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "ping"), "pong");
}

TEST(LineProtocol, ServesIpv6) {
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 loopback{};
  loopback.sin6_family = AF_INET6;
  loopback.sin6_addr = in6addr_loopback;
  const bool has_ipv6 =
      probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&loopback), sizeof(loopback)) == 0;
  if (probe >= 0) ::close(probe);
  if (!has_ipv6) GTEST_SKIP() << "no IPv6 loopback on this machine";

  ReactorProcess reactor({"--listen", "[::1]:0", "--handlers", "1"});
  EXPECT_EQ(reactor.host(), "::1");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 30"), "832040");
  EXPECT_EQ(nc(reactor, "ping\n"), "pong\n");
}

}  // namespace
}  // namespace handoff::testing
