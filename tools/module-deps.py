#!/usr/bin/env python3
"""Lists which top-level modules of src/ use which (`crate::<module>` paths
outside test code), then any cycles among them. Run from the repository root:

    python3 tools/module-deps.py

Exit status 1 when there is a cycle, so CI can keep it at zero."""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
TOP = {p.stem for p in SRC.iterdir() if p.suffix == ".rs" or p.is_dir()} - {"main", "lib"}


def uses(text):
    text = text.split("#[cfg(test)]")[0]
    found = set(re.findall(r"\bcrate::([a-z_][a-z0-9_]*)", text))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        found |= set(re.findall(r"(?:^|[,\s{])([a-z_][a-z0-9_]*)", group))
    return found & TOP


graph = {m: set() for m in TOP}
for path in SRC.rglob("*.rs"):
    module = path.relative_to(SRC).parts[0].removesuffix(".rs")
    if module in graph:
        graph[module] |= uses(path.read_text(encoding="utf-8")) - {module}

for module in sorted(graph):
    print(f"{module:10} -> {', '.join(sorted(graph[module])) or '(nothing)'}")


def reaches(start, goal, seen=None):
    seen = seen if seen is not None else set()
    for nxt in graph[start]:
        if nxt == goal:
            return True
        if nxt not in seen:
            seen.add(nxt)
            if reaches(nxt, goal, seen):
                return True
    return False


cyclic = sorted(m for m in graph if reaches(m, m))
print(f"modules in a cycle: {', '.join(cyclic) if cyclic else 'none'}")
sys.exit(1 if cyclic else 0)
