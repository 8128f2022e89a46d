#!/usr/bin/env python3
"""loadtest/gate.py RESULTS [RESULTS...] BASELINE — the performance regression check (issue 16).

Compares the ratios of one loadtest run (results.txt: key=value, written by loadtest/run.sh), or
the best of several, with a baseline file (loadtest/baseline.txt; .ci/run checks its smoke run against it), where each
line is

    NAME  NUMERATOR  DENOMINATOR  BASELINE  TOLERANCE  CEILING

NUMERATOR and DENOMINATOR are keys of results.txt measured in the same run (rankd against one of
its references, on the same machine at the same time), so that a noisy machine moves both.
Every ratio is one where higher is better. The check fails when a ratio falls below
BASELINE x (1 - TOLERANCE), or when a figure is missing. A ratio above its own CEILING (a
third above the highest ratio its calibration runs saw) is no improvement: its reference
failed or slowed (pgbench once ran at a tenth of its speed and a ratio of 4.5 passed; an around
ratio of 1.76 against a baseline of 0.22 passed under the one ceiling of 8 x that every ratio
had), and the run cannot vouch for it: the check says so (SUSPECT) and exits 3, so that the
caller measures again. The baseline is changed on purpose, in the commit that says
why; loadtest/baseline.txt says how its figures and tolerances were set.
Prints one line per ratio; exit 0 pass, 1 fail, 2 usage, 3 a reference failed (and nothing fell
below its floor).

Given several runs, each ratio is judged by its best believed run (one not above the ceiling):
a ratio this VM halves from one run to the next (Redis's CPU per ZREVRANK doubles at times) fails
a single run now and then, and a regression fails every run. .ci/run measures a second run only
when the first did not pass, and judges both together.

loadtest/gate.py --calibrate BASELINE RESULTS... prints BASELINE's lines again with the figures
of those runs: the median ratio as the baseline, and a tolerance that puts the floor a quarter
below the lowest ratio of them all (so that none of those runs would have failed, with room for
noise they did not show), and a ceiling a third above the highest. Run the smoke at least ten
times for it.
"""
import statistics
import sys

# The calibration's margins: the floor at 0.75 x the lowest ratio seen, the ceiling at 1.33 x the
# highest (the same quarter of room on either side).
FLOOR_MARGIN = 0.75
CEILING_MARGIN = 1.33


def read_results(path):
    out = {}
    try:
        lines = open(path).readlines()
    except OSError as e:
        sys.exit(f"gate.py: cannot read {path}: {e.strerror}")
    for line in lines:
        k, sep, v = line.rstrip("\n").partition("=")
        if sep:
            out[k] = v
    return out


def ratios(results, num, den):
    try:
        return float(results[num]) / float(results[den])
    except (KeyError, ValueError, ZeroDivisionError):
        return None


def calibrate(baseline, paths):
    runs = [read_results(p) for p in paths]
    for line in open(baseline):
        spec = line.split("#", 1)[0].split()
        if len(spec) != 6:
            print(line.rstrip("\n"))
            continue
        name, num, den = spec[:3]
        xs = [x for x in (ratios(r, num, den) for r in runs) if x is not None]
        if len(xs) < len(runs):
            sys.exit(f"gate.py: {name} missing from {len(runs) - len(xs)} run(s)")
        med, low, high = statistics.median(xs), min(xs), max(xs)
        tol = 1 - FLOOR_MARGIN * low / med
        print(f"{name:<22} {num:<28} {den:<22} {med:8.3f} {tol:5.2f} {CEILING_MARGIN * high:7.3f}   "
              f"# {len(xs)} runs: min {low:.3f}, max {high:.3f}")
    return 0


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "--calibrate":
        return calibrate(sys.argv[2], sys.argv[3:])
    if len(sys.argv) < 3:
        print(__doc__.split("\n\n")[0], file=sys.stderr)
        return 2
    runs = [read_results(p) for p in sys.argv[1:-1]]
    failed = suspect = 0
    for line in open(sys.argv[-1]):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 6:
            print(f"gate.py: {sys.argv[-1]}: a line of {len(fields)} fields, not 6 "
                  "(NAME NUMERATOR DENOMINATOR BASELINE TOLERANCE CEILING): {line}", file=sys.stderr)
            return 2
        name, num, den, base, tol, ceiling = fields
        base, tol, ceiling = float(base), float(tol), float(ceiling)
        floor = base * (1 - tol)
        # (ratio, run) of every run that measured it; the ones above the ceiling are not believed
        seen = [(x, r) for x, r in ((ratios(r, num, den), r) for r in runs) if x is not None]
        if not seen:
            print(f"FAIL {name}: {num} / {den} not measured in this run")
            failed += 1
            continue
        believed = [xr for xr in seen if xr[0] <= ceiling]
        x, r = max(believed or seen, key=lambda xr: xr[0])
        of = f" (best of {len(seen)} runs)" if len(runs) > 1 else ""
        if not believed:
            suspect += 1
            print(f"SUSPECT {name}: {x:.3f}{of} (baseline {base:.3f}, floor {floor:.3f}, ceiling {ceiling:.3f}; "
                  f"{r[num]} / {r[den]}): above its ceiling, so its reference {den} failed or slowed; "
                  f"measure again")
            continue
        ok = x >= floor
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {x:.3f}{of} (baseline {base:.3f}, floor {floor:.3f}, "
              f"ceiling {ceiling:.3f}; "
              f"{r[num]} / {r[den]})")
    if failed:
        print(f"performance gate: {failed} ratio(s) below their floor")
        return 1
    if suspect:
        print(f"performance gate: {suspect} reference(s) failed; this run vouches for nothing")
        return 3
    print("performance gate: passed")
    return 0

if __name__ == "__main__":
    sys.exit(main())
