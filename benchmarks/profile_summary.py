"""Top-N tables of a py-spy profile, so a profile can be read (and committed) as text.

    py-spy record --pid <server pid> --duration 15 --rate 100 --format raw --nonblocking -o server.txt
    python -m benchmarks.profile_summary server.txt [--top 25]

``--format raw`` writes collapsed stacks (``frame;frame;...;frame count``, outermost first). This
prints each function's share of the samples: *self* (it was the innermost frame: the cost is its own
code) and *inclusive* (it was anywhere on the stack: the cost of everything it called). Line numbers
are dropped, so a function's lines add up.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """``name (path:line)`` without the line; paths shortened to what follows site-packages."""
    frame = _LINE.sub(")", frame.strip())
    return frame.replace("site-packages/", "").split("/lib/python3.11/")[-1]


def summarize(lines: list[str], top: int) -> str:
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            anywhere[name] += count
    out = [f"total samples {total}", "--- self"]
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(top)]
    out.append("--- inclusive")
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in anywhere.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_summary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(summarize(args.profile.read_text().splitlines(), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
