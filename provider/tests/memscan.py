#!/usr/bin/env python3
"""Where a private key's bytes lie in another process.

memscan.py PID KEY.pem...: reads every mapping of PID through
/proc/PID/mem (as root; this bypasses protection keys and page
permissions), only its resident or swapped pages (/proc/PID/pagemap), and
counts, for each key, the hits of its private components (the EC scalar,
the Ed25519 seed, RSA's d, p and q: a slice from the middle of each, in
both byte orders, since a BIGNUM keeps its words least significant first)
and of its PEM text inside pkalloc domain reservations and outside them.
A reservation is a 4 GiB region, aligned to its size, mapped whole by
anonymous mappings (pkalloc(7), "Memory layout").  Prints one line per
key, "KEY inside N outside M", and each outside hit; exit 0, or 2 where
the process cannot be read.
"""
import base64
import os
import re
import subprocess
import sys

RES = 1 << 32
SLICE = 24
PAGE = os.sysconf("SC_PAGE_SIZE")


def secrets_of(path):
    """The private components of a key file, big-endian, leading zeros off."""
    text = subprocess.run(["openssl", "pkey", "-in", path, "-text", "-noout"],
                          env=dict(os.environ, OPENSSL_CONF="/dev/null"),
                          check=True, capture_output=True, text=True).stdout
    vals, cur = [], None
    for line in text.splitlines():
        if re.match(r"^(priv|privateExponent|prime1|prime2):\s*$", line):
            cur = []
            vals.append(cur)
        elif cur is not None and re.match(r"^\s+[0-9a-f]{2}(:[0-9a-f]{2})*:?\s*$", line):
            cur.append(line.strip().rstrip(":"))
        else:
            cur = None
    out = [bytes.fromhex(":".join(v).replace(":", "")).lstrip(b"\0") for v in vals]
    if not out or any(len(v) < 16 for v in out):
        sys.exit("memscan: no private components in %s" % path)
    return out


def needles_of(path):
    needles = []
    secrets = secrets_of(path)
    for v in secrets:
        off = len(v) // 2 if len(v) > 2 * SLICE else max(len(v) - SLICE, 0)
        needles += [v[off:off + SLICE], v[::-1][off:off + SLICE]]
    # The PEM text: the first characters of a base64 line that encode
    # only bytes of a private component.
    pem = open(path).read().split("-----")[2]
    lines = pem.split()
    der = base64.b64decode("".join(lines))
    for v in secrets:
        at = der.find(v)
        for j in range(len(lines)):
            if at >= 0 and 48 * j >= at and 48 * j + 18 <= at + len(v):
                needles.append(lines[j][:SLICE].encode())
                break
    return needles


def mappings(pid):
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            out.append((lo, hi, path, line.rstrip("\n")))
    return out


def reservations(maps):
    """Bases of the 4 GiB aligned regions that anonymous mappings cover whole."""
    bases = set()
    for lo, hi, path, _ in maps:
        if path == "" and hi - lo >= 2 * 1024 * 1024:
            bases.add(lo & ~(RES - 1))
    whole = set()
    for base in bases:
        at = base
        for lo, hi, path, _ in maps:
            if hi <= at or lo >= base + RES:
                continue
            if lo > at or path != "":
                break
            at = hi
        if at >= base + RES:
            whole.add(base)
    return whole


def resident_runs(pid, lo, hi):
    """Runs [start, end) of pages present or swapped, from pagemap."""
    n = (hi - lo) // PAGE
    with open("/proc/%d/pagemap" % pid, "rb") as f:
        f.seek(lo // PAGE * 8)
        data = f.read(n * 8)
    top = data[7::8].translate(bytes(1 if b & 0xC0 else 0 for b in range(256)))
    for m in re.finditer(b"\x01+", top):
        yield lo + m.start() * PAGE, lo + m.end() * PAGE


def main():
    pid = int(sys.argv[1])
    keys = sys.argv[2:]
    needles = {k: needles_of(k) for k in keys}
    try:
        maps = mappings(pid)
        mem = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    except OSError as e:
        print("memscan: cannot read process %d: %s" % (pid, e), file=sys.stderr)
        return 2
    domains = reservations(maps)
    inside = {k: 0 for k in keys}
    outside = {k: 0 for k in keys}
    read = 0
    chunk = 1 << 20
    for lo, hi, path, line in maps:
        if path in ("[vvar]", "[vsyscall]"):
            continue
        for rlo, rhi in resident_runs(pid, lo, hi):
            at = rlo
            while at < rhi:
                want = min(chunk + 64, rhi - at)
                try:
                    buf = os.pread(mem, want, at)
                except OSError:
                    at += chunk
                    continue
                read += len(buf)
                for k in keys:
                    for nd in needles[k]:
                        i = buf.find(nd)
                        while 0 <= i < chunk:
                            addr = at + i
                            if addr & ~(RES - 1) in domains:
                                inside[k] += 1
                            else:
                                outside[k] += 1
                                print("  %s: outside a domain at %#x in %s" % (k, addr, line))
                            i = buf.find(nd, i + 1)
                at += chunk
    if read == 0:
        print("memscan: read nothing of process %d" % pid, file=sys.stderr)
        return 2
    for k in keys:
        print("%s inside %d outside %d (%d domain reservations, %d MiB read)"
              % (k, inside[k], outside[k], len(domains), read >> 20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
