// handler: the built-in handoff handler, written on the public handler API like any user's handler.

#include "handler/builtin_commands.hpp"
#include "handoff/handler.hpp"

int main(int argc, char** argv) {
  handoff::Handler handler;
  handoff::handler::add_builtin_commands(handler);
  return handler.run(argc, argv);
}
