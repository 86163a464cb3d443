// Fuzz target: the handler library's line session (handler/line_session.hpp), serve_lines over a socketpair
// with the input as the client's bytes (fuzz/session_driver.hpp has the input's layout and the common
// checks). Checked besides: every answer is a whole line, and a connection kept open hands back no complete
// line (with no other connection waiting, the whole pipeline is served).

#include "fuzz/session_driver.hpp"
#include "handler/line_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::optional<SessionRun> run = run_session(data, size, handoff::handler::serve_lines, 0);
  if (!run) return 0;
  if (!run->outcome.write_timed_out && !run->written.empty()) FUZZ_CHECK(run->written.ends_with('\n'));
  if (run->outcome.keep_open) FUZZ_CHECK(run->outcome.unconsumed.find('\n') == std::string::npos);
  return 0;
}
