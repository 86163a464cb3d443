// Fuzz target: the handler library's HTTP session (handler/http_session.hpp), serve_http over a socketpair
// with the input as the client's bytes (fuzz/session_driver.hpp has the input's layout and the common
// checks): the strict parser, routing, percent-decoding, the query and header lookups of the API, and the
// response writer. Checked besides: what the session writes begins with an HTTP response head that gives its
// Content-Length, and when that response says "Connection: close" the connection is not kept open.

#include "fuzz/session_driver.hpp"
#include "handler/http_session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace handoff::fuzz;
  const std::optional<SessionRun> run =
      run_session(data, size, handoff::handler::serve_http, handoff::ipc::kFlagHttp);
  if (!run || run->written.empty() || run->outcome.write_timed_out) return 0;
  FUZZ_CHECK(run->written.starts_with("HTTP/1.1 "));
  const size_t head_end = run->written.find("\r\n\r\n");
  FUZZ_CHECK(head_end != std::string::npos);
  const std::string_view head = std::string_view(run->written).substr(0, head_end + 2);
  FUZZ_CHECK(head.find("\r\nContent-Length: ") != std::string_view::npos);
  if (head.find("\r\nConnection: close\r\n") != std::string_view::npos) FUZZ_CHECK(!run->outcome.keep_open);
  return 0;
}
