#pragma once

// The line protocol's commands: one request line in, one reply line out. Pure functions of the line (apart
// from `pid` and the CPU time `spin` burns), so they are tested without sockets. docs/protocol.md lists them.

#include <cstdint>
#include <string>
#include <span>
#include <string_view>

namespace handoff::handler {

inline constexpr unsigned kMaxFibonacciIndex = 92;  // fib(92) is the largest that fits in 64 bits.
inline constexpr unsigned kMaxSpinMilliseconds = 600000;

struct Reply {
  std::string line;    // The answer without its line end; empty when there is nothing to send.
  bool close = false;  // The client asked to end the connection.
};

// Executes one request line (without its "\n" or "\r\n").
Reply execute_line(std::string_view line);

// Executes a command given as its name and arguments; the same commands serve both protocols.
Reply execute(std::string_view command, std::span<const std::string_view> arguments);

// Whether command names a command that HTTP may reach (all but quit).
bool is_http_command(std::string_view command);

// The n-th Fibonacci number by the naive doubly recursive definition: the CPU-bound workload.
uint64_t fibonacci(unsigned n);

// Burns the given CPU time of the calling thread in a busy loop.
void spin_cpu(unsigned milliseconds);

}  // namespace handoff::handler
