#!/usr/bin/env python3
"""Checks strata's include graph against its layers (docs/ARCHITECTURE.md draws the same table).

Reads every `#include "..."` line of the C++ files under the module folders, maps each file and
each included header to its module, and fails (exit 1, one line per problem: file:line, the
include and why) when
  - an include does not resolve from the one include root, the repository (a generated
    `X.pb.h` resolves when `X.proto` is there),
  - a module includes a module on a higher floor,
  - a module includes another module on its own floor without that pair being in ALLOWED,
  - the module graph or the file graph (header include chains) has a cycle.
Prints one OK line otherwise.

  scripts/check_layers.py            check (CTest runs this: Layers.IncludeGraph)
  scripts/check_layers.py --graph    also print the module edges found, one per line
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Module -> (folder, floor). Floor 0 is the ground floor; a module may include modules on lower
# floors only. A folder nested in another module's folder is its own module (the longest folder
# prefix wins), so agent/tokenizer is not agent.
MODULES = {
    "core": ("core", 0),
    "data": ("data", 1),
    "retrieval": ("retrieval", 2),
    "tokenizer": ("agent/tokenizer", 2),
    "gguf": ("agent/gguf", 2),
    "world": ("env/world", 2),
    "dense": ("retrieval/dense", 3),
    "env": ("env", 3),
    "agent": ("agent", 3),
    "eval": ("eval", 4),
    "rl": ("rl", 5),
    "programs": ("src", 6),
    "bench": ("bench", 6),
    "tests": ("tests", 7),
}

# Includes between two modules of the same floor that are allowed, as (from, to). None today:
# the modules of one floor do not know each other (agent and env meet only in rl).
ALLOWED = set()

SOURCE_EXTENSIONS = (".h", ".hpp", ".cpp", ".cc")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def module_of(path):
    """The module owning a repository-relative path, or None when no module folder holds it."""
    best = None
    for name, (folder, _) in MODULES.items():
        if path == folder or path.startswith(folder + "/"):
            if best is None or len(folder) > len(MODULES[best][0]):
                best = name
    return best


def resolves(include):
    if os.path.isfile(os.path.join(ROOT, include)):
        return True
    if include.endswith(".pb.h"):  # generated into build/gen/<same path> from the .proto
        return os.path.isfile(os.path.join(ROOT, include[: -len(".pb.h")] + ".proto"))
    return False


def source_files():
    for name, (folder, _) in sorted(MODULES.items()):
        top = os.path.join(ROOT, folder)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(SOURCE_EXTENSIONS):
                    rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                    if module_of(rel) == name:
                        yield rel


def find_cycle(graph):
    """One cycle of a directed graph {node: set(nodes)} as a list of nodes, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {n: WHITE for n in graph}
    for start in sorted(graph):
        if colour[start] != WHITE:
            continue
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        colour[start] = GREY
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = BLACK
                stack.pop()
                path.pop()
            elif colour.get(child, WHITE) == GREY:
                return path[path.index(child):] + [child]
            elif colour.get(child, WHITE) == WHITE:
                colour[child] = GREY
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def main(argv):
    show_graph = "--graph" in argv[1:]
    problems = []
    files = list(source_files())
    file_graph = {f: set() for f in files}
    module_edges = {}  # (from, to) -> first "file:line"
    n_includes = 0
    for rel in files:
        src_mod = module_of(rel)
        src_floor = MODULES[src_mod][1]
        with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                n_includes += 1
                inc = m.group(1)
                where = f"{rel}:{lineno}: #include \"{inc}\""
                if not resolves(inc):
                    problems.append(f"{where}: does not resolve from the include root (the "
                                    "repository); write it from there")
                    continue
                if os.path.isfile(os.path.join(ROOT, inc)):
                    file_graph[rel].add(inc)
                dst_mod = module_of(inc)
                if dst_mod is None:
                    problems.append(f"{where}: {inc} is in no module folder")
                    continue
                if dst_mod == src_mod:
                    continue
                module_edges.setdefault((src_mod, dst_mod), f"{rel}:{lineno}")
                dst_floor = MODULES[dst_mod][1]
                if dst_floor > src_floor:
                    problems.append(f"{where}: {src_mod} (floor {src_floor}) includes {dst_mod} "
                                    f"(floor {dst_floor}), a higher floor")
                elif dst_floor == src_floor and (src_mod, dst_mod) not in ALLOWED:
                    problems.append(f"{where}: {src_mod} includes {dst_mod} on its own floor "
                                    f"({src_floor}) and the pair is not in ALLOWED")

    module_graph = {m: set() for m in MODULES}
    for a, b in module_edges:
        module_graph[a].add(b)
    cycle = find_cycle(module_graph)
    if cycle:
        problems.append("module cycle: " + " -> ".join(cycle) + " (first include "
                        + module_edges[(cycle[0], cycle[1])] + ")")
    cycle = find_cycle(file_graph)
    if cycle:
        problems.append("include cycle: " + " -> ".join(cycle))

    if show_graph:
        for (a, b), where in sorted(module_edges.items(),
                                    key=lambda e: (-MODULES[e[0][0]][1], e[0])):
            print(f"{a} -> {b}   (e.g. {where})")
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"check_layers: FAILED, {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_layers: OK, {len(files)} files, {n_includes} includes, "
          f"{len(module_edges)} module edges, all downward, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
