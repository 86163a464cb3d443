#pragma once

// The built-in handler's commands, written on the public API (handoff/handler.hpp): ping, pid, fib N and
// spin MS. docs/protocol.md lists what they answer.

#include <cstdint>

#include "handoff/handler.hpp"

namespace handoff::handler {

inline constexpr unsigned kMaxFibonacciIndex = 92;  // fib(92) is the largest that fits in 64 bits.
inline constexpr unsigned kMaxSpinMilliseconds = 600000;

// Registers ping, pid, client, fib and spin, each marked retryable (it only computes its answer).
void add_builtin_commands(Handler& handler);

// The n-th Fibonacci number by the naive doubly recursive definition: the CPU-bound workload.
uint64_t fibonacci(unsigned n);

// Burns the given CPU time of the calling thread in a busy loop.
void spin_cpu(unsigned milliseconds);

}  // namespace handoff::handler
