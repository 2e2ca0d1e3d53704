"""Compare releases of one framework, all else equal, with asv.

    python -m linreg_kernels.versions jax 0.10.1 0.10.2 [-- extra asv run arguments]

Writes an asv config in which only that framework's version varies (one environment per
version, every other package at the reference pin), runs the checked-out commit in each, and
prints old time, new time, ratio and asv's significance test per benchmark point. The results
land in the ordinary results dir, so the dashboard shows each version as its own series.
"""
import argparse
import itertools
import json
import math
import re
import subprocess
import sys
from pathlib import Path

from .report import ReportError, load_run

# The pip packages that make up each framework; all of them move together.
PACKAGES = {"numpy": ["numpy"], "numba": ["numba"], "jax": ["jax", "jaxlib"],
            "tensorflow": ["tensorflow-cpu"], "torch": ["torch"]}
COMPARED = ["linreg.GradientDescent.time_steady_state", "linreg.GradientDescent.time_end_to_end"]
STAT_COLUMNS = ["ci_99_a", "ci_99_b", "q_25", "q_75", "number", "repeat"]


def write_config(root, framework, versions):
    """An asv config like asv.conf.json, but with one environment per version of `framework`."""
    if framework not in PACKAGES:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(PACKAGES)}")
    if len(versions) < 2 or len(set(versions)) != len(versions):
        raise ValueError(f"give at least two different versions of {framework}, got {versions}")
    bad = [v for v in versions if not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v)]
    if bad:
        raise ValueError(f"not a version number: {bad}")
    root = Path(root).resolve()
    conf = json.loads((root / "asv.conf.json").read_text())
    for key in ("benchmark_dir", "results_dir", "env_dir", "html_dir"):
        conf[key] = str(root / conf[key])  # asv resolves paths from the config file's folder
    conf["repo"] = str(root)
    packages = PACKAGES[framework]
    for package in packages:
        conf["matrix"]["req"][package] = list(versions)
    # Companion packages (jax/jaxlib) must not be crossed: exclude every mismatched pair.
    conf["exclude"] = [{"req": {packages[0]: re.escape(a) + "$", other: re.escape(b) + "$"}}
                       for other in packages[1:] for a, b in itertools.permutations(versions, 2)]
    path = root / ".asv" / f"versions-{framework}.conf.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(conf, indent=2))
    return path


def _stats(run, benchmark):
    """{point: (value, samples, stats)} from asv's row format."""
    columns = run["result_columns"]
    record = dict(zip(columns, run["results"][benchmark]))
    values = run["benchmarks"][benchmark]
    out = {}
    for i, (key, value) in enumerate(values.items()):
        stats = {c: (record.get(f"stats_{c}") or [None] * len(values))[i] for c in STAT_COLUMNS}
        samples = (record.get("samples") or [None] * len(values))[i]
        out[key] = (value, samples, stats)
    return out


def comparison(results_dir, machine, commit, framework, old, new, factor=1.1):
    """Rows (benchmark, point, old s, new s, ratio, verdict) for the two versions' results."""
    from asv import _stats as asv_stats  # asv's own test, as `asv compare` applies it

    package = PACKAGES[framework][0]
    runs = {v: load_run(results_dir, machine, commit, env=f"{package}{v}-") for v in (old, new)}
    rows = []
    for benchmark in COMPARED:
        if not all(benchmark in r["results"] for r in runs.values()):
            continue
        a, b = _stats(runs[old], benchmark), _stats(runs[new], benchmark)
        for key in a:
            (va, sa, ta), (vb, sb, tb) = a[key], b.get(key, (None, None, None))
            if not all(isinstance(v, float) and not math.isnan(v) for v in (va, vb)):
                continue
            ratio = vb / va
            different = asv_stats.is_different(sa, sb, ta, tb)
            verdict = ("slower" if ratio > factor else "faster" if ratio < 1 / factor else "within factor") \
                if different else "not significant"
            if framework != "numpy" and key[0] != framework:
                verdict += " (control)"  # does not use the framework: its spread is the noise floor
            rows.append((benchmark.rsplit(".", 1)[1], key, va, vb, ratio, verdict))
    return runs, rows


def markdown_table(framework, old, new, rows):
    lines = [f"| benchmark | backend | device | d | dtype | {framework} {old} | {framework} {new} | ratio | asv verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, (backend, device, dim, dtype), va, vb, ratio, verdict in rows:
        lines.append(f"| {name} | {backend} | {device} | {dim} | {dtype} | {va * 1e3:.3g} ms | {vb * 1e3:.3g} ms | "
                     f"{ratio:.2f} | {verdict} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m linreg_kernels.versions", description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=list(PACKAGES))
    parser.add_argument("versions", nargs="+", help="two or more releases; the first is the baseline")
    parser.add_argument("--machine", required=True, help="asv machine name")
    parser.add_argument("--root", default=".", help="the repository (default: current directory)")
    parser.add_argument("--no-run", action="store_true", help="only tabulate existing results")
    argv = list(sys.argv[1:] if argv is None else argv)
    asv_args = argv[argv.index("--") + 1:] if "--" in argv else []  # for asv run, untouched
    args = parser.parse_args(argv[:len(argv) - len(asv_args) - (1 if "--" in argv else 0)])
    try:
        config = write_config(args.root, args.framework, args.versions)
    except ValueError as exc:
        parser.error(str(exc))
    root = Path(args.root).resolve()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                            check=True).stdout.strip()
    code = 0
    if not args.no_run:
        asv = Path(sys.executable).parent / "asv"
        code = subprocess.run([str(asv), "run", "HEAD^!", "--config", str(config), "--machine", args.machine,
                               "--show-stderr", *asv_args], cwd=root).returncode
    base = args.versions[0]
    for other in args.versions[1:]:
        try:
            _, rows = comparison(root / "results", args.machine, commit, args.framework, base, other)
        except ReportError as exc:
            parser.exit(1, f"error: {exc}\n")
        print(f"\n{args.framework} {base} -> {other} on {args.machine}, commit {commit[:8]}:\n")
        print(markdown_table(args.framework, base, other, rows))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
