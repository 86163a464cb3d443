#include "handler/commands.hpp"

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <optional>
#include <vector>

namespace handoff::handler {
namespace {

constexpr size_t kMaxEchoedCommandBytes = 40;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_blank(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !is_blank(line[i])) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

// A whole decimal number without sign, at most max; nullopt for anything else.
std::optional<unsigned> parse_bounded(std::string_view text, unsigned max) {
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

// The command name as the client sent it, cut short and with control bytes replaced, fit to echo back.
std::string printable(std::string_view word) {
  std::string out;
  for (char c : word.substr(0, kMaxEchoedCommandBytes)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (word.size() > kMaxEchoedCommandBytes) out += "...";
  return out;
}

double thread_cpu_milliseconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

Reply error(std::string what) { return {.line = "ERR " + std::move(what)}; }

}  // namespace

uint64_t fibonacci(unsigned n) { return n < 2 ? n : fibonacci(n - 1) + fibonacci(n - 2); }

void spin_cpu(unsigned milliseconds) {
  const double end = thread_cpu_milliseconds() + milliseconds;
  while (thread_cpu_milliseconds() < end) {
  }
}

Reply execute_line(std::string_view line) {
  const std::vector<std::string_view> words = split_words(line);
  if (words.empty()) return error("empty request");
  return execute(words[0], std::span(words).subspan(1));
}

bool is_http_command(std::string_view command) {
  return command == "ping" || command == "pid" || command == "fib" || command == "spin";
}

Reply execute(std::string_view command, std::span<const std::string_view> arguments) {
  if (command == "ping" || command == "pid" || command == "quit") {
    if (!arguments.empty()) return error(std::string(command) + " takes no argument");
    if (command == "ping") return {.line = "pong"};
    if (command == "pid") return {.line = std::to_string(getpid())};
    return {.close = true};
  }
  if (command == "fib") {
    const auto n = arguments.size() == 1 ? parse_bounded(arguments[0], kMaxFibonacciIndex) : std::nullopt;
    if (!n) return error("fib takes one whole number from 0 to 92");
    return {.line = std::to_string(fibonacci(*n))};
  }
  if (command == "spin") {
    const auto ms = arguments.size() == 1 ? parse_bounded(arguments[0], kMaxSpinMilliseconds) : std::nullopt;
    if (!ms) return error("spin takes one whole number of milliseconds from 0 to 600000");
    spin_cpu(*ms);
    return {.line = "spun " + std::to_string(*ms)};
  }
  return error("unknown command '" + printable(command) + "' (commands: ping, fib N, spin MS, pid, quit)");
}

}  // namespace handoff::handler
