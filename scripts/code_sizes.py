#!/usr/bin/env python3
"""The largest source files and functions of the product (dr-core, drctl, functions), by lines.

    scripts/code_sizes.py [N] [REV]

N: how many of each (default 10). REV: a git revision to measure instead of the working tree
(so that a change can print its before and after: docs/architecture.md's figures).
Functions are found by their `fn` line and counted to the closing brace at the same indent;
`#[cfg(test)]` modules are left out, as tests are not what a newcomer must carry.
"""

import re
import subprocess
import sys
from pathlib import Path

ROOTS = ("crates/dr-core/src", "crates/drctl/src", "functions/src")
FN = re.compile(r"^(\s*)(pub(\([^)]*\))? )?(async )?(const )?fn (\w+)")


def sources(rev):
    repo = Path(__file__).resolve().parent.parent
    if rev is None:
        for root in ROOTS:
            for path in sorted((repo / root).rglob("*.rs")):
                yield str(path.relative_to(repo)), path.read_text()
        return
    names = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", rev, "--", *ROOTS],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    for name in names:
        if name.endswith(".rs"):
            text = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{name}"],
                                  check=True, capture_output=True, text=True).stdout
            yield name, text


def without_tests(text):
    return text.split("#[cfg(test)]\nmod tests")[0]


def functions(name, text):
    lines = text.splitlines()
    for i, line in enumerate(lines):
        found = FN.match(line)
        if not found:
            continue
        indent = found.group(1)
        for j in range(i, len(lines)):
            if lines[j] == indent + "}" or (j == i and line.rstrip().endswith("}")):
                yield j - i + 1, f"{name}:{i + 1} {found.group(6)}"
                break


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    rev = sys.argv[2] if len(sys.argv) > 2 else None
    files, fns = [], []
    for name, text in sources(rev):
        code = without_tests(text)
        files.append((len(code.splitlines()), name))
        fns.extend(functions(name, code))
    print(f"largest files (lines, tests left out){' at ' + rev if rev else ''}:")
    for size, name in sorted(files, reverse=True)[:count]:
        print(f"  {size:5}  {name}")
    print("largest functions (lines):")
    for size, name in sorted(fns, reverse=True)[:count]:
        print(f"  {size:5}  {name}")


if __name__ == "__main__":
    main()
