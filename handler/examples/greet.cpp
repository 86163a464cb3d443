// A handler that reads a query parameter: GET /greet?name=Ada answers "hello Ada", and so do GET /greet/Ada
// and the line `greet Ada`; without a name it greets the world. handler/examples/greet.py answers the same in
// Python.
#include <handoff/handler.hpp>
#include <string>

int main(int argc, char** argv) {
  handoff::Handler handler;
  handler.command("greet", [](const handoff::Request& request) {
    // Over HTTP the name is the query parameter, percent-decoded (?name=Ada%20L. gives "Ada L."); without it,
    // and on a line, the words after the command.
    std::string name = request.query_parameter("name").value_or("");
    if (name.empty()) {
      for (size_t i = 0; i < request.arguments.size(); ++i) {
        if (i > 0) name += ' ';
        name += request.arguments[i];
      }
    }
    return handoff::Reply::text("hello " + (name.empty() ? std::string("world") : name));
  });
  return handler.run(argc, argv);
}
