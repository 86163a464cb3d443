// A long computation that stops when its client leaves: how many primes there are below N, by trial
// division, on purpose slow.
//   primes 100000                                      ->  9592
//   curl http://127.0.0.1:8888/primes/100000           ->  9592
// It looks at request.cancelled() every 1024 numbers (one relaxed load): a client that gives up
// (curl -m 1 http://127.0.0.1:8888/primes/1000000000000) frees its handler a moment later, with no process
// killed and started again. handler/examples/primes.py is the same in Python.

#include <charconv>
#include <cstdint>
#include <handoff/handler.hpp>
#include <string>
#include <string_view>

namespace {

bool is_prime(uint64_t n) {
  if (n < 2) return false;
  for (uint64_t divisor = 2; divisor * divisor <= n; ++divisor) {
    if (n % divisor == 0) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  handoff::Handler handler;
  handler.command("primes", [](const handoff::Request& request) {
    const std::string_view text = request.arguments.empty() ? std::string_view() : request.arguments[0];
    uint64_t below = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), below);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
      return handoff::Reply::error("primes takes one whole number");
    }
    uint64_t count = 0;
    for (uint64_t n = 2; n < below; ++n) {
      // Nobody will read the answer: what is returned goes nowhere, and the handler is free at once.
      if (n % 1024 == 0 && request.cancelled()) return handoff::Reply::error("the client left", 503);
      if (is_prime(n)) ++count;
    }
    return handoff::Reply::text(std::to_string(count));
  });
  return handler.run(argc, argv);
}
