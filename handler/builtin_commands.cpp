#include "handler/builtin_commands.hpp"

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <optional>

namespace handoff::handler {
namespace {

// The only argument, as a whole decimal number without sign of at most max; nullopt for anything else.
std::optional<unsigned> only_number(const Request& request, unsigned max) {
  if (request.arguments.size() != 1) return std::nullopt;
  const std::string_view text = request.arguments[0];
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

double thread_cpu_milliseconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

Command without_arguments(std::string name, std::function<std::string()> answer) {
  return [name, answer](const Request& request) {
    if (!request.arguments.empty()) return Reply::error(name + " takes no argument");
    return Reply::text(answer());
  };
}

}  // namespace

uint64_t fibonacci(unsigned n) {
  return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2);
}

void spin_cpu(unsigned milliseconds) {
  const double end = thread_cpu_milliseconds() + milliseconds;
  while (thread_cpu_milliseconds() < end) {
  }
}

void add_builtin_commands(Handler& handler) {
  // The client's address as this handler got it: the peer's, or the one a balancer's PROXY header named.
  const Command client = [](const Request& request) {
    if (!request.arguments.empty()) return Reply::error("client takes no argument");
    return Reply::text(request.client_address.empty() ? std::string("unknown")
                                                      : std::string(request.client_address));
  };
  const Command fib = [](const Request& request) {
    const std::optional<unsigned> n = only_number(request, kMaxFibonacciIndex);
    if (!n) return Reply::error("fib takes one whole number from 0 to 92");
    return Reply::text(std::to_string(fibonacci(*n)));
  };
  const Command spin = [](const Request& request) {
    const std::optional<unsigned> ms = only_number(request, kMaxSpinMilliseconds);
    if (!ms) return Reply::error("spin takes one whole number of milliseconds from 0 to 600000");
    spin_cpu(*ms);
    return Reply::text("spun " + std::to_string(*ms));
  };
  // Each only computes its answer: one whose handler died may run again on another.
  constexpr RouteOptions kRetryable{.retryable = true};
  handler.command("ping", without_arguments("ping", [] { return "pong"; }), kRetryable);
  handler.command("pid", without_arguments("pid", [] { return std::to_string(getpid()); }), kRetryable);
  handler.command("client", client, kRetryable);
  handler.command("fib", fib, kRetryable);
  handler.command("spin", spin, kRetryable);
}

}  // namespace handoff::handler
