#include "reactor/request_head.hpp"

#include <cstdint>

#include "http/response.hpp"

namespace handoff::reactor {
namespace {

constexpr size_t kLongestMethod = 20;

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

Protocol detect_protocol(std::string_view head) {
  for (size_t i = 0; i < head.size() && i <= kLongestMethod; ++i) {
    const char c = head[i];
    if (c == ' ') return i > 0 ? Protocol::kHttp : Protocol::kLine;
    if (c < 'A' || c > 'Z') return Protocol::kLine;
  }
  return head.size() > kLongestMethod ? Protocol::kLine : Protocol::kUnknown;
}

std::string refusal_message(Protocol protocol, Refusal refusal) {
  const RefusalText text = text_of(refusal);
  if (protocol != Protocol::kHttp) return std::string("ERR ") + text.line + "\n";
  return http::serialize({.status = text.status,
                          .body = std::string(text.line) + "\n",
                          .extra_headers = text.retry_later ? "Retry-After: 1\r\n" : "",
                          .connection = http::ConnectionHeader::kClose});
}

}  // namespace handoff::reactor
