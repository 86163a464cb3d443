#include "reactor/protocol.hpp"

#include <cstdint>

#include "http/response.hpp"

namespace handoff::reactor {
namespace {

constexpr size_t kLongestMethod = 20;
// A first line still without its end after this many bytes is taken for the line protocol's.
constexpr size_t kLongestUndecided = 8 * 1024;

struct RefusalText {
  const char* line;  // After "ERR ".
  int status;
  bool retry_later;  // Worth a Retry-After header.
};

RefusalText text_of(Refusal refusal) {
  switch (refusal) {
    case Refusal::kBusy: return {"busy", 503, true};
    case Refusal::kReadTimeout: return {"read timeout", 408, false};
    case Refusal::kHandlerCrashed: return {"handler crashed", 502, false};
    case Refusal::kTimeout: return {"timeout", 504, false};
    case Refusal::kShuttingDown: return {"shutting down", 503, true};
  }
  return {"error", 500, false};
}

}  // namespace

Protocol detect_protocol(std::string_view bytes) {
  // RFC 9112 section 2.2: empty lines before a request line are ignored. Blank ones (spaces) are skipped here
  // too, and the HTTP parser refuses them.
  size_t start = 0;
  for (size_t end; (end = bytes.find('\n', start)) != std::string_view::npos &&
                   bytes.substr(start, end - start).find_first_not_of(" \t\r") == std::string_view::npos;) {
    start = end + 1;
  }
  const std::string_view line = bytes.substr(start);
  // Only blank lines so far, and nothing behind them: a line-protocol client pressing Enter ("ERR empty
  // request"); an HTTP client sends its empty lines and its request line together.
  if (start > 0 && line.empty()) return Protocol::kLine;
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) {
    return bytes.size() > kLongestUndecided ? Protocol::kLine : Protocol::kUnknown;
  }
  // The common case decides on the first bytes: an upper-case method and a space.
  size_t upper = 0;
  while (upper < line.size() && line[upper] >= 'A' && line[upper] <= 'Z') ++upper;
  if (upper > 0 && upper <= kLongestMethod && upper < line.size() && line[upper] == ' ') {
    return Protocol::kHttp;
  }
  const size_t end = line.find('\n');
  if (end == std::string_view::npos) {
    // Upper-case letters longer than any method or command: a request line gone wrong, refused in HTTP.
    if (upper == line.size() && upper > kLongestMethod) return Protocol::kHttp;
    return line.size() > kLongestUndecided ? Protocol::kLine : Protocol::kUnknown;
  }
  // Otherwise the whole first line tells: one that ends in " HTTP/" DIGIT "." DIGIT is a request line,
  // whatever its method token ("get", "-BLARGH", a tab for a space), and the HTTP parser judges it; so is a
  // method alone ("GET", a request line cut short: commands are lower case).
  std::string_view first = line.substr(0, end);
  if (first.ends_with('\r')) first.remove_suffix(1);
  const size_t version = first.size() >= 9 ? first.size() - 9 : std::string_view::npos;
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (version != std::string_view::npos && first.substr(version, 6) == " HTTP/" &&
      digit(first[version + 6]) && first[version + 7] == '.' && digit(first[version + 8])) {
    return Protocol::kHttp;
  }
  for (const std::string_view method :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
    if (first == method) return Protocol::kHttp;
  }
  return Protocol::kLine;
}

std::string refusal_message(Protocol protocol, Refusal refusal) {
  const RefusalText text = text_of(refusal);
  if (protocol != Protocol::kHttp) return std::string("ERR ") + text.line + "\n";
  return http::serialize({.status = text.status,
                          .body = std::string(text.line) + "\n",
                          .extra_headers = text.retry_later ? "Retry-After: 1\r\n" : "",
                          .connection = http::ConnectionHeader::kClose});
}

int refusal_status(Refusal refusal) {
  return text_of(refusal).status;
}

const char* refusal_reason(Refusal refusal) {
  return text_of(refusal).line;
}

}  // namespace handoff::reactor
