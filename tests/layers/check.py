#!/usr/bin/env python3
"""Fails on any circle among the library's object files.

Object A depends on object B when A has an undefined symbol that B defines (from `nm`). The
layers (docs/DESIGN.md) call downward only, so this graph must have no cycle; a cycle is
printed with the symbols that close it. Usage: check.py OBJECT...
"""
import subprocess
import sys
from collections import defaultdict


def symbols(obj):
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def main(objs):
    name = {o: o.rsplit("/", 1)[-1].removesuffix(".o").removesuffix(".c") for o in objs}
    definer = {}
    info = {}
    for o in objs:
        d, u = symbols(o)
        info[o] = u
        for s in d:
            definer[s] = o
    edges = defaultdict(dict)  # a -> b -> one symbol
    for o, undefined in info.items():
        for s in sorted(undefined):
            t = definer.get(s)
            if t and t != o:
                edges[o].setdefault(t, s)
    # Tarjan's strongly connected components.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    sys.setrecursionlimit(10000)
    for o in objs:
        if o not in index:
            visit(o)
    circles = [c for c in comps if len(c) > 1]
    for c in circles:
        members = set(c)
        print("circle among: " + ", ".join(sorted(name[m] for m in c)))
        for a in sorted(c):
            for b, s in sorted(edges[a].items()):
                if b in members:
                    print(f"  {name[a]} -> {name[b]} ({s})")
    n_edges = sum(len(v) for v in edges.values())
    print(f"{len(objs)} objects, {n_edges} dependencies, {len(circles)} circles")
    ok = not circles and len(objs) > 1
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
