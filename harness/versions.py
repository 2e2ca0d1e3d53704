"""Framework upgrades: releases of one framework compared at one commit, by exact cost and by time.

    python -m harness.versions numba 0.67.0 0.68.0 0.68.1 [--pin numpy==2.1.3] [--measure cost,time]

One asv environment per release (oldest first; each is compared with the last), holding that
framework, its control (CONTROLS) and the harness's packages, each at its reference pin unless
--pin says otherwise; nothing else, so building one takes seconds to a minute, not the main
environment's minutes. Each release is counted under valgrind (benchmarks/cost.py) and timed at
both thread settings, with only the variants of those frameworks selected. The results land in
the ordinary results dir, so the dashboard shows each release as its own series and the report
finds the comparison there again (upgrades()): the environments of one commit whose packages
differ in one framework's versions only.

Verdicts. Cost: instructions per step beyond COST_THRESHOLD, or estimated cycles beyond
CYCLES_THRESHOLD, is a change (see the thresholds for the A/A figures behind them). Time: asv's
rule, a change only where the two 99% confidence intervals do not overlap. The control's rows
are the spread of a comparison in which nothing of theirs changed.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

from benchmarks import settings
from benchmarks.common import N_SAMPLES
from benchmarks.cost import CACHE
from linreg_kernels import FRAMEWORKS, backend_class, backends_on

from . import machine as machines
from . import results as R

HARNESS_PACKAGES = ("setuptools", "threadpoolctl", "asv_runner")
# What each framework's environment holds besides it: numpy makes every variant's problem, so it
# is in all of them; a numpy upgrade is controlled by numba, whose kernels call no numpy code.
CONTROLS = {"numpy": ("numba",)}
DEFAULT_CONTROL = ("numpy",)
# The A/A figures (docs/findings.md, one checkout, a CPU hog beside the second run): instructions
# per step moved at most 0.10% at any point, so 1% is ten times that. Estimated cycles moved less
# than 0.5% wherever X leaves room in the simulated last level, and up to 2.8% on another host
# CPU, so 3% there. Where X fills more than half of it (d = 100 float64: 8,000,000 of 8,388,608
# bytes), any change of memory layout moves them (5.35% in the A/A, 11% for numpy when only
# numba's release differed): there the cycles are shown but give no verdict.
COST_THRESHOLD = 0.01
CYCLES_THRESHOLD = 0.03
LAST_LEVEL_BYTES = int(next(c for c in CACHE if c.startswith("--LL=")).split("=")[1].split(",")[0])
# A framework with no comparison, and why (the report says so in its upgrade summary).
NOT_COMPARED = {"torch": "only torch 2.13.0's CPU build lies on this machine's disk; every other release pip finds "
                         "is a CUDA build (torch 2.12.0: nvidia-cublas and 14 other nvidia- packages, several GB)"}
MEASURES = ("cost", "time")
VERSION = r"[0-9][0-9A-Za-z.+!-]*"  # what a release number may hold (nothing a shell or a regex acts on)


def frameworks_in(framework):
    return (framework, *CONTROLS.get(framework, DEFAULT_CONTROL))


def variants_of(frameworks):
    """The registered CPU variants that run on any of `frameworks`, in the registry's order."""
    return [v for v in backends_on("cpu") if backend_class(v).framework in frameworks]


def matrix(root, framework, versions, pins=()):
    """asv's matrix for the comparison: {package: [versions]}. `pins`: ["package==version"]
    overriding a reference pin of the other packages (a release that needs an older numpy)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    if len(versions) < 2 or len(set(versions)) != len(versions):
        raise ValueError(f"give at least two different versions of {framework}, got {versions}")
    bad = [v for v in versions if not re.fullmatch(VERSION, v)]
    if bad:
        raise ValueError(f"not a version number: {bad}")
    reference = json.loads((Path(root) / "asv.conf.json").read_text())["matrix"]["req"]
    packages = [p for f in frameworks_in(framework) for p in FRAMEWORKS[f]]
    req = {p: reference[p] for p in reference if p in HARNESS_PACKAGES or p in packages}
    for package in FRAMEWORKS[framework]:
        req[package] = list(versions)
    for pin in pins:
        package, _, version = pin.partition("==")
        if package not in req or package in FRAMEWORKS[framework] or not re.fullmatch(VERSION, version):
            raise ValueError(f"--pin {pin!r}: expected PACKAGE==VERSION for one of "
                             f"{', '.join(p for p in req if p not in FRAMEWORKS[framework])}")
        req[package] = [version]
    return req


def environments(framework, req):
    """{version: {package: version}}: the packages of each release's environment."""
    fixed = {p: v[0] for p, v in req.items() if p not in FRAMEWORKS[framework]}
    return {v: {**fixed, **{p: v for p in FRAMEWORKS[framework]}} for v in req[next(iter(FRAMEWORKS[framework]))]}


def write_config(root, framework, versions, pins=()):
    """An asv config like asv.conf.json, with the comparison's matrix (one environment per release)."""
    req = matrix(root, framework, versions, pins)
    root = Path(root).resolve()
    conf = json.loads((root / "asv.conf.json").read_text())
    for key in ("benchmark_dir", "results_dir", "env_dir", "html_dir"):
        conf[key] = str(root / conf[key])  # asv resolves paths from the config file's folder
    conf["repo"] = str(root)
    conf["matrix"] = {"req": req}
    packages = list(FRAMEWORKS[framework])
    # Companion packages (jax/jaxlib) move together: every mismatched pair is excluded.
    conf["exclude"] = [{"req": {packages[0]: re.escape(a) + "$", other: re.escape(b) + "$"}}
                       for other in packages[1:] for a in versions for b in versions if a != b]
    path = root / ".asv" / f"versions-{framework}.conf.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(conf, indent=2))
    return path


def install_problem(packages, python=sys.executable):
    """Why pip cannot install `packages` ({package: version}) together here (None if it can):
    an unknown release, none for this Python, a conflict, or a CUDA build of several GB."""
    spec = [f"{p}=={v}" for p, v in packages.items()]
    out = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                          "--report", "-", *spec], capture_output=True, text=True)
    if out.returncode != 0:
        said = [line.split(" (from versions:")[0] for line in out.stderr.splitlines() if line.startswith("ERROR: ")
                and not line.startswith(("ERROR: Ignored", "ERROR: ResolutionImpossible"))]
        # pip lists the releases it skipped for their Requires-Python; name the one asked for.
        python = [f"{p} {v} requires Python {m.group(1)} (this is {sys.version.split()[0]})" for p, v in packages.items()
                  for m in [re.search(rf"[: ]{re.escape(v)} Requires-Python ([^;\n]+)", out.stderr)] if m]
        return f"pip cannot install {' '.join(spec)}: " + " ".join(python + said or out.stderr.strip().splitlines()[-1:])
    cuda = sorted(i["metadata"]["name"] for i in json.loads(out.stdout)["install"]
                  if i["metadata"]["name"].lower().startswith("nvidia-"))
    if cuda:
        return (f"{' '.join(spec)} is a CUDA build (pip would install {', '.join(cuda[:3])} and {len(cuda) - 3} more, "
                "several GB); only a CPU build is compared here")
    return None


# What a comparison reads (harness.report's tables read more of a run than an upgrade needs).
TRACKS = {"cost": {"CpuCost": ["instructions", "estimated_cycles", "fixed_instructions"]},
          "time": {"CpuFit": ["steady_state", "best"]}}


def selection(measure, variants, environ=os.environ):
    """asv's -b regex: the tracks a comparison reads, of `variants`, at the points the
    environment's grid subset (settings.SUBSET_ENV_VARS) selects."""
    subset = {o: environ[var] for o, var in settings.SUBSET_ENV_VARS.items() if environ.get(var)}
    return settings.selection_regex({**subset, "variants": ",".join(variants)}, False, (measure,), TRACKS[measure])


# --- reading a comparison back from the results ------------------------------------------------

def version_key(version):
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.+-]", version))


def comparisons(results_dir, machine):
    """[(framework, commit, {version: Run})] on `machine`: the environments of one commit whose
    packages are a framework, its control and the harness, and which differ in that framework's
    versions only. (numba's comparison and numpy's hold the same packages: numba's releases at
    numpy's pin are one comparison, numpy's releases at numba's pin another.)"""
    groups = {}
    for run in R.runs(results_dir, machine):
        groups.setdefault((run.commit, frozenset(run.versions)), []).append(run)
    found = []
    for (commit, names), runs in groups.items():
        for framework, packages in FRAMEWORKS.items():
            if names != {p for f in frameworks_in(framework) for p in FRAMEWORKS[f]} | set(HARNESS_PACKAGES):
                continue
            by_others = {}
            for run in runs:
                others = frozenset((p, v) for p, v in run.versions.items() if p not in packages)
                by_others.setdefault(others, {}).setdefault(run.versions[next(iter(packages))], []).append(run)
            for by_version in by_others.values():
                if len(by_version) >= 2:
                    found.append((framework, commit, {
                        v: max(rs, key=lambda r: (r.measured(), r.date))
                        for v, rs in sorted(by_version.items(), key=lambda i: version_key(i[0]))}))
    return sorted(found, key=lambda c: (c[0], c[1]))


def at_cache_edge(dim, dtype):
    """Whether X fills more than half of the simulated last level (CYCLES_THRESHOLD's note)."""
    return N_SAMPLES * dim * (8 if dtype == "float64" else 4) > LAST_LEVEL_BYTES / 2


def cost_verdict(instructions, cycles, edge):
    if abs(instructions - 1) > COST_THRESHOLD:
        return "changed"
    if not edge and abs(cycles - 1) > CYCLES_THRESHOLD:
        return "cycles changed"
    return "same"


def time_verdict(a, b):
    """asv's rule where it has no samples: a change only if the two 99% confidence intervals do
    not overlap."""
    if a["ci"] is None or b["ci"] is None:
        return "no interval"
    if a["ci"][1] >= b["ci"][0] and a["ci"][0] <= b["ci"][1]:
        return "within noise"
    return "slower" if b["value"] > a["value"] else "faster"


def rows(framework, cost_runs, time_runs, old, new):
    """One dict per (variant, dim, dtype) that both releases hold in either measure: cost ratios
    and verdict (None where not counted), the time and verdict at each thread setting (where
    timed), and whether it is a control row."""
    out = {}
    held = frameworks_in(framework)

    def row(variant, dim, dtype):
        key = (variant, dim, dtype)
        if key not in out:
            out[key] = {"variant": variant, "dim": dim, "dtype": dtype, "control": framework_of(variant) != framework,
                        "cost": None, "instructions": None, "cycles": None, "time": {}}
        return out[key]

    if old in cost_runs and new in cost_runs:
        a_run, b_run = cost_runs[old], cost_runs[new]
        for key, a in a_run.points(R.COST_INSTRUCTIONS).items():
            b, ca, cb = a_run.value(R.COST_INSTRUCTIONS, key) and b_run.value(R.COST_INSTRUCTIONS, key), \
                a_run.value(R.COST_CYCLES, key), b_run.value(R.COST_CYCLES, key)
            if framework_of(key[0]) in held and R.ok(a["value"]) and R.ok(b) and R.ok(ca) and R.ok(cb):
                r = row(*key)
                r["instructions"], r["cycles"] = (a["value"], b), (ca, cb)
                r["cost"] = cost_verdict(b / a["value"], cb / ca, at_cache_edge(key[1], key[2]))
    if old in time_runs and new in time_runs:
        b_points = time_runs[new].points(R.STEADY)
        for (variant, threads, dim, dtype), a in time_runs[old].points(R.STEADY).items():
            b = b_points.get((variant, threads, dim, dtype))
            if framework_of(variant) in held and R.ok(a["value"]) and b and R.ok(b["value"]):
                row(variant, dim, dtype)["time"][threads] = (a["value"], b["value"], time_verdict(a, b))
    return list(out.values())


def framework_of(variant):
    """The framework a variant runs on (a variant no longer registered counts as its own)."""
    try:
        return backend_class(variant).framework
    except ValueError:
        return variant


def disagrees(row):
    """The clock saw a change the count did not, or one in the other direction. (A counted change
    the clock does not see is not a disagreement: times resolve ~20% here, counts 1%.)"""
    if row["cost"] is None:
        return False
    seen = [v for *_, v in row["time"].values() if v in ("slower", "faster")]
    up = row["instructions"][1] > row["instructions"][0]
    return any(row["cost"] == "same" or (v == "slower") != up for v in seen)


def pct(a, b):
    return f"{(b / a - 1) * 100:+.1f}%"


def headline(framework, old, new, table):
    """One line: the framework's own variants' cost change at d = 100 and what the clock said."""
    own = [r for r in table if not r["control"]]
    if not own:
        return f"{framework} {old} → {new}: none of its variants measured in both"
    counted = [r for r in own if r["cost"] is not None]
    if counted:
        big = [r for r in counted if r["dim"] == max(x["dim"] for x in counted)]
        change = statistics.median(r["instructions"][1] / r["instructions"][0] - 1 for r in big)
        changed = sum(r["cost"] != "same" for r in counted)
        cost_text = (f"instructions per step {change * 100:+.1f}% at d={big[0]['dim']} (median), cost changed at "
                     f"{changed} of {len(counted)} points")
    else:
        cost_text = "cost not counted"
    verdicts = [v for r in own for *_, v in r["time"].values()]
    slower, faster = verdicts.count("slower"), verdicts.count("faster")
    time_text = ("time not measured" if not verdicts else "time within noise" if not slower + faster else
                 f"time: {slower} of {len(verdicts)} slower, {faster} faster")
    return f"{framework} {old} → {new}: {cost_text}; {time_text}"


def control_spread(table):
    control = [r for r in table if r["control"]]
    if not control:
        return "no control rows"
    ir = [r["instructions"][1] / r["instructions"][0] - 1 for r in control if r["cost"] is not None]
    times = [b / a - 1 for r in control for a, b, _ in r["time"].values()]
    parts = ([f"instructions {min(ir) * 100:+.2f}% to {max(ir) * 100:+.2f}%"] if ir else []) + (
        [f"time {min(times) * 100:+.0f}% to {max(times) * 100:+.0f}%"] if times else [])
    return f"control ({len(control)} points): " + ", ".join(parts or ["nothing measured in both"])


def cells(row):
    """The texts of one row: instructions, estimated cycles, cost verdict, time at each setting."""
    if row["cost"] is None:
        texts = ["n/a", "n/a", "not counted"]
    else:
        (ia, ib), (ca, cb) = row["instructions"], row["cycles"]
        edge = " (cache edge: no verdict)" if at_cache_edge(row["dim"], row["dtype"]) else ""
        texts = [f"{pct(ia, ib)} ({ia:,.0f} → {ib:,.0f})", pct(ca, cb) + edge, row["cost"]]
    for threads in settings.THREADS:
        if threads in row["time"]:
            a, b, v = row["time"][threads]
            texts.append(f"{b / a:.2f}× {v}")
        else:
            texts.append("n/a")
    texts.append("DISAGREE" if disagrees(row) else "")
    return texts


COLUMNS = ["instructions/step", "est. cycles/step", "cost", "time, 1 thread", "time, all cores", "cost vs time"]


def row_name(row):
    return f"{row['variant']} d={row['dim']} {row['dtype']}" + (" (control)" if row["control"] else "")


Upgrade = namedtuple("Upgrade", "framework commit old new rows cost_runs time_machine")


def upgrades(results_dir, time_machine=None):
    """[Upgrade]: every comparison counted on a cost machine or timed on a timing machine, with
    both measures where both hold its environments; the timings of `time_machine` where it has
    them, else of the first machine that does (time_machine names it; None: none timed)."""
    found = {}
    for machine in [m for m in R.machines(results_dir) if m.startswith(R.COST_MACHINE_PREFIX)]:
        for framework, commit, runs in comparisons(results_dir, machine):
            found.setdefault((framework, commit), [{}, {}, None])[0].update(runs)
    timing = [m for m in R.machines(results_dir) if not m.startswith(R.COST_MACHINE_PREFIX)]
    for machine in sorted(timing, key=lambda m: m != time_machine):
        for framework, commit, runs in comparisons(results_dir, machine):
            entry = found.setdefault((framework, commit), [{}, {}, None])
            if entry[2] is None:
                entry[1:] = [runs, machine]
    out = []
    for (framework, commit), (cost_runs, time_runs, machine) in sorted(found.items()):
        *olds, new = sorted({*cost_runs, *time_runs}, key=version_key)
        for old in olds:
            out.append(Upgrade(framework, commit, old, new, rows(framework, cost_runs, time_runs, old, new), cost_runs,
                               machine))
    return out


def markdown_table(framework, old, new, table):
    lines = [headline(framework, old, new, table), "", control_spread(table), "",
             "| point | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    lines += [f"| {row_name(r)} | " + " | ".join(cells(r)) + " |" for r in table]
    return "\n".join(lines)


# --- running one ---------------------------------------------------------------------------------

def run(root, config, framework, measure, machine, env, commit):
    """One asv run of `commit` in every release's environment: (exit code, seconds)."""
    variants = variants_of(frameworks_in(framework))
    env = dict(env, **settings.subset_environ({"variants": ",".join(variants)}))
    start = time.perf_counter()
    asv = Path(sys.executable).parent / "asv"
    # --skip-existing: an environment two comparisons share (numba's newest is numpy's newest) is
    # measured once per commit; delete its result file to measure it again.
    code = subprocess.run([str(asv), "run", f"{commit}^!", "--config", str(config), "--machine", machine, "--show-stderr",
                           "--skip-existing",
                           *(["--record-samples"] if measure == "time" else []), "-b", selection(measure, variants, env)],
                          cwd=root, env=env).returncode
    return code, time.perf_counter() - start


def record(root, machine, framework, commit, seconds, measure, since):
    """runs.jsonl's lines for the comparison's runs of `commit` on `machine` that this run wrote
    (result files newer than `since`), with the timings' noise."""
    for rev in comparisons(root / "results", machine):
        if rev[0] != framework or rev[1] != commit:
            continue
        for version, found in rev[2].items():
            if found.path.stat().st_mtime < since:
                continue
            noise = machines.run_noise(found.fit_samples()) if measure == "time" else {}
            machines.append_run(root / "results", machine, {
                "accepted": True, "commit": commit, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "env_name": found.env_name, "host": machines.machine_info(), "seconds": round(seconds),
                "upgrade": {"framework": framework, "version": version}, "noise_during": noise,
                "subset": {"variants": ",".join(variants_of(frameworks_in(framework)))}, "skipped": {}})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 tasks.py versions", description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=list(FRAMEWORKS))
    parser.add_argument("versions", nargs="+", help="two or more releases, oldest first; each is compared with the last")
    parser.add_argument("--pin", action="append", default=[], metavar="PACKAGE==VERSION",
                        help="another package's version for every environment of the comparison")
    parser.add_argument("--measure", default=",".join(MEASURES), help="comma-separated subset of cost,time")
    parser.add_argument("--commit", default="HEAD", help="the commit measured (default: HEAD): the cost and the "
                                                          "timings of one comparison are read together by commit")
    parser.add_argument("--root", default=".", help="the repository (default: current directory)")
    parser.add_argument("--no-run", action="store_true", help="only tabulate existing results")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    measures = [m for m in MEASURES if m in args.measure.split(",")]
    if not measures or set(args.measure.split(",")) - set(MEASURES):
        parser.error(f"--measure: expected a subset of {','.join(MEASURES)}, got {args.measure!r}")
    try:
        config = write_config(root, args.framework, args.versions, args.pin)
    except ValueError as exc:
        parser.error(str(exc))
    rev = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{args.commit}^{{commit}}"], cwd=root,
                         capture_output=True, text=True)
    if rev.returncode:
        parser.error(f"--commit {args.commit!r}: not a commit of {root}")
    commit = rev.stdout.strip()
    from benchmarks.cost import missing_tools, valgrind_version

    if "cost" in measures and missing_tools():
        parser.exit(2, f"error: the cost cannot be counted here: {missing_tools()}\n")
    # The cost machine is named after valgrind's version: registered only where it counts.
    cost_machine = (machines.register(root / "results", info=machines.cost_machine_info(valgrind_version()))
                    if "cost" in measures else None)
    time_machine = machines.register(root / "results")
    code = 0
    if not args.no_run:
        envs = environments(args.framework, matrix(root, args.framework, args.versions, args.pin))
        problems = [p for p in (install_problem(packages) for packages in envs.values()) if p]
        if problems:
            parser.exit(2, "error: " + "\nerror: ".join(problems) + "\n")
        for measure in measures:
            machine = cost_machine if measure == "cost" else time_machine
            since = time.time()
            code, seconds = run(root, config, args.framework, measure, machine, os.environ, commit)
            if code:
                parser.exit(code, f"error: asv run exited {code} (the {measure} run; see above)\n")
            record(root, machine, args.framework, commit, seconds, measure, since)
    found = [u for u in upgrades(root / "results", time_machine) if u.framework == args.framework and u.commit == commit]
    if not found:
        parser.exit(1, f"error: no results of {args.framework} {', '.join(args.versions)} at {commit[:8]}\n")
    for u in found:
        counted_on = next(iter(u.cost_runs.values())).machine if u.cost_runs else "no machine"
        print(f"\n{u.framework} {u.old} -> {u.new}, commit {commit[:8]}; cost on {counted_on}, "
              f"time on {u.time_machine or 'no machine'}:\n")
        print(markdown_table(u.framework, u.old, u.new, u.rows))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
