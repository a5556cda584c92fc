#!/usr/bin/env python3
"""The layers of src/: calls flow one way.

A module is a .c file and the .h of the same name (a header alone, such as
internal.h, is a module too).  Two graphs are read and both must be free of
cycles:

  * the include graph: module X depends on Y when a file of X has
    #include "Y.h";
  * the link graph, from the library's objects: X depends on Y when X's
    object uses a symbol that Y's object defines (names the C library
    also defines, such as malloc or mmap, are calls to the C library's
    interface, whichever object serves them, and are not counted).

And every link edge must be an include edge: a module calls only what a
header it includes declares, so reading the includes tells the truth.

Usage: layers.py SRCDIR [OBJDIR]   (without OBJDIR, the include graph only)
"""
import os
import re
import shlex
import subprocess
import sys


def module_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def include_graph(srcdir):
    graph = {}
    for name in sorted(os.listdir(srcdir)):
        if not name.endswith(('.c', '.h')):
            continue
        mod = module_of(name)
        graph.setdefault(mod, set())
        with open(os.path.join(srcdir, name)) as f:
            for line in f:
                m = re.match(r'\s*#\s*include\s+"([^"]+)\.h"', line)
                if m and m.group(1) != mod and os.path.exists(os.path.join(srcdir, m.group(1) + '.h')):
                    graph[mod].add(m.group(1))
    return graph


def nm(args):
    out = subprocess.run(shlex.split(os.environ.get('NM', 'nm')) + args, capture_output=True,
                         text=True, check=True).stdout
    return out.splitlines()


def libc_names():
    names = set()
    for lib in ('/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'):
        if os.path.exists(lib):
            for line in nm(['-D', '--defined-only', lib]):
                parts = line.split()
                if len(parts) >= 3:
                    names.add(parts[2].split('@')[0])
            return names
    sys.exit('layers.py: the C library was not found')


def link_graph(srcdir, objdir):
    prefix = 'libpkalloc_la-'
    objs = {module_of(n)[len(prefix):]: os.path.join(objdir, n)
            for n in os.listdir(objdir) if n.startswith(prefix) and n.endswith('.o')}
    # Only this build's: an object left by a source file since removed is not.
    objs = {m: p for m, p in objs.items() if os.path.exists(os.path.join(srcdir, m + '.c'))}
    if not objs:
        sys.exit('layers.py: no library object in %s' % objdir)
    defined, used = {}, {}
    for mod, path in objs.items():
        used[mod] = set()
        for line in nm([path]):
            parts = line.split()
            if len(parts) == 3 and parts[1] in 'TDBRCGSV':
                defined[parts[2]] = mod
            elif len(parts) == 2 and parts[0] == 'U':
                used[mod].add(parts[1])
    libc = libc_names()
    graph = {mod: {} for mod in objs}
    for mod, syms in used.items():
        for s in syms:
            if s in defined and defined[s] != mod and s not in libc:
                graph[mod].setdefault(defined[s], []).append(s)
    return graph


def find_cycle(graph):
    """A cycle as a list of modules, or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def main():
    srcdir = sys.argv[1]
    failed = False
    inc = include_graph(srcdir)
    cycle = find_cycle(inc)
    if cycle:
        print('include cycle: ' + ' -> '.join(cycle))
        failed = True
    else:
        print('include graph: %d modules, %d edges, no cycle' %
              (len(inc), sum(len(v) for v in inc.values())))
    if len(sys.argv) > 2:
        link = link_graph(srcdir, sys.argv[2])
        cycle = find_cycle(link)
        if cycle:
            print('link cycle: ' + ' -> '.join(
                '%s (%s)' % (a, ', '.join(sorted(link[a][b])[:3]))
                for a, b in zip(cycle, cycle[1:])) + ' -> ' + cycle[-1])
            failed = True
        else:
            print('link graph: %d modules, %d edges, no cycle' %
                  (len(link), sum(len(v) for v in link.values())))
        for a in sorted(link):
            for b in sorted(link[a]):
                if b not in inc.get(a, ()):
                    print('%s uses %s of %s without including %s.h' %
                          (a, ', '.join(sorted(link[a][b])[:3]), b, b))
                    failed = True
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
