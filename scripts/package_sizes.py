"""Each function's package as `sam deploy` uploads it: its build folder zipped with deflate (as
SAM's zip does) in memory, and its bootstrap's size. Prints a table and checks the 5 MB goal
(docs/benchmarks.md, "Packages and cold starts"); never fails on it: sizes are figures, not assertions.

    python scripts/package_sizes.py .aws-sam/build
"""

import io
import os
import sys
import zipfile

GOAL_MIB = 5.0


def zipped_size(folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                path = os.path.join(root, name)
                archive.write(path, os.path.relpath(path, folder))
    return buffer.tell()


def main():
    build = sys.argv[1]
    functions = sorted(
        name for name in os.listdir(build) if os.path.isfile(os.path.join(build, name, "bootstrap"))
    )
    if not functions:
        sys.exit(f"{build}: no function built")
    mib = 1024 * 1024
    print(f"{'function':<28} {'bootstrap':>11} {'zip':>9}")
    largest = 0
    for name in functions:
        bootstrap = os.path.getsize(os.path.join(build, name, "bootstrap"))
        size = zipped_size(os.path.join(build, name))
        largest = max(largest, size)
        print(f"{name:<28} {bootstrap / mib:>7.2f} MiB {size / mib:>5.2f} MiB")
    verdict = "within" if largest / mib <= GOAL_MIB else "OVER"
    print(
        f"{len(functions)} functions; largest zip {largest / mib:.2f} MiB ({largest:,} bytes): "
        f"{verdict} the {GOAL_MIB:.0f} MiB goal"
    )


if __name__ == "__main__":
    main()
