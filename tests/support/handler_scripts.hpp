#pragma once

// Test support: handler commands written for a test into its folder; each returns a --handler-cmd.

#include <string>

#include "tests/support/temporary_folder.hpp"

namespace handoff::testing {

// A Python handler (handler/python) with the built-in handler's spin and pid commands: "spin 300" answers
// "spun 300" after 300 ms on the wall clock (not of CPU time, as the built-in one counts).
inline std::string python_spin_handler(const TemporaryFolder& folder) {
  const std::string script = folder.file("spin.py",
                                         "import os, time\n"
                                         "from handoff_handler import Handler, Reply\n"
                                         "handler = Handler()\n"
                                         "@handler.command('pid')\n"
                                         "def pid(request):\n"
                                         "    return Reply.text(str(os.getpid()))\n"
                                         "@handler.command('spin')\n"
                                         "def spin(request):\n"
                                         "    end = time.monotonic() + int(request.arguments[0]) / 1000\n"
                                         "    while time.monotonic() < end:\n"
                                         "        pass\n"
                                         "    return Reply.text('spun ' + request.arguments[0])\n"
                                         "handler.run()\n");
  return "python3 " + script;
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
