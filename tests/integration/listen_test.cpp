// Integration tests of where the reactor listens and whom it serves (docs/operations.md, "Listening" and
// "Behind a balancer"): several --listen addresses served alike, Unix sockets with their permissions (nc -U
// and curl --unix-socket, as nginx on the same host would connect), the socket file left by a reactor that is
// gone replaced and a live one not, the file removed at exit, and kept through a takeover; the PROXY protocol
// header of a balancer in --proxy-protocol-from, v1 and v2, naming the client a handler sees (the notes
// example's /whoami says it), and refused from anyone else. deploy/haproxy_test.sh checks it behind HAProxy.

#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/client.hpp"
#include "tests/support/reactor_process.hpp"
#include "tests/support/temporary_folder.hpp"
#include "tests/support/wait.hpp"

namespace handoff::testing {
namespace {

// One line asked over the Unix socket at path with nc, as a user at a terminal would.
std::string ask_unix(const std::string& path, const std::string& line) {
  const ProgramResult result = run_program({"nc", "-N", "-U", path}, line + "\n", 20s);
  EXPECT_EQ(result.status, 0) << result.err;
  return result.out;
}

// A Unix socket bound at path and closed again, without listening: the file a killed server leaves.
void leave_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  ::close(fd);
}

// The PROXY protocol v2 header HAProxy's send-proxy-v2 sends for a TCP client over IPv6 (proxy-protocol.txt,
// section 2.2): the signature, version 2 and PROXY, TCP over IPv6, 36 bytes of addresses and ports.
std::string proxy_v2_tcp6(const std::string& source, uint16_t source_port) {
  std::string header("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24", 16);
  unsigned char address[16];
  EXPECT_EQ(inet_pton(AF_INET6, source.c_str(), address), 1);
  header.append(reinterpret_cast<const char*>(address), 16);
  EXPECT_EQ(inet_pton(AF_INET6, "2001:db8::99", address), 1);
  header.append(reinterpret_cast<const char*>(address), 16);
  for (const uint16_t port : {source_port, uint16_t{8888}}) {
    header += static_cast<char>(port >> 8);
    header += static_cast<char>(port & 0xff);
  }
  return header;
}

// A v2 header with the LOCAL command: a balancer's own connection (its health check), naming no client.
const std::string kProxyV2Local("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);

// The arguments of a reactor with one handler, the notes example (whose /whoami says the client it sees),
// and options.
std::vector<std::string> notes_behind(std::vector<std::string> options) {
  options.insert(options.begin(), {"--handlers", "1", "--handler-cmd", std::getenv("HANDOFF_NOTES")});
  return options;
}

const std::string kWhoami = "GET /whoami HTTP/1.1\r\nHost: a\r\n\r\n";

// The client address the notes example's /whoami reports.
std::string client_seen(Client& client) {
  const HttpResponse response = read_response(client);
  const std::string key = "\"client\": \"";
  const size_t at = response.body.find(key);
  if (response.status != 200 || at == std::string::npos) return "status " + std::to_string(response.status);
  return response.body.substr(at + key.size(), response.body.find('"', at + key.size()) - at - key.size());
}

unsigned permissions(const std::string& path) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0 || !S_ISSOCK(status.st_mode)) return ~0u;
  return status.st_mode & 0777;
}

TEST(Listen, EveryAddressGivenIsServedAUnixSocketWithItsModeAndItsFileIsRemovedAtExit) {
  TemporaryFolder folder;
  const std::string socket_path = folder.path("handoff.sock");
  ReactorProcess reactor({"--handlers", "1", "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--listen",
                          "unix:" + socket_path + ",mode=0660", "--access-log", "on"});
  ASSERT_EQ(reactor.listening().size(), 3u);
  EXPECT_NE(reactor.listening()[0], reactor.listening()[1]);
  EXPECT_EQ(reactor.listening()[2], "unix:" + socket_path);
  EXPECT_EQ(permissions(socket_path), 0660u);

  for (const std::string& address : {reactor.listening()[0], reactor.listening()[1]}) {
    const uint16_t port = static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
    EXPECT_EQ(ask("127.0.0.1", port, "fib 10"), "55") << address;
  }
  EXPECT_EQ(ask_unix(socket_path, "fib 11"), "89\n");
  const ProgramResult curl = run_program({"curl", "--silent", "--show-error", "--max-time", "20",
                                          "--unix-socket", socket_path, "http://x/fib/12"},
                                         "", 30s);
  EXPECT_EQ(curl.status, 0) << curl.err;
  EXPECT_EQ(curl.out, "144\n");
  // The access log names the socket a Unix client came in on: such a client has no address of its own.
  EXPECT_TRUE(reactor.wait_for_log("access unix:" + socket_path + " line \"fib 11\" 200", 10s))
      << reactor.stderr_text();

  EXPECT_EQ(reactor.signal_and_wait(SIGTERM, 30s), 0);
  EXPECT_FALSE(std::filesystem::exists(socket_path));
}

// A line client of the Unix socket: connects to path, with answers read within 20 s.
int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  const timeval patience{.tv_sec = 20, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
  return fd;
}

std::string read_unix_line(int fd) {
  std::string line;
  char c;
  while (::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
  return line;
}

// A Unix socket counts no bytes sent: a dead handler's connection is judged by its answer record alone. A
// handler killed in the middle of a request (nothing of its answer noted) leaves its client the crash error,
// as on TCP, not a bare EOF.
TEST(Listen, AHandlerThatDiesServingAUnixSocketLeavesItsClientTheError) {
  TemporaryFolder folder;
  const std::string socket_path = folder.path("handoff.sock");
  ReactorProcess reactor({"--handlers", "1", "--listen", "127.0.0.1:0", "--listen", "unix:" + socket_path});
  reactor.expect_crash_reports();
  const int fd = connect_unix(socket_path);
  // Pipelined: the pid is answered first, so the spin is not run again on another handler.
  const std::string request = "pid\nspin 60000\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
  const pid_t serving = std::stoi(read_unix_line(fd));
  ASSERT_TRUE(wait_until([&] { return reactor.requests_answered() == 1; }, 10s));
  ASSERT_GT(serving, 0);
  ASSERT_EQ(::kill(serving, SIGKILL), 0);
  EXPECT_EQ(read_unix_line(fd), "ERR handler crashed");
  ::close(fd);
  EXPECT_EQ(reactor.stat("counters.errors.crashed"), 1);
  EXPECT_EQ(ask_unix(socket_path, "ping"), "pong\n");
}

// A socket file nobody listens on (its server was killed) is taken over at start; one a live server listens
// on is not, and neither is a file that is not a socket.
TEST(Listen, AStaleSocketFileIsReplacedButALiveOneOrAPlainFileStopsTheStart) {
  TemporaryFolder folder;
  const std::string socket_path = folder.path("handoff.sock");
  leave_stale_socket(socket_path);
  ReactorProcess reactor({"--handlers", "1", "--listen", "127.0.0.1:0", "--listen", "unix:" + socket_path});
  EXPECT_EQ(ask_unix(socket_path, "fib 10"), "55\n");
  EXPECT_EQ(permissions(socket_path), 0666u);  // The default, as nginx gives its sockets.

  const ProgramResult second = run_program(
      reactor_command({"--admin", "off", "--handlers", "1", "--listen", "unix:" + socket_path}), "", 30s);
  EXPECT_EQ(second.status, 1);
  EXPECT_NE(second.err.find("--listen unix:" + socket_path + ": another process listens on it"),
            std::string::npos)
      << second.err;
  EXPECT_EQ(ask_unix(socket_path, "fib 11"), "89\n");  // The first one's socket is untouched.

  const std::string plain_path = folder.path("plain");
  std::ofstream(plain_path) << "not a socket\n";
  const ProgramResult third = run_program(
      reactor_command({"--admin", "off", "--handlers", "1", "--listen", "unix:" + plain_path}), "", 30s);
  EXPECT_EQ(third.status, 1);
  EXPECT_NE(third.err.find("--listen unix:" + plain_path + ": the path exists and is not a socket"),
            std::string::npos)
      << third.err;
  EXPECT_TRUE(std::filesystem::is_regular_file(plain_path));
}

// A takeover passes every listener on: the Unix socket serves through it, its file is not removed by the old
// reactor's exit, and the new one removes it at its own.
TEST(Listen, ATakeoverKeepsEveryListenerAndTheSocketFile) {
  TemporaryFolder folder;
  const std::string socket_path = folder.path("handoff.sock");
  ReactorProcess reactor({"--handlers", "1", "--listen", "127.0.0.1:0", "--listen", "unix:" + socket_path});
  Client kept(reactor.host(), reactor.port());
  ASSERT_TRUE(kept.send("ping\n"));
  ASSERT_EQ(kept.read_line(), "pong");
  const pid_t old = reactor.pid();
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  ASSERT_NE(reactor.pid(), old);
  EXPECT_TRUE(std::filesystem::exists(socket_path));
  EXPECT_EQ(ask_unix(socket_path, "fib 10"), "55\n");
  EXPECT_EQ(ask(reactor.host(), reactor.port(), "fib 11"), "89");
  ASSERT_TRUE(kept.send("ping\n"));  // The connection went over too.
  EXPECT_EQ(kept.read_line(), "pong");
  EXPECT_EQ(reactor.signal_and_wait(SIGTERM, 30s), 0);
  EXPECT_FALSE(std::filesystem::exists(socket_path));
}

// A balancer named in --proxy-protocol-from: the client its PROXY header names, v1 or v2, whole or in
// pieces, is the one the handler sees for every request of the connection, and the one the access log
// names; its own health check (LOCAL) is served as its own; a connection of it without a header is refused.
TEST(Listen, TheClientAPeerInProxyProtocolFromNamesIsTheOneHandlersSee) {
  ReactorProcess reactor(
      notes_behind({"--proxy-protocol-from", "10.0.0.0/8, 127.0.0.1", "--access-log", "on"}));
  {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send("PROXY TCP4 203.0.113.7 127.0.0.1 40000 8888\r\n" + kWhoami));
    EXPECT_EQ(client_seen(client), "203.0.113.7");
    ASSERT_TRUE(client.send(kWhoami));  // The next request of the connection too.
    EXPECT_EQ(client_seen(client), "203.0.113.7");
  }
  {
    Client client(reactor.host(), reactor.port());
    const std::string header = proxy_v2_tcp6("2001:db8::7", 40001);
    for (const char byte : header) ASSERT_TRUE(client.send(std::string(1, byte)));  // In pieces.
    ASSERT_TRUE(client.send(kWhoami));
    EXPECT_EQ(client_seen(client), "2001:db8::7");
  }
  {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send(kProxyV2Local + kWhoami));
    EXPECT_EQ(client_seen(client), "127.0.0.1");
  }
  {
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send(kWhoami));
    std::string rest;
    EXPECT_TRUE(client.wait_closed(20s, &rest));
    EXPECT_EQ(rest, "");  // No answer: the peer speaks no protocol of ours before its header.
  }
  EXPECT_TRUE(reactor.wait_for_log("access 203.0.113.7:40000 http \"GET /whoami HTTP/1.1\" 200", 10s))
      << reactor.stderr_text();
  EXPECT_TRUE(reactor.wait_for_log("access [2001:db8::7]:40001 http", 10s)) << reactor.stderr_text();
  EXPECT_TRUE(
      reactor.wait_for_log(" 400 queue_ms=0.000 service_ms=0.000 bytes=0 pid=0 reason=\"PROXY protocol "
                           "header: not a PROXY protocol "
                           "header",
                           10s))
      << reactor.stderr_text();
}

// A peer not in --proxy-protocol-from cannot name a client: a connection of it that begins with a PROXY
// header is refused, whether the option is given or not; its plain requests are served as ever.
TEST(Listen, APeerNotInProxyProtocolFromCannotSendAProxyHeader) {
  for (const std::vector<std::string>& options :
       {std::vector<std::string>{}, std::vector<std::string>{"--proxy-protocol-from", "10.0.0.0/8"}}) {
    std::vector<std::string> arguments{"--access-log", "on"};
    arguments.insert(arguments.end(), options.begin(), options.end());
    ReactorProcess reactor(notes_behind(arguments));
    for (const std::string& header :
         {std::string("PROXY TCP4 203.0.113.7 127.0.0.1 40000 8888\r\n"), proxy_v2_tcp6("2001:db8::7", 1)}) {
      Client client(reactor.host(), reactor.port());
      ASSERT_TRUE(client.send(header + kWhoami));
      std::string rest;
      EXPECT_TRUE(client.wait_closed(20s, &rest));
      EXPECT_EQ(rest, "");
    }
    Client client(reactor.host(), reactor.port());
    ASSERT_TRUE(client.send(kWhoami));
    EXPECT_EQ(client_seen(client), "127.0.0.1");
    // An empty line begins as the v2 signature does: it is answered as ever, not held as a header.
    Client line(reactor.host(), reactor.port());
    ASSERT_TRUE(line.send("\r\n"));
    EXPECT_EQ(line.read_line(), "ERR empty request");
    EXPECT_TRUE(reactor.wait_for_log(
        "reason=\"a PROXY protocol header from a peer not in --proxy-protocol-from\"", 10s))
        << reactor.stderr_text();
    // The two headers, and the empty line's ERR (counted once its handler's report is read).
    EXPECT_TRUE(wait_until([&] { return reactor.stat("counters.bad_request") == 3; }, 10s))
        << reactor.stats();
  }
}

// A takeover passes a balancer's connection on with the client its header named: the new reactor's handler
// sees the same client.
TEST(Listen, ATakeoverKeepsTheClientAProxyHeaderNamed) {
  ReactorProcess reactor(notes_behind({"--proxy-protocol-from", "127.0.0.1", "--read-timeout", "1s"}));
  Client client(reactor.host(), reactor.port());
  ASSERT_TRUE(client.send("PROXY TCP4 198.51.100.9 127.0.0.1 40000 8888\r\n" + kWhoami));
  EXPECT_EQ(client_seen(client), "198.51.100.9");
  const pid_t old = reactor.pid();
  ASSERT_EQ(reactor.take_over(60s), 0) << reactor.stderr_text();
  ASSERT_NE(reactor.pid(), old);
  // Idle in the new reactor as it was in the old one: past --read-timeout it is not refused as a request
  // begun and not finished (the header the old reactor passed on is no request).
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(client.send(kWhoami));
  EXPECT_EQ(client_seen(client), "198.51.100.9");
  EXPECT_EQ(reactor.stat("counters.taken_over"), 1);
}

}  // namespace
}  // namespace handoff::testing
