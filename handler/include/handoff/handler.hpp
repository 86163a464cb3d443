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

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace handoff {

namespace ipc {
class AnswerRecord;
}

enum class Protocol { kLine, kHttp };

// One request, whichever protocol it came in: the reactor read it whole and parsed it (the handler library
// parses nothing the reactor did not judge first). The views are valid during the call only.
struct Request {
  // Commands (Handler::command): "fib" for the line "fib 30" and for GET /fib/30, and {"30"}: the words after
  // the command, or the path segments after it, percent-decoded ("/say/a%20b" gives {"a b"}). Empty for a
  // route or the fallback.
  std::string_view command;
  std::vector<std::string_view> arguments;
  Protocol protocol = Protocol::kLine;
  std::string_view method;  // "GET", "PUT", ...; empty on the line protocol.
  // HTTP: the request-target as sent ("/a%2Fb/?x=1"); the line protocol: the line, without its line end.
  std::string_view target;
  std::string_view path;   // The target's path, not decoded ("/a%2Fb/"); an absolute-form target's too.
  std::string_view query;  // After the '?', not decoded; empty when none.
  std::vector<std::pair<std::string_view, std::string_view>> headers;  // As sent, in order.
  std::string_view body;            // Chunked framing removed; empty on the line protocol.
  std::string_view client_address;  // "203.0.113.7", "2001:db8::1".
  uint16_t client_port = 0;
  std::string_view version;  // "HTTP/1.1" or "HTTP/1.0"; empty on the line protocol.
  uint64_t id = 0;           // The reactor's number for the request, unique within its run.
  // A route's {name} segments, percent-decoded ("/files/{name}" and /files/a%2Fb give name = "a/b").
  std::vector<std::pair<std::string_view, std::string>> path_parameters;

  // The value of the first header field of that name (compared without regard to case); nullopt if none.
  std::optional<std::string_view> header(std::string_view name) const;
  // The values of every field of that name, in order.
  std::vector<std::string_view> header_values(std::string_view name) const;
  // The first query parameter of that name, percent-decoded ('+' is a space); nullopt if none.
  std::optional<std::string> query_parameter(std::string_view name) const;
  // Every value of the query parameter of that name, in order.
  std::vector<std::string> query_parameters(std::string_view name) const;
  // The route's parameter of that name; nullopt if the route has none.
  std::optional<std::string_view> path_parameter(std::string_view name) const;

  // Whether the client of this request has left: over HTTP it closed its connection, on either protocol it
  // reset it. Nobody will read the answer, so a long computation may look now and then and stop early,
  // returning any reply (it goes nowhere). The reactor sets a word in the handler's answer record the moment
  // it sees the client go; this is one relaxed load of it, cheap enough for every turn of a loop. Code that
  // does not stop is killed once --cancel-grace has passed, and its handler replaced (unless --cancel off).
  // Always false for a request made by hand (Handler::execute) and under a reactor that does not say.
  bool cancelled() const;

  // What cancelled() reads, set by the library for each request it serves: the handler's answer record and
  // the reactor's number for the request's connection. Not for your code to set.
  struct CancelSource {
    const ipc::AnswerRecord* answer_record = nullptr;
    uint64_t connection_id = 0;
  };
  CancelSource cancel_source;
};

// What a command or route answers. On the line protocol a reply is one line whatever it holds, since a
// client reads one answer per line: the body (an error as "ERR <reason>") without the line end it may end in
// ("\n" or "\r\n"), each CR, LF and NUL left in it made a space, then "\n". Over HTTP it is the response:
// status, headers and body.
struct Reply {
  int status = 200;  // The HTTP status, sent with its standard reason phrase; 400 and above is an error.
  std::string body;  // Bytes; text is UTF-8.
  std::string content_type = "text/plain; charset=utf-8";
  // More header fields, in order (several Set-Cookie are fine). A Content-Type here replaces content_type, a
  // Server replaces "Server: handoff". The server owns Content-Length, Transfer-Encoding, Connection and
  // Date: a reply that sets one is refused, as is a name that is not a token (RFC 9110 section 5.1) or a
  // name, value or content type holding CR, LF or NUL, which would write headers or a response of its own
  // (RFC 9110 section 5.5): the client gets a 500, and the handler logs what was refused on stderr. So is a
  // status outside 200-599.
  std::vector<std::pair<std::string, std::string>> headers;

  // Adds a header field; returns the reply, for chaining.
  Reply& header(std::string name, std::string value);

  // A text answer; a newline is added when it has none.
  static Reply text(std::string text, int status = 200);
  // Bytes with a content type of their own (HTTP); on the line protocol, one line as above.
  static Reply bytes(std::string data, std::string content_type = "application/octet-stream");
  // JSON text you serialized (application/json).
  static Reply json(std::string json_text, int status = 200);
  // A redirect to location (302 Found unless said: 301, 303, 307, 308).
  static Reply redirect(std::string location, int status = 302);
  // A request that cannot be served: "ERR <reason>" on a line, the status (400 unless said) over HTTP.
  static Reply error(std::string reason, int status = 400);
};

using Command = std::function<Reply(const Request&)>;

// What the reactor may assume of a command or route, beside calling it.
struct RouteOptions {
  // A request of it may be run again, on another handler, when the handler running it died before it began
  // to answer (the reactor decides whether it does: docs/handlers.md). Say it only of a function whose only
  // effect is its answer — a computation, a read — since a handler may die after it changed something. The
  // reactor reads it for line commands; an HTTP request it runs again by its method (GET, HEAD, OPTIONS).
  bool retryable = false;
};

class Handler {
 public:
  // Registers a command: reachable as the line "NAME ARG..." and as GET, HEAD or POST /NAME/ARG/... over
  // HTTP. The reactor counts its requests under NAME (docs/operations.md, /metrics).
  Handler& command(std::string name, Command function, RouteOptions options = {});

  // Registers a route: method ("GET", "PUT", any method token; a GET route answers HEAD too) and a path
  // pattern ("/", "/items/{id}", "/files/{name}/meta"): each {name} takes one whole, non-empty segment of
  // the path as sent, percent-decoded into Request::path_parameters. Segments are compared as sent, so a
  // trailing slash counts. A path some route matches, requested with a method none of them takes, gets 405
  // with Allow. Routes are tried before commands. The reactor counts its requests under "METHOD PATTERN"
  // ("GET /items/{id}"), never under the path requested.
  Handler& route(std::string method, std::string pattern, Command function, RouteOptions options = {});

  // Receives every HTTP request no route and no command took (a framework's adapter). Without it, 404.
  Handler& fallback(Command function);

  // Whatever a command, route or fallback throws, or a reply that cannot be sent, becomes a 500 ("ERR
  // internal error" on a line), logged on stderr with the request; the handler keeps serving. The client sees
  // the exception's text only when the reactor runs with --expose-errors (HANDOFF_EXPOSE_ERRORS=1, for
  // development). A crash is answered by the reactor ("ERR handler crashed" / 502) and the handler replaced.

  // Serves the requests the reactor hands over until the reactor closes the channel; returns the exit status
  // for main. Started by hand (no HANDOFF_IPC_FD), it explains itself and returns 2; with --help, 0.
  int run(int argc, char** argv);

  // Answers one request as the handler would (for tests of your code): routes, commands, the fallback, and
  // a reply that cannot be sent is a 500 here too. request.command and arguments are filled in from the path
  // for an HTTP request.
  Reply execute(Request request) const;
  // The same, and which route or command answered: route_number is its number in the route table the handler
  // tells the reactor in its hello (its place in the order of registration, from 1), or 0 when none did (an
  // unknown command, a 404, a 405, the fallback). The reactor counts the request under that route's name.
  Reply execute(Request request, uint16_t& route_number) const;

  // The registered command names, comma-separated, for error messages.
  std::string command_names() const;
  bool has_command(std::string_view name) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{name}" for a parameter.
    Command function;
    uint16_t number;  // In table_.
  };
  struct NamedCommand {
    std::string name;
    Command function;
    uint16_t number;  // In table_.
  };
  // A route or command as the hello names it: "METHOD PATTERN" or the command's name.
  struct TableEntry {
    std::string name;
    bool retryable;
  };
  Reply answer_http(Request request, uint16_t& route_number) const;
  Reply call(const Command& function, const Request& request) const;
  // Adds an entry to table_; returns its number (0 past the most a report can name).
  uint16_t number(std::string name, RouteOptions options);
  // The payload of the hello (ipc::route_table_payload).
  std::string route_table() const;

  std::vector<NamedCommand> commands_;
  std::vector<Route> routes_;
  std::vector<TableEntry> table_;  // Every route and command, in the order registered.
  Command fallback_;
};

}  // namespace handoff
