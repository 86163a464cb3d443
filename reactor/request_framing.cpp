#include "reactor/request_framing.hpp"

namespace handoff::reactor {

void RequestFraming::reset() {
  parser_.reset();
  request_bytes_ = 0;
  complete_ = continue_answered_ = too_large_ = ended_in_cr_ = false;
}

void RequestFraming::finish(Protocol protocol) {
  if (protocol == Protocol::kHttp) {
    parser_.finish();
  } else if (!ready()) {
    too_large_ =
        request_bytes_ - (ended_in_cr_ ? 1 : 0) > max_line_bytes_;  // Fed at EOF, undecided till then.
  }
}

void RequestFraming::refuse_as_too_large() {
  if (!ready()) too_large_ = true;
}

void RequestFraming::feed(Protocol protocol, std::string_view bytes) {
  if (ready() || bytes.empty()) return;
  if (protocol == Protocol::kLine) {
    const size_t end = bytes.find('\n');
    if (end == std::string_view::npos) {
      request_bytes_ += bytes.size();
      ended_in_cr_ = bytes.back() == '\r';
      // The line so far, less a CR that may begin its line end, is longer than any line accepted.
      too_large_ = request_bytes_ - (ended_in_cr_ ? 1 : 0) > max_line_bytes_;
      return;
    }
    request_bytes_ += end + 1;
    const bool cr = end > 0 ? bytes[end - 1] == '\r' : ended_in_cr_;
    const size_t line_end_bytes = cr ? 2 : 1;
    too_large_ = request_bytes_ - line_end_bytes > max_line_bytes_;
    complete_ = !too_large_;
    return;
  }
  if (protocol != Protocol::kHttp) return;
  request_bytes_ += parser_.feed(bytes);
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
