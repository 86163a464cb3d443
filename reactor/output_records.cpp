#include "reactor/output_records.hpp"

#include <utility>

namespace handoff::reactor {
namespace {

// Python's own words (Lib/traceback.py: the header of a traceback, _cause_message and _context_message).
constexpr std::string_view kTracebackHeader = "Traceback (most recent call last):";
constexpr std::string_view kCauseSentence =
    "The above exception was the direct cause of the following exception:";
constexpr std::string_view kContextSentence =
    "During handling of the above exception, another exception occurred:";

bool indented(std::string_view line) {
  return !line.empty() && (line.front() == ' ' || line.front() == '\t');
}

// Where to cut s at most limit bytes in (limit < s.size()): before the UTF-8 character that byte limit is
// in the middle of, so that both pieces stay valid UTF-8 if s was. Bytes that are not UTF-8 are cut at
// limit.
size_t character_boundary(std::string_view s, size_t limit) {
  const auto continuation_byte = [&](size_t i) { return (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80; };
  for (size_t cut = limit; cut > 0 && limit - cut < 4; --cut) {
    if (!continuation_byte(cut)) return cut;
  }
  return limit;
}

}  // namespace

void OutputRecords::add(std::string_view bytes) {
  for (size_t newline = bytes.find('\n'); newline != std::string_view::npos; newline = bytes.find('\n')) {
    partial_.append(bytes.substr(0, newline));
    bytes.remove_prefix(newline + 1);
    take_line(std::exchange(partial_, {}));
  }
  partial_.append(bytes);
  // A line that grows beyond a record is written as it comes, rather than held whole.
  write_pieces(partial_);
}

void OutputRecords::finish() {
  if (!partial_.empty()) take_line(std::exchange(partial_, {}));
  write_pending(false);
}

void OutputRecords::take_line(std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxRecordBytes) {
    write_pieces(line);
    message_ = std::move(line);  // The rest of the line begins a record of its own.
    return;
  }
  if (pending() && continues(line)) {
    if (message_.size() + 1 + line.size() > kMaxRecordBytes) {
      write_pending(true);  // The traceback's state goes on into the next record.
      message_ = line;
    } else {
      message_ += '\n';
      message_ += line;
    }
    follow_traceback(line);
    return;
  }
  write_pending(false);
  if (line.empty()) return;
  message_ = std::move(line);
  follow_traceback(message_);
}

bool OutputRecords::continues(std::string_view line) const {
  if (line.empty() || indented(line) || line == kTracebackHeader) return true;
  if (traceback_ == Traceback::kFrames) return true;  // Its exception line.
  return traceback_ == Traceback::kEnded && (line == kCauseSentence || line == kContextSentence);
}

void OutputRecords::follow_traceback(std::string_view line) {
  if (line == kTracebackHeader) {
    traceback_ = Traceback::kFrames;
    holds_traceback_ = true;
  } else if (traceback_ == Traceback::kFrames && !line.empty() && !indented(line)) {
    traceback_ = Traceback::kEnded;
  }
}

void OutputRecords::write_pieces(std::string& line) {
  if (line.size() <= kMaxRecordBytes) return;
  write_pending(false);
  std::string_view rest = line;
  while (rest.size() > kMaxRecordBytes) {
    const size_t cut = character_boundary(rest, kMaxRecordBytes);
    write_({.text = rest.substr(0, cut), .traceback = holds_traceback_, .split = true});
    rest.remove_prefix(cut);
  }
  line.erase(0, line.size() - rest.size());
}

void OutputRecords::write_pending(bool split) {
  if (message_.empty()) return;
  std::string_view text = message_;
  while (!split && text.ends_with('\n')) text.remove_suffix(1);  // Trailing blank lines.
  write_({.text = text, .traceback = holds_traceback_, .split = split});
  message_.clear();
  if (!split) {
    traceback_ = Traceback::kNone;
    holds_traceback_ = false;
  }
}

}  // namespace handoff::reactor
