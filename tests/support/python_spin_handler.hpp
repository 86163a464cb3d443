#pragma once

// Test support: a Python handler (handler/python) with the built-in handler's spin command, CPU work for as
// long as asked ("spin 300" answers "spun 300"), written into folder; returns its --handler-cmd.

#include <string>

#include "tests/support/temporary_folder.hpp"

namespace handoff::testing {

inline std::string python_spin_handler(const TemporaryFolder& folder) {
  const std::string script = folder.file("spin.py",
                                         "import time\n"
                                         "from handoff_handler import Handler, Reply\n"
                                         "handler = Handler()\n"
                                         "@handler.command('spin')\n"
                                         "def spin(request):\n"
                                         "    end = time.monotonic() + int(request.arguments[0]) / 1000\n"
                                         "    while time.monotonic() < end:\n"
                                         "        pass\n"
                                         "    return Reply.text('spun ' + request.arguments[0])\n"
                                         "handler.run()\n");
  return "python3 " + script;
}

}  // namespace handoff::testing
