// Fuzz target: the admin port's request reader, reactor::AdminConnection
// (reactor/admin/admin_connection.hpp), which reads one request with the strict parser
// (http/request_parser.hpp) on the event loop and judges it (reactor/admin/admin_guard.hpp: a host name over
// loopback, a cross-origin POST, a POST without the token, which half the inputs have configured) with the
// --listen address parser. The input
// is what a client sends over a real loopback TCP connection, so that the connection is a loopback one, in
// pieces the bytes seed, each followed by a turn of the loop; then the client shuts down writing. The route
// is a stand-in that answers 200 (the real routes read the pool; they parse nothing but ?size=N). Checked:
// the connection finishes exactly once; whatever it answers is one HTTP response that closes the connection
// and is not cached; the route is asked only with a method and a path, and what it does not answer is
// refused with a 4xx or 5xx; no descriptor is left open.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <string>

#include "fuzz/fuzz_support.hpp"
#include "http/response.hpp"
#include "reactor/admin/admin_connection.hpp"
#include "reactor/loop_owned.hpp"

namespace handoff::fuzz {
namespace {

constexpr size_t kLongestInput = 64 * 1024;  // Within the socket buffers: the client's writes never block.

struct Listening {
  ipc::UniqueFd socket;
  sockaddr_in address{};
};

const Listening& listening() {
  static const Listening listening = [] {
    Listening l;
    l.socket = ipc::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    l.address.sin_family = AF_INET;
    l.address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(l.address);
    FUZZ_CHECK(::bind(l.socket.get(), reinterpret_cast<const sockaddr*>(&l.address), length) == 0);
    FUZZ_CHECK(::listen(l.socket.get(), 16) == 0);
    FUZZ_CHECK(::getsockname(l.socket.get(), reinterpret_cast<sockaddr*>(&l.address), &length) == 0);
    return l;
  }();
  return listening;
}

struct Connected {
  ipc::UniqueFd client;
  ipc::UniqueFd served;  // Non-blocking and close-on-exec, as the reactor's Listener accepts.
};

Connected connect_over_loopback() {
  const Listening& l = listening();
  Connected c;
  c.client = ipc::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  FUZZ_CHECK(::connect(c.client.get(), reinterpret_cast<const sockaddr*>(&l.address), sizeof(l.address)) ==
             0);
  c.served = ipc::UniqueFd(::accept4(l.socket.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  FUZZ_CHECK(c.served.valid());
  // Closed with a reset, so that a million runs leave no connection in TIME_WAIT.
  const linger reset{.l_onoff = 1, .l_linger = 0};
  FUZZ_CHECK(::setsockopt(c.client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) == 0);
  return c;
}

int status_of(std::string_view response) {
  if (!response.starts_with("HTTP/1.1 ") || response.size() < 12) return 0;
  return std::stoi(std::string(response.substr(9, 3)));
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff;
  using namespace handoff::fuzz;
  if (size > kLongestInput) return 0;
  static uv_loop_t* const loop = [] {
    static uv_loop_t l;
    FUZZ_CHECK(uv_loop_init(&l) == 0);
    return &l;
  }();
  listening();
  const int before = open_descriptors();
  const std::string_view input = as_text(data, size);
  // With --admin-token-file and without, as the bytes choose.
  static const std::string kTokens[] = {"", "fuzz-secret"};
  const std::string& token = kTokens[hash_of(input) & 1];

  int finished = 0;
  bool routed = false;
  const reactor::AdminRoute route = [&](std::string_view method, std::string_view path, std::string_view) {
    FUZZ_CHECK(!method.empty() && !path.empty());
    routed = true;
    return http::Response{.body = "routed\n"};
  };
  const reactor::AdminConnection::FinishedCallback on_finished = [&](uint64_t id) {
    FUZZ_CHECK(id == 1);
    ++finished;
  };
  {
    Connected connected = connect_over_loopback();
    const int client = connected.client.get();
    reactor::LoopOwned<reactor::AdminConnection> connection =
        reactor::make_loop_owned<reactor::AdminConnection>(loop, 1, std::move(connected.served), route, token,
                                                           on_finished);
    for (const std::string_view piece : pieces_of(input, hash_of(input))) {
      FUZZ_CHECK(::send(client, piece.data(), piece.size(), MSG_NOSIGNAL) ==
                 static_cast<ssize_t>(piece.size()));
      uv_run(loop, UV_RUN_NOWAIT);
    }
    FUZZ_CHECK(::shutdown(client, SHUT_WR) == 0);
    uv_run(loop, UV_RUN_DEFAULT);  // Until the connection finishes: then nothing of it is active.
    FUZZ_CHECK(finished == 1);

    FUZZ_CHECK(::fcntl(client, F_SETFL, O_NONBLOCK) == 0);
    std::string response;
    char chunk[16 * 1024];
    ssize_t got;
    while ((got = ::read(client, chunk, sizeof(chunk))) > 0) response.append(chunk, got);
    if (!response.empty()) {
      const int status = status_of(response);
      FUZZ_CHECK(routed ? status == 200 : status >= 400 && status <= 599);
      const size_t head_end = response.find("\r\n\r\n");
      FUZZ_CHECK(head_end != std::string::npos);
      const std::string_view head = std::string_view(response).substr(0, head_end + 2);
      FUZZ_CHECK(head.find("\r\nConnection: close\r\n") != std::string_view::npos);
      FUZZ_CHECK(head.find("\r\nCache-Control: no-store\r\n") != std::string_view::npos);
    } else {
      FUZZ_CHECK(!routed);
    }
    connected.client.reset();
    connection.reset();
    uv_run(loop, UV_RUN_DEFAULT);  // The close callbacks, which delete the connection.
  }
  FUZZ_CHECK(open_descriptors() == before);
  return 0;
}
