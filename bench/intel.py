"""Memory and lookup time of an imported reputation list of a million entries.

Builds a list of ``--entries`` entries (default 1,000,000: 90% single IPv4 addresses,
9% IPv4 networks /16../28, 1% IPv6 /48 networks; seeded, so every run builds the same
list), writes it as a FireHOL-style netset, and measures:

* parsing the text and merging it into an :class:`~pynomaly_security.intel.IPRangeSet`;
* the bytes a worker keeps per list (the four arrays) and the traced allocation of
  the set, the size it is stored with (compressed, base64), and the time a worker
  takes to decode it when the list changed;
* a lookup, as the middleware does it: the address text to a key (``ip_key``) and a
  bisect (``IPRangeSet.contains``), for addresses on the list and random ones; and
  the whole :meth:`DecisionIndex.lookup` of a request with that list in force.

Usage::

    python bench/intel.py [--entries 1000000] [--lookups 200000]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import time
import tracemalloc

from pynomaly_security.decisions.index import DecisionIndex
from pynomaly_security.intel import IPRangeSet, parse_list
from pynomaly_security.intel.store import IntelList


def make_list(entries: int, rng: random.Random) -> list[str]:
    lines = ["# bench list (synthetic)", "#"]
    for n in range(entries):
        kind = n % 100
        if kind < 90:
            lines.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        elif kind < 99:
            prefix = rng.randint(16, 28)
            net = ipaddress.IPv4Network((rng.getrandbits(32), prefix), strict=False)
            lines.append(str(net))
        else:
            net6 = ipaddress.IPv6Network((0x20010DB8 << 96 | rng.getrandbits(96), 48), strict=False)
            lines.append(str(net6))
    return lines


def per_call(func: object, items: list[str], rounds: int = 3) -> float:
    """Best of ``rounds`` of the mean seconds per call of ``func(item)``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for item in items:
            func(item)  # type: ignore[operator]
        best = min(best, (time.perf_counter() - start) / len(items))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(16)
    lines = make_list(args.entries, rng)

    start = time.perf_counter()
    parsed = parse_list(lines)
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    ranges = IPRangeSet(parsed)
    build_s = time.perf_counter() - start
    # Traced apart from the timing (tracing slows every allocation).
    tracemalloc.start()
    again = IPRangeSet(parsed)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again
    del parsed
    dumped = ranges.dump()
    stored = len(json.dumps(dumped))
    start = time.perf_counter()
    IPRangeSet.load(dumped)
    load_s = time.perf_counter() - start

    listed = [line for line in lines[2:] if "/" not in line]
    on_list = [rng.choice(listed) for _ in range(args.lookups)]
    random_ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(args.lookups)]
    hit = per_call(ranges.contains, on_list)
    miss = per_call(ranges.contains, random_ips)
    index = DecisionIndex.build(
        [], {"bench": IntelList("bench", "ban", 0.0, 4e9, ranges.entries, ranges, "r")}, now=1.0
    )
    pairs = [("route", "/items")]
    whole = per_call(lambda ip: index.lookup([*pairs, ("ip", ip)], ip, 1.0), random_ips)

    print(f"entries             {ranges.entries:>12,}")
    print(f"merged ranges       {len(ranges):>12,}")
    print(f"parse               {parse_s:>12.2f} s")
    print(f"merge into arrays   {build_s:>12.2f} s")
    print(f"peak while merging  {peak / 2**20:>12.1f} MiB (traced: the import, not the workers)")
    print(f"kept per worker     {ranges.nbytes() / 2**20:>12.2f} MiB (the four arrays)")
    print(f"stored document     {stored / 2**20:>12.2f} MiB (zlib + base64)")
    print(f"load on a worker    {load_s * 1e3:>12.1f} ms (decode the stored arrays)")
    print(f"lookup, on list     {hit * 1e6:>12.2f} µs (text -> key -> bisect)")
    print(f"lookup, random IPv4 {miss * 1e6:>12.2f} µs")
    print(f"index.lookup        {whole * 1e6:>12.2f} µs (a request's pairs + the list)")


if __name__ == "__main__":
    main()
