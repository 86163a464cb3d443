// A handler that answers as many bytes as asked, of the content type asked, as httpbin's /bytes/N and
// /response-headers do: for trying a client, a proxy or a load balancer on answers of any size.
//   curl -o /dev/null http://127.0.0.1:8888/bytes/50000000   ->  50 MB, application/octet-stream
//   curl 'http://127.0.0.1:8888/bytes/5?type=text/plain'       ->  abcde, as text/plain
//   bytes 5                                                    ->  abcde
// The bytes run through the alphabet. The type is the client's, taken as it comes: a type with CR, LF or NUL
// in it, which would write headers of its own into the answer, is refused by the library (500).
// handler/examples/bytes.py answers the same in Python.
#include <charconv>
#include <handoff/handler.hpp>
#include <string>

namespace {

constexpr size_t kMaxBytes = 100 << 20;

}  // namespace

int main(int argc, char** argv) {
  handoff::Handler handler;
  handler.command("bytes", [](const handoff::Request& request) {
    size_t size = 0;
    const std::string_view text = request.arguments.size() == 1 ? request.arguments[0] : "";
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), size);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || size > kMaxBytes) {
      return handoff::Reply::error("bytes takes one whole number from 0 to " + std::to_string(kMaxBytes));
    }
    std::string data(size, ' ');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + i % 26);
    std::string type = request.query_parameter("type").value_or("");
    return handoff::Reply::bytes(std::move(data),
                                 type.empty() ? "application/octet-stream" : std::move(type));
  });
  return handler.run(argc, argv);
}
