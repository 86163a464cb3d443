#pragma once

// Test support: handler commands written for a test into its folder; each returns a --handler-cmd.

#include <initializer_list>
#include <string>

#include "tests/support/temporary_folder.hpp"

namespace handoff::testing {

// One command of a Python handler: `@handler.command(name)` over a function of request whose body is the
// lines given (each indented once here).
inline std::string python_command(const std::string& name, std::initializer_list<std::string> body) {
  std::string source = "@handler.command('" + name + "')\ndef command_" + name + "(request):\n";
  for (const std::string& line : body) source += "    " + line + "\n";
  return source;
}

// A Python handler (handler/python) written to folder/file: prelude (imports, and whatever must run before
// the library's Handler is made), the Handler, commands (python_command), then handler.run(). Returns its
// --handler-cmd.
inline std::string python_handler(const TemporaryFolder& folder, const std::string& file,
                                  const std::string& prelude, const std::string& commands) {
  return "python3 " + folder.file(file, prelude +
                                            "from handoff_handler import Handler, Reply\n"
                                            "handler = Handler()\n" +
                                            commands + "handler.run()\n");
}

// A Python handler (handler/python) with the built-in handler's spin and pid commands: "spin 300" answers
// "spun 300" after 300 ms on the wall clock (not of CPU time, as the built-in one counts).
inline std::string python_spin_handler(const TemporaryFolder& folder) {
  return python_handler(
      folder, "spin.py", "import os, time\n",
      python_command("pid", {"return Reply.text(str(os.getpid()))"}) +
          python_command("spin", {"end = time.monotonic() + int(request.arguments[0]) / 1000",
                                  "while time.monotonic() < end:", "    pass",
                                  "return Reply.text('spun ' + request.arguments[0])"}));
}

// The built-in handler, unless a marker file exists in folder: "broken" (it fails at start-up like a broken
// build), "hangs" (it never says hello) or "slow" (it starts 2 s late).
inline std::string switchable_handler(const TemporaryFolder& folder) {
  return folder.file(
      "handler.sh",
      "#!/bin/sh\n"
      "dir=$(dirname \"$0\")\n"
      "if [ -e \"$dir/broken\" ]; then echo 'handler: cannot load a broken build' >&2; exit 1; fi\n"
      "if [ -e \"$dir/hangs\" ]; then exec sleep 60; fi\n"
      "if [ -e \"$dir/slow\" ]; then sleep 2; fi\n"
      "exec '" +
          environment("HANDOFF_HANDLER") + "'\n",
      true);
}

}  // namespace handoff::testing
