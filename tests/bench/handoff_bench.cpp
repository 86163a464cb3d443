// Microbenchmarks of the hand-off (Google Benchmark): what passing a connection to a handler and hearing back
// from it costs, against the plain alternative of serving on the accepting process.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <span>

#include "handler/builtin_commands.hpp"
#include "ipc/blocking_channel.hpp"
#include "ipc/frame_decoder.hpp"
#include "ipc/socket_io.hpp"
#include "ipc/wire.hpp"

namespace handoff::ipc {
namespace {

struct ChannelPair {
  ChannelPair() {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) std::abort();
    reactor = UniqueFd(ends[0]);
    handler = UniqueFd(ends[1]);
  }
  UniqueFd reactor, handler;
};

// A TCP connection over loopback, as the descriptor that is handed off.
struct TcpPair {
  TcpPair() {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    ::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), length);
    ::listen(listener.get(), 1);
    ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length);
    client = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ::connect(client.get(), reinterpret_cast<sockaddr*>(&address), length);
    served = UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }
  UniqueFd client, served;
};

// One descriptor sent in a kConnection frame and received on the other end, in one thread.
void BM_PassDescriptor(benchmark::State& state) {
  ChannelPair pair;
  TcpPair tcp;
  BlockingChannel reactor(std::move(pair.reactor)), handler(std::move(pair.handler));
  const std::string head = "GET /fib/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  for (auto _ : state) {
    Message message{.type = MessageType::kConnection, .connection_id = 1, .payload = head};
    message.descriptor = UniqueFd(::dup(tcp.served.get()));
    if (reactor.send(message)) std::abort();
    Message received;
    if (handler.receive(received)) std::abort();
    benchmark::DoNotOptimize(received.descriptor.get());
  }
}
BENCHMARK(BM_PassDescriptor);

// A whole dispatch round with a handler in another process: the reactor's non-blocking send of the socket and
// head, the handler's receive, its kDone, and the reactor's decode of it. The handler does no work, so this
// is the latency the hand-off adds to a request.
void BM_DispatchRoundAcrossProcesses(benchmark::State& state) {
  ChannelPair pair;
  TcpPair tcp;
  const pid_t child = ::fork();
  if (child == 0) {
    pair.reactor.reset();
    BlockingChannel channel(std::move(pair.handler));
    for (;;) {
      Message message;
      if (channel.receive(message)) ::_exit(0);
      message.descriptor.reset();
      if (channel.send(
              {.type = MessageType::kDone, .connection_id = message.connection_id, .flags = kDoneKeepOpen})) {
        ::_exit(1);
      }
    }
  }
  pair.handler.reset();
  const std::string head = "GET /fib/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  FrameDecoder decoder;
  char buffer[4096];
  uint64_t id = 0;
  for (auto _ : state) {
    const std::string frame =
        encode({.type = MessageType::kConnection, .connection_id = ++id, .payload = head});
    if (send_with_descriptor(pair.reactor.get(), frame, tcp.served.get()).bytes != frame.size()) std::abort();
    std::error_code error;
    std::optional<Message> done;
    while (!done) {
      std::vector<UniqueFd> descriptors;
      const IoResult got = receive_with_descriptors(pair.reactor.get(), buffer, descriptors);
      if (got.error || got.bytes == 0) std::abort();
      decoder.append(std::span(buffer, got.bytes));
      done = decoder.next(error);
    }
    if (done->connection_id != id) std::abort();
  }
  pair.reactor.reset();
  ::waitpid(child, nullptr, 0);
}
BENCHMARK(BM_DispatchRoundAcrossProcesses)->UseRealTime();

// The baseline: the same bytes answered on the process that holds the socket, with no hand-off: a request
// written by the client, read by the server, answered, and the answer read by the client.
void BM_PlainServeOnLoopback(benchmark::State& state) {
  TcpPair tcp;
  const std::string request = "GET /fib/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n1\n";
  char buffer[4096];
  for (auto _ : state) {
    if (::write(tcp.client.get(), request.data(), request.size()) < 0) std::abort();
    if (::read(tcp.served.get(), buffer, sizeof(buffer)) <= 0) std::abort();
    if (::write(tcp.served.get(), answer.data(), answer.size()) < 0) std::abort();
    if (::read(tcp.client.get(), buffer, sizeof(buffer)) <= 0) std::abort();
  }
}
BENCHMARK(BM_PlainServeOnLoopback);

// The work itself, in process: the service time that tools/bench divides the cores by for the ideal
// throughput.
void BM_Fibonacci(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(handler::fibonacci(static_cast<unsigned>(state.range(0))));
}
BENCHMARK(BM_Fibonacci)->Arg(1)->Arg(20)->Arg(27);

}  // namespace
}  // namespace handoff::ipc

BENCHMARK_MAIN();
