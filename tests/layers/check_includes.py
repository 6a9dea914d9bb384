#!/usr/bin/env python3
"""Checks that every project #include in a library or binary names a header of a target that
the includer links (its whole link closure), using the targets' sources and link closures that
CMake wrote to layers.json. Exits 1 and lists each crossing; 0 when there is none."""
import json
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def main() -> int:
    src, layers_file = sys.argv[1], sys.argv[2]
    with open(layers_file, encoding="utf-8") as f:
        layers = json.load(f)
    # Which target owns each header: the target that compiles the .cpp of the same stem, else
    # the target that compiles most of the header's directory.
    owner = {}
    dir_owner = {}
    for target, info in layers.items():
        for s in info["sources"]:
            rel = os.path.relpath(s, src)
            stem = os.path.splitext(rel)[0]
            owner[stem + ".hpp"] = target
            d = os.path.dirname(rel)
            dir_owner.setdefault(d, {}).setdefault(target, 0)
            dir_owner[d][target] += 1
    def owner_of(header: str):
        if header in owner:
            return owner[header]
        d = os.path.dirname(header)
        while d:
            if d in dir_owner:
                return max(dir_owner[d].items(), key=lambda kv: kv[1])[0]
            d = os.path.dirname(d)
        return None

    problems = []
    checked = 0
    for target, info in layers.items():
        allowed = set(info["closure"])
        files = set()
        for s in info["sources"]:
            files.add(s)
            h = os.path.splitext(s)[0] + ".hpp"
            if os.path.exists(h):
                files.add(h)
        for path in sorted(files):
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for inc in INCLUDE.findall(text):
                if not os.path.exists(os.path.join(src, inc)):
                    continue  # generated (app/version.hpp) or another root (include/licentra)
                checked += 1
                o = owner_of(inc)
                if o is None:
                    problems.append(f"{os.path.relpath(path, src)}: {inc} belongs to no target")
                elif o != target and o not in allowed:
                    problems.append(f"{os.path.relpath(path, src)} ({target}) includes {inc} "
                                    f"({o}), which {target} does not link")
    for p in problems:
        print(p)
    print(f"{checked} includes checked across {len(layers)} targets, "
          f"{len(problems)} crossing the link graph")
    return 1 if problems or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
