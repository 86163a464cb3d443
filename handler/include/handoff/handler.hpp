#pragma once

// The handoff handler API: write a handler executable for your own CPU-bound function in a few lines.
//
//   #include <handoff/handler.hpp>
//
//   int main(int argc, char** argv) {
//     handoff::Handler handler;
//     handler.command("square", [](const handoff::Request& request) {
//       const long n = std::stol(std::string(request.arguments.at(0)));
//       return handoff::Reply::text(std::to_string(n * n));
//     });
//     return handler.run(argc, argv);
//   }
//
// One registration serves both protocols: the line `square 12` and `GET /square/12` reach the same function.
// Build it with `pkg-config --cflags --libs handoff-handler`, start it with
// `reactor --handler-cmd ./square`. docs/handlers.md has the whole story.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace handoff {

enum class Protocol { kLine, kHttp };

// One request, whichever protocol it came in. The views are valid during the call only.
struct Request {
  std::string_view command;                 // "fib" for the line "fib 30" and for GET /fib/30.
  std::vector<std::string_view> arguments;  // {"30"}: the words after the command, or the path segments
                                            // after it, percent-decoded ("/say/a%20b" gives {"a b"}).
  std::string_view body;                    // An HTTP request's body (POST); empty on the line protocol.
  Protocol protocol = Protocol::kLine;
  // HTTP only (empty on the line protocol): the method ("GET", "HEAD", "POST"), the query string as sent
  // (after the '?', not decoded) and the header fields as sent (names in any case).
  std::string_view method;
  std::string_view query;
  std::vector<std::pair<std::string_view, std::string_view>> headers;

  // The value of the first header field of that name (compared without regard to case); nullopt if none.
  std::optional<std::string_view> header(std::string_view name) const;
  // The first query parameter of that name, percent-decoded ('+' is a space); nullopt if none.
  std::optional<std::string> query_parameter(std::string_view name) const;
};

// What a command answers. On the line protocol a reply is one line whatever it holds, since a client reads
// one answer per line: the body (an error as "ERR <reason>") without the line end it may end in ("\n" or
// "\r\n"), each CR, LF and NUL left in it made a space, then "\n". Over HTTP it is the response body, with
// its status.
struct Reply {
  int status = 200;  // The HTTP status, sent with its standard reason phrase; 400 and above is an error.
  std::string body;
  // Over HTTP, for every status. It is written into the response head, so it must hold no CR, LF or NUL (RFC
  // 9110 section 5.5): a reply with one, which would write headers or a response of its own, is refused like
  // a status outside 200-599: the client gets a 500, and the handler logs what was refused on stderr.
  std::string content_type = "text/plain; charset=utf-8";

  // A text answer; a newline is added when it has none.
  static Reply text(std::string text);
  // Bytes with a content type of their own (HTTP); on the line protocol, one line as above.
  static Reply bytes(std::string data, std::string content_type = "application/octet-stream");
  // A request that cannot be served: "ERR <reason>" on a line, the status (400 unless said) over HTTP.
  static Reply error(std::string reason, int status = 400);
};

using Command = std::function<Reply(const Request&)>;

class Handler {
 public:
  // Registers a command: reachable as the line "NAME ARG..." and as GET, HEAD or POST /NAME/ARG/... over
  // HTTP. An exception thrown by it becomes an error reply ("ERR internal error: ..." / 500); the handler
  // keeps serving. A crash is answered by the reactor ("ERR handler crashed" / 502) and the handler replaced.
  Handler& command(std::string name, Command function);

  // Serves the requests the reactor hands over until the reactor closes the channel; returns the exit status
  // for main. Started by hand (no HANDOFF_IPC_FD), it explains itself and returns 2; with --help, 0.
  int run(int argc, char** argv);

  // Answers one request as the handler would (for tests of your commands): a reply whose status or content
  // type cannot be sent is a 500 here too.
  Reply execute(const Request& request) const;

  // The registered command names, comma-separated, for error messages.
  std::string command_names() const;
  bool has_command(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, Command>> commands_;
};

}  // namespace handoff
