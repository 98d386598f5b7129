#!/usr/bin/env python3
"""Finds import cycles between the files of one crate's src folder (serving/src, stream/src): every
`crate::`/`super::` path (in `use` lines and inline, outside comments and test modules) and paths
into declared child modules. Run by scripts/test.sh for serving and stream (issue #20: modules
import one way only).
Usage: python3 scripts/import_cycles.py SRC_DIR [-v]; exits 1 and names each cycle."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'serving/src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(d, f)
            files[os.path.relpath(p, root)] = open(p).read()

def modpath(rel):
    parts = rel[:-3].split('/')
    if parts[-1] in ('mod', 'lib'):
        parts = parts[:-1]
    return parts

def resolve(segs):
    # longest prefix that names a file
    for n in range(len(segs), 0, -1):
        base = '/'.join(segs[:n])
        for cand in (base + '.rs', base + '/mod.rs'):
            if cand in files:
                return cand
    return 'lib.rs'

edges = {}
for rel, text in files.items():
    me = modpath(rel)
    out = set()
    code = '\n'.join(l.split('//')[0] for l in text.split('\n'))
    code = code.split('#[cfg(test)]')[0]
    for m in re.finditer(r'\b(crate|super)((?:::\w+)*)::\{([^}]*)\}', code):
        for item in m.group(3).split(','):
            item = item.strip().split(' ')[0].split('::')[0]
            if not item or item == 'self':
                segs = m.group(2).strip(':').split('::') if m.group(2) else []
            else:
                segs = (m.group(2).strip(':').split('::') if m.group(2) else []) + [item]
            if m.group(1) == 'super':
                segs = me[:-1] + segs
            t = resolve(segs) if segs else 'lib.rs'
            if t != rel:
                out.add(t)
    for m in re.finditer(r'\b(crate|super)((?:::\w+)+)', code):
        segs = m.group(2).strip(':').split('::')
        if m.group(1) == 'super':
            base = me[:-1] if not rel.endswith('mod.rs') else me[:-1]
            segs = base + segs
        t = resolve(segs)
        if t != rel:
            out.add(t)
    # `mod x;` children are not imports; relative `use x::` inside a mod.rs is
    if rel.endswith('mod.rs') or rel == 'lib.rs':
        for m in re.finditer(r'^use (\w+)::', code, re.M):
            name = m.group(1)
            t = resolve(me + [name])
            if t != rel and name not in ('std', 'axum', 'sqlx', 'tokio', 'chrono', 'serde', 'playsource_domain'):
                if t != 'lib.rs':
                    out.add(t)
    # inline paths into declared child modules (`load::read(..)` in replica/mod.rs)
    for m in re.finditer(r'^\s*(?:pub(?:\(crate\))? )?mod (\w+);', code, re.M):
        child = m.group(1)
        if re.search(r'(?<![\w:])' + child + r'::', code):
            out.add(resolve(me + [child]))
    edges[rel] = out

# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(edges):
    if v not in index: strong(v)
if '-v' in sys.argv:
    for v in sorted(edges):
        print(v, '->', ' '.join(sorted(edges[v])))
for c in sccs:
    print('cycle:', ' '.join(c))
sys.exit(1 if sccs else 0)
