"""loadtest/gate.py, the performance regression check .ci/run applies to the smoke run (issue 16):
it passes a run at or above every floor, fails one below a floor or missing a figure, and the
committed baseline is well-formed and names figures that run.sh records."""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GATE = os.path.join(ROOT, "loadtest", "gate.py")
BASELINE = os.path.join(ROOT, "loadtest", "baseline.txt")


def gate(tmp_path, results, baseline):
    r = tmp_path / "results.txt"
    b = tmp_path / "baseline.txt"
    r.write_text("".join("%s=%s\n" % kv for kv in results.items()))
    b.write_text(baseline)
    p = subprocess.run([sys.executable, GATE, str(r), str(b)], capture_output=True, text=True)
    return p.returncode, p.stdout


BASE = "# a comment\nfast  a.rps  ref.rps  2.0  0.25  3.0   # why\n"


def test_passes_at_and_above_the_floor(tmp_path):
    rc, out = gate(tmp_path, {"a.rps": "150", "ref.rps": "100"}, BASE)  # 1.5 = 2.0 x 0.75
    assert rc == 0, out
    assert "ok   fast: 1.500" in out and "performance gate: passed" in out


def test_fails_below_the_floor(tmp_path):
    rc, out = gate(tmp_path, {"a.rps": "149", "ref.rps": "100"}, BASE)
    assert rc == 1, out
    assert "FAIL fast: 1.490" in out and "1 ratio(s) below their floor" in out


def test_fails_when_a_figure_was_not_measured(tmp_path):
    rc, out = gate(tmp_path, {"ref.rps": "100"}, BASE)
    assert rc == 1 and "not measured" in out, out
    rc, out = gate(tmp_path, {"a.rps": "", "ref.rps": "0"}, BASE)
    assert rc == 1 and "not measured" in out, out


def test_a_ratio_above_its_own_ceiling_is_a_failed_reference(tmp_path):
    """Issue 29: pgbench once ran at a tenth of its speed and writes_vs_pgbench passed at 4.5 x
    its baseline. Issue 49: with one ceiling of 8 x for every ratio, a reference slowed 2-7 x
    still passed. Each ratio has its own ceiling; past it the run vouches for nothing: exit 3
    (.ci/run measures again)."""
    rc, out = gate(tmp_path, {"a.rps": "300", "ref.rps": "100"}, BASE)  # 3.0: at its ceiling, believed
    assert rc == 0 and "ok   fast: 3.000" in out, out
    rc, out = gate(tmp_path, {"a.rps": "301", "ref.rps": "100"}, BASE)  # a reference 1.5 x slower
    assert rc == 3, out
    assert "SUSPECT fast: 3.010" in out and "its reference ref.rps failed or slowed" in out, out
    assert "1 reference(s) failed" in out
    # A ratio below its floor is a failure whatever else the run says.
    two = BASE + "slow  b.rps  ref.rps  1.0  0.25  2.0\n"
    rc, out = gate(tmp_path, {"a.rps": "1700", "b.rps": "10", "ref.rps": "100"}, two)
    assert rc == 1 and "FAIL slow" in out and "SUSPECT fast" in out, out


def test_several_runs_judge_each_ratio_by_its_best_believed_run(tmp_path):
    """.ci/run measures a second run when the first did not pass: each ratio is judged by the
    better of the two, so a ratio the VM halved in one run passes, and one below the floor in
    both fails. A run whose reference failed (above the ceiling) is not the best of anything."""
    b = tmp_path / "baseline.txt"
    b.write_text(BASE + "slow  b.rps  ref.rps  1.0  0.25  2.0\n")

    def runs(*figures):
        paths = []
        for i, f in enumerate(figures):
            p = tmp_path / ("run%d.txt" % i)
            p.write_text("".join("%s=%s\n" % kv for kv in f.items()))
            paths.append(str(p))
        p = subprocess.run([sys.executable, GATE] + paths + [str(b)], capture_output=True, text=True)
        return p.returncode, p.stdout

    low = {"a.rps": "100", "b.rps": "100", "ref.rps": "100"}    # fast 1.0: below its floor of 1.5
    good = {"a.rps": "180", "b.rps": "90", "ref.rps": "100"}
    rc, out = runs(low, good)
    assert rc == 0, out
    assert "ok   fast: 1.800 (best of 2 runs)" in out and "ok   slow: 1.000 (best of 2 runs)" in out
    rc, out = runs(low, {"a.rps": "140", "b.rps": "100", "ref.rps": "100"})
    assert rc == 1 and "FAIL fast: 1.400 (best of 2 runs)" in out, out
    # the first run's reference failed (fast at 20, past its ceiling of 3), the second's did not
    broken = {"a.rps": "2000", "b.rps": "100", "ref.rps": "100"}
    rc, out = runs(broken, low)
    assert rc == 1 and "FAIL fast: 1.000" in out, out
    rc, out = runs(broken, good)
    assert rc == 0 and "ok   fast: 1.800" in out, out
    rc, out = runs(broken, broken)
    assert rc == 3 and "SUSPECT fast: 20.000 (best of 2 runs)" in out, out


def test_a_baseline_line_without_its_ceiling_is_refused(tmp_path):
    rc, out = gate(tmp_path, {"a.rps": "150", "ref.rps": "100"}, "fast  a.rps  ref.rps  2.0  0.25\n")
    assert rc == 2, out


def test_calibrate_sets_median_and_a_floor_below_every_run(tmp_path):
    runs = []
    for i, x in enumerate([100, 120, 110, 90, 130]):
        p = tmp_path / ("r%d.txt" % i)
        p.write_text("a.rps=%d\nref.rps=100\n" % x)
        runs.append(str(p))
    b = tmp_path / "baseline.txt"
    b.write_text(BASE)
    out = subprocess.run([sys.executable, GATE, "--calibrate", str(b)] + runs,
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("# a comment\n")
    name, num, den, base, tol, ceiling = out.splitlines()[1].split("#")[0].split()
    assert (name, num, den, float(base)) == ("fast", "a.rps", "ref.rps", 1.1)
    floor = float(base) * (1 - float(tol))
    assert 0.9 * 0.74 < floor < 0.9 * 0.76   # a quarter below the lowest run, 0.9
    assert 1.3 * 1.32 < float(ceiling) < 1.3 * 1.34  # a third above the highest, 1.3
    for i in range(5):   # none of the calibrating runs fails the floor it set
        b.write_text(out)
        rc = subprocess.run([sys.executable, GATE, runs[i], str(b)], capture_output=True).returncode
        assert rc == 0


def test_committed_baseline_names_figures_run_sh_records():
    """Each ratio of the committed baseline is well-formed and made of a scenario run.sh runs
    (`want NAME`) and a figure it records for every scenario or for that kind of scenario."""
    run_sh = open(os.path.join(ROOT, "loadtest", "run.sh")).read()
    scenarios = set(re.findall(r"\bwant ([a-z0-9_]+)", run_sh))
    # every scenario records .rps; scores:batch scenarios .subs_per_s, pgbench ones .rows_per_s;
    # write_rounds scenarios (`write_rounds NAME ...`) .rankd and .pg; rate_rounds ones .a and .b;
    rounds = set(re.findall(r"^\s*write_rounds ([a-z0-9_]+) ", run_sh, re.M))
    assert rounds, "run.sh calls write_rounds"
    rates = set(re.findall(r"^\s*rate_rounds ([a-z0-9_]+) ", run_sh, re.M))
    assert rates, "run.sh calls rate_rounds"
    # the writes' CPU rounds (write_cpu_rounds, scenario wcpu): .lone, .batch, .mix and .pg
    cpu = {"wcpu"} if re.search(r"^\s*write_cpu_rounds$", run_sh, re.M) else set()
    assert cpu, "run.sh calls write_cpu_rounds"
    fields = {"rps": scenarios, "subs_per_s": {"writes_batch"}, "rows_per_s": {"pg_upsert1", "pg_upsert1000"},
              "rankd": rounds, "pg": rounds | cpu, "a": rates, "b": rates, "lone": cpu, "batch": cpu, "mix": cpu}
    lines = [ln.split("#", 1)[0].split() for ln in open(BASELINE)]
    lines = [ln for ln in lines if ln]
    assert len(lines) >= 6
    for name, num, den, base, tol, ceiling in lines:
        assert float(base) > 0 and 0 < float(tol) < 1 and float(ceiling) > float(base), name
        for key in (num, den):
            scen, field = key.split(".", 1)
            assert scen in scenarios and scen in fields.get(field, ()), key
