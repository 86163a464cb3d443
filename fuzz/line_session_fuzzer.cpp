// Fuzz target: the handler library's line session (handler/line_session.hpp), serve_lines over a socketpair
// with the input as the client's bytes (fuzz/session_driver.hpp has the input's layout and the common
// checks). Checked besides:
// - every answer is one whole line (an error's begins "ERR "), one per answer reported;
// - the session answers the lines in order, the record's first, and hands back the bytes from the start of
//   the first line it did not answer; kept open with no other connection waiting, it hands back no complete
//   line (the whole pipeline is served);
// - a line longer than the limit, which the reactor refuses (413, "request too large"), is never served.

#include <cstdlib>
#include <vector>

#include "fuzz/session_driver.hpp"
#include "handler/line_session.hpp"

namespace handoff::fuzz {
namespace {

void check(const SessionRun& run) {
  // The lines the session has: the record's, then those it received.
  const std::string lines =
      (run.first ? std::string(run.first->target) + "\n" : std::string()) + run.received;
  std::vector<size_t> ends;  // Where each complete line ends, past its '\n'.
  for (size_t end = 0; (end = lines.find('\n', end)) != std::string::npos;) ends.push_back(++end);
  std::vector<std::string_view> answers;  // The lines written, each an answer.
  if (!run.outcome.write_timed_out) {
    for (std::string_view written = run.written; !written.empty();) {
      const size_t end = written.find('\n');
      FUZZ_CHECK(end != std::string_view::npos);
      answers.push_back(written.substr(0, end + 1));
      written.remove_prefix(end + 1);
    }
    // One report per answer, the last line cut by EOF's too.
    FUZZ_CHECK(answers.size() == run.statuses.size());
    for (size_t i = 0; i < answers.size(); ++i) {
      if (run.statuses[i] >= 400) FUZZ_CHECK(answers[i].starts_with("ERR "));
    }
  }
  const size_t answered = run.outcome.write_timed_out ? run.statuses.size() : answers.size();
  FUZZ_CHECK(answered <= ends.size() + 1);
  for (size_t i = 0; i < answered; ++i) {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    std::string_view line =
        std::string_view(lines).substr(begin, i < ends.size() ? ends[i] - begin : std::string::npos);
    if (line.ends_with('\n')) line.remove_suffix(1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    // The reactor refuses such a line, and a session hands it back for that.
    FUZZ_CHECK(line.size() <= run.limits.max_request_bytes);
  }
  if (run.outcome.keep_open) {
    // Handed back from the start of the first line not answered.
    FUZZ_CHECK(answered <= ends.size());
    const size_t from = answered == 0 ? 0 : ends[answered - 1];
    FUZZ_CHECK(run.outcome.unconsumed == std::string_view(lines).substr(from));
    // A complete line goes back only when others wait, or when it is too long (the reactor refuses it).
    const size_t end = run.outcome.unconsumed.find('\n');
    if (!run.others_waiting && end != std::string::npos) {
      std::string_view line = std::string_view(run.outcome.unconsumed).substr(0, end);
      if (line.ends_with('\r')) line.remove_suffix(1);
      FUZZ_CHECK(line.size() > run.limits.max_request_bytes);
    }
  }
}

}  // namespace
}  // namespace handoff::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::optional<SessionRun> run =
      run_session(data, size, handoff::handler::serve_lines, handoff::reactor::Protocol::kLine);
  if (run) check(*run);
  return 0;
}
