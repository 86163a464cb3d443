#include "reactor/request_framing.hpp"

#include <algorithm>
#include <vector>

namespace handoff::reactor {

void RequestFraming::reset() {
  parser_.reset();
  request_bytes_ = 0;
  complete_ = continue_answered_ = too_large_ = ended_in_cr_ = false;
}

void RequestFraming::finish(Protocol protocol) {
  // A line was measured as it was fed: one without its end is a request, unless it was refused then.
  if (protocol == Protocol::kHttp) parser_.finish();
}

void RequestFraming::refuse_as_too_large() {
  if (!ready()) too_large_ = true;
}

void RequestFraming::feed(Protocol protocol, std::string_view bytes) {
  if (ready() || bytes.empty()) return;
  if (protocol == Protocol::kLine) {
    const size_t end = bytes.find('\n');
    const bool line_end = end != std::string_view::npos;
    request_bytes_ += line_end ? end + 1 : bytes.size();
    // The last byte before the LF, or of the bytes so far (then it may begin the line end), is a CR.
    if (!line_end) {
      ended_in_cr_ = bytes.back() == '\r';
    } else if (end > 0) {
      ended_in_cr_ = bytes[end - 1] == '\r';
    }
    // The line without its end (so far) is longer than any line accepted.
    too_large_ = request_bytes_ - (line_end ? 1 : 0) - (ended_in_cr_ ? 1 : 0) > max_line_bytes_;
    complete_ = line_end && !too_large_;
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

void RequestFraming::append_record(Protocol protocol, std::string_view raw, ipc::RequestFields known,
                                   std::string& record) const {
  if (protocol == Protocol::kHttp) {
    const http::RequestHead& head = parser_.head();
    known.http_minor = head.version_minor;
    known.keep_alive = head.keep_alive;
    known.method = head.method;
    known.target = head.target;
    known.body = parser_.body();
    known.rest = raw.substr(std::min(request_bytes_, raw.size()));
    ipc::append_request_record(record, known, head.headers);
    return;
  }
  const size_t end = complete_ ? request_bytes_ : raw.size();
  std::string_view line = raw.substr(0, end);
  if (line.ends_with('\n')) line.remove_suffix(line.ends_with("\r\n") ? 2 : 1);
  known.target = line;
  known.rest = raw.substr(end);
  ipc::append_request_record(record, known, std::vector<http::HeaderField>());
}

}  // namespace handoff::reactor
