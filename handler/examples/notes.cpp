// A small web API on the handler library's routes: notes kept in the handler's memory (one handler, for the
// demo: each handler process has its own), and what a web service needs around them — any method, "/", path
// parameters, redirects, cookies, JSON, the client's address, a fallback. handler/examples/notes.py is the
// same in Python; tests/integration/web_api_test.cpp holds both to the same answers.
//
//   handoff --handlers 1 --handler-cmd build/handler/notes
//   curl -X PUT --data 'buy milk' http://127.0.0.1:8888/notes/1     # 201 stored 1
//   curl http://127.0.0.1:8888/notes/1                              # buy milk
#include <handoff/handler.hpp>

#include <map>
#include <stdexcept>
#include <string>

namespace {

// Text as a JSON string, quotes and all (RFC 8259 section 7).
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      (out += '\\') += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  using handoff::Reply;
  using handoff::Request;
  std::map<std::string, std::string> notes;
  handoff::Handler handler;

  handler.route("GET", "/",
                [&](const Request&) { return Reply::text(std::to_string(notes.size()) + " notes"); });
  handler.route("PUT", "/notes/{id}", [&](const Request& request) {
    const std::string id(*request.path_parameter("id"));
    notes[id] = std::string(request.body);
    return Reply::text("stored " + id, 201);
  });
  handler.route("GET", "/notes/{id}", [&](const Request& request) {
    const auto note = notes.find(std::string(*request.path_parameter("id")));
    if (note == notes.end()) return Reply::error("no such note", 404);
    return Reply::bytes(note->second, "text/plain; charset=utf-8");
  });
  handler.route("DELETE", "/notes/{id}", [&](const Request& request) {
    notes.erase(std::string(*request.path_parameter("id")));
    return Reply{.status = 204};
  });
  handler.route("OPTIONS", "/notes/{id}", [](const Request&) {
    return Reply{.status = 204}.header("Allow", "GET, HEAD, PUT, DELETE, OPTIONS");
  });
  handler.route("GET", "/old", [](const Request&) { return Reply::redirect("/"); });
  handler.route("POST", "/login", [](const Request&) {
    return Reply::text("welcome")
        .header("Set-Cookie", "session=abc; HttpOnly")
        .header("Set-Cookie", "theme=dark");
  });
  // Whatever the client asks to be echoed goes into a header: a CR or LF in it must never reach the wire.
  handler.route("GET", "/echo-header", [](const Request& request) {
    return Reply::text("echoed").header("X-Echo", request.query_parameter("value").value_or(""));
  });
  handler.route("GET", "/whoami", [](const Request& request) {
    return Reply::json(
        "{\"client\": " + json_string(request.client_address) +
        ", \"method\": " + json_string(request.method) + ", \"target\": " + json_string(request.target) +
        ", \"path\": " + json_string(request.path) + ", \"query\": " + json_string(request.query) +
        ", \"version\": " + json_string(request.version) +
        ", \"id_given\": " + (request.id > 0 ? "true" : "false") +
        ", \"tags\": " + std::to_string(request.query_parameters("tag").size()) + "}");
  });
  handler.route("GET", "/boom",
                [](const Request&) -> Reply { throw std::runtime_error("database password is hunter2"); });
  handler.command("square", [](const Request& request) {
    const long long n = std::stoll(std::string(request.arguments.at(0)));
    return Reply::text(std::to_string(n * n));
  });
  handler.fallback([](const Request& request) {
    return Reply::error("nothing at " + std::string(request.method) + " " + std::string(request.target), 404);
  });
  return handler.run(argc, argv);
}
