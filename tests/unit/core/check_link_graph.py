#!/usr/bin/env python3
"""check_link_graph.py - fail when iotd's libraries link each other in a cycle.

Each folder of iotd/ is a static library (iotd_base, iotd_relay, iotd_session, ...), and a
module may depend only on modules below it: a cycle (relay links session, session links relay)
means two folders are one module in fact, and unit tests can no longer link one without the
other. CMake knows the graph: `cmake --graphviz` writes it as a dot file, read here.

  check_link_graph.py DOT_FILE
  check_link_graph.py --source DIR --build DIR [--cmake PATH]
      configure DIR into the scratch build DIR with --graphviz first (what the ctest does)

Exit 0 and the number of libraries and links checked, or 1 and every cycle found.
"""
import argparse
import re
import subprocess
import sys

PREFIX = "iotd_"


def read_graph(path):
    """The links among iotd_* targets: {name: set(names)}."""
    labels, edges = {}, []
    node = re.compile(r'^\s*"(\w+)"\s*\[\s*label\s*=\s*"([^"]+)"')
    edge = re.compile(r'^\s*"(\w+)"\s*->\s*"(\w+)"')
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = node.match(line)
            if m:
                labels[m.group(1)] = m.group(2)
                continue
            m = edge.match(line)
            if m:
                edges.append((m.group(1), m.group(2)))
    graph = {name: set() for name in labels.values() if name.startswith(PREFIX)}
    for a, b in edges:
        a, b = labels.get(a, ""), labels.get(b, "")
        if a in graph and b in graph:
            graph[a].add(b)
    return graph


def cycles(graph):
    """One cycle through each strongly connected group of more than one target (or a
    target linking itself), as lists of names."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                found.append(path_within(graph, set(group), v))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def path_within(graph, group, start):
    """A cycle from start back to start inside group (breadth first: the shortest)."""
    previous, queue = {}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & group):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return [start, start]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dot", nargs="?")
    parser.add_argument("--source")
    parser.add_argument("--build")
    parser.add_argument("--cmake", default="cmake")
    args = parser.parse_args()
    dot = args.dot
    if not dot:
        if not args.source or not args.build:
            parser.error("give a dot file, or --source and --build")
        dot = args.build + "/link_graph.dot"
        run = subprocess.run(
            [args.cmake, "-S", args.source, "-B", args.build, "--graphviz=" + dot],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            print("check_link_graph: cmake --graphviz failed", file=sys.stderr)
            return 1
    graph = read_graph(dot)
    if not graph:
        print(f"check_link_graph: no {PREFIX}* target in {dot}", file=sys.stderr)
        return 1
    found = cycles(graph)
    for cycle in found:
        print("link cycle: " + " -> ".join(cycle), file=sys.stderr)
    if found:
        return 1
    links = sum(len(targets) for targets in graph.values())
    print(f"check_link_graph: {len(graph)} libraries, {links} links among them, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
