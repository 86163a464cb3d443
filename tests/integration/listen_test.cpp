// Integration tests of where the reactor listens (docs/operations.md, "Listening"): several --listen
// addresses served alike, Unix sockets with their permissions (nc -U and curl --unix-socket, as nginx on the
// same host would connect), the socket file left by a reactor that is gone replaced and a live one not, the
// file removed at exit, and kept through a takeover.

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
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

}  // namespace
}  // namespace handoff::testing
