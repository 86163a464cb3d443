#!/usr/bin/env python3
"""Writes a C++ header holding a text file's bytes as one constant, so that the binary carries the file.

Usage: embed.py INPUT OUTPUT NAME. The header defines handoff::reactor::NAME, a std::string_view of INPUT's
bytes exactly (UTF-8 included), as a raw string literal; INPUT must not hold the literal's closing delimiter.
"""

import os
import sys

DELIMITER = "EMBED"


def main() -> int:
    source, header, name = sys.argv[1:]
    with open(source, "rb") as file:
        text = file.read().decode("utf-8")
    if ")" + DELIMITER + '"' in text:
        print(f"embed.py: {source} holds ){DELIMITER}\", which would end the raw string early",
              file=sys.stderr)
        return 1
    with open(header, "w", encoding="utf-8", newline="") as out:
        out.write("#pragma once\n\n")
        out.write(f"// Internal to the reactor. Generated from {os.path.basename(source)} by embed.py at "
                  "build time: edit that file, not this one.\n\n")
        out.write("#include <string_view>\n\nnamespace handoff::reactor {\n\n")
        out.write(f'inline constexpr std::string_view {name} = R"{DELIMITER}({text}){DELIMITER}";\n\n')
        out.write("}  // namespace handoff::reactor\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
