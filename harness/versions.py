"""Compare releases of one framework, all else equal, with asv.

    python -m harness.versions jax 0.10.1 0.10.2 [--machine M] [-- extra asv run arguments]

Writes an asv config in which only that framework's packages vary (one environment per version,
every other package at its reference pin from linreg_kernels.frameworks), runs the checked-out
commit in each, and prints old time, new time, ratio and a verdict per point. Variants of other
frameworks are control rows: their spread is the noise floor of the comparison. The results land
in the ordinary results dir, so the dashboard shows each version as its own series.
"""
import argparse
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

from linreg_kernels import FRAMEWORKS, backend_class

from . import results as R

COMPARED = [R.STEADY, R.END_TO_END]


def write_config(root, framework, versions):
    """An asv config like asv.conf.json, but with one environment per version of `framework`."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
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
    packages = list(FRAMEWORKS[framework])
    for package in packages:
        conf["matrix"]["req"][package] = list(versions)
    # Companion packages (jax/jaxlib) must not be crossed: exclude every mismatched pair.
    conf["exclude"] = [{"req": {packages[0]: re.escape(a) + "$", other: re.escape(b) + "$"}}
                       for other in packages[1:] for a, b in itertools.permutations(versions, 2)]
    path = root / ".asv" / f"versions-{framework}.conf.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(conf, indent=2))
    return path


def framework_of(variant):
    """The framework a variant runs on (a variant no longer registered counts as its own)."""
    try:
        return backend_class(variant).framework
    except ValueError:
        return variant


def verdict(a, b, ratio, factor):
    """asv's rule when it has no samples: a difference counts only if the two 99% confidence
    intervals do not overlap; then it is slower/faster if the ratio passes the factor."""
    if a["ci"] is None or b["ci"] is None:
        return "no confidence interval"
    if a["ci"][1] >= b["ci"][0] and a["ci"][0] <= b["ci"][1]:
        return "not significant"
    return "slower" if ratio > factor else "faster" if ratio < 1 / factor else "within factor"


def comparison(results_dir, machine, commit, framework, old, new, factor=1.1):
    """Rows (benchmark, point, old s, new s, ratio, verdict) for the two versions' results."""
    package = next(iter(FRAMEWORKS[framework]))
    runs = {v: R.load_run(results_dir, machine, commit, env=f"{package}{v}-") for v in (old, new)}
    rows = []
    for benchmark in COMPARED:
        a_points, b_points = runs[old].points(benchmark), runs[new].points(benchmark)
        for key, a in a_points.items():
            b = b_points.get(key)
            if a["value"] is None or not b or b["value"] is None:
                continue
            ratio = b["value"] / a["value"]
            text = verdict(a, b, ratio, factor)
            if framework_of(key[0]) != framework:
                text += " (control)"
            rows.append((benchmark.rsplit(".", 1)[1], key, a["value"], b["value"], ratio, text))
    return runs, rows


def markdown_table(framework, old, new, rows):
    lines = [f"| benchmark | point | {framework} {old} | {framework} {new} | ratio | verdict |",
             "|---|---|---|---|---|---|"]
    for name, key, va, vb, ratio, text in rows:
        lines.append(f"| {name} | {' '.join(map(str, key))} | {va * 1e3:.3g} ms | {vb * 1e3:.3g} ms | "
                     f"{ratio:.2f} | {text} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m harness.versions", description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=list(FRAMEWORKS))
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
        except R.ResultsError as exc:
            parser.exit(1, f"error: {exc}\n")
        print(f"\n{args.framework} {base} -> {other} on {args.machine}, commit {commit[:8]}:\n")
        print(markdown_table(args.framework, base, other, rows))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
