#include "reactor/request_framing.hpp"

namespace handoff::reactor {

void RequestFraming::reset() {
  parser_.reset();
  complete_ = continue_answered_ = false;
}

void RequestFraming::feed(Protocol protocol, std::string_view bytes) {
  if (ready() || bytes.empty()) return;
  if (protocol == Protocol::kLine) {
    complete_ = bytes.find('\n') != std::string_view::npos;
    return;
  }
  if (protocol != Protocol::kHttp) return;
  parser_.feed(bytes);
  complete_ = parser_.state() == http::RequestParser::State::kComplete;
}

bool RequestFraming::take_continue() {
  const http::RequestHead& head = parser_.head();
  if (continue_answered_ || ready() || !parser_.head_complete()) return false;
  if (!head.expect_continue || !head.body_follows || head.version_minor < 1) return false;
  continue_answered_ = true;
  return true;
}

}  // namespace handoff::reactor
