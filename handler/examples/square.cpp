// The smallest handoff handler: `square 12` on a line, or GET /square/12, answers 144.
#include <handoff/handler.hpp>

int main(int argc, char** argv) {
  handoff::Handler handler;
  handler.command("square", [](const handoff::Request& request) {
    const long long n = std::stoll(std::string(request.arguments.at(0)));
    return handoff::Reply::text(std::to_string(n * n));
  });
  return handler.run(argc, argv);
}
