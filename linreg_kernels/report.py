"""The article's comparison, regenerated from asv results: tables, plots, provenance.

    python -m linreg_kernels.report [--results-dir results] [--machine M] [--commit C] [--out html/report]

Writes index.html (tables + plots) and report.md (the same tables, to paste into an issue).
Reads the asv results JSON directly; matplotlib is imported only to draw the plots.
"""
import argparse
import ast
import html
import json
import math
from pathlib import Path
from urllib.parse import quote, urlencode

from .registry import BACKENDS, DEVICES, backend_class

SUITE = "linreg"
STEADY = f"{SUITE}.GradientDescent.time_steady_state"
FIRST_CALL = f"{SUITE}.FitMetrics.track_first_call"
TABLES = [  # (benchmark, title, what the number is)
    (STEADY, "Steady-state fit", "compiled, data on the device, 1,000 iterations, n = 10,000"),
    (FIRST_CALL, "First call",
     "compile + 1 iteration: the first call for this shape and dtype in a process that walked the grid "
     "in order (float64 then float32, d ascending), so one-off runtime start-up sits in the first cell; "
     "no speed-up column, as NumPy compiles nothing"),
    (f"{SUITE}.GradientDescent.time_end_to_end", "End-to-end fit", "host arrays in, host result out"),
]
ACCURACY = f"{SUITE}.FitMetrics.track_relative_error"
THREADS = f"{SUITE}.Threads.track_threads"
FRAMEWORK_PACKAGES = ["numpy", "numba", "jax", "jaxlib", "tensorflow-cpu", "tensorflow", "torch"]


class ReportError(ValueError):
    pass


def _param(value):
    return ast.literal_eval(value)


def _rows(entry, columns):
    """asv 0.6 stores each benchmark as a row of `result_columns`; values follow the
    cartesian product of its params."""
    record = dict(zip(columns, entry))
    values = record["result"] or []
    params = [[_param(v) for v in axis] for axis in record["params"]]
    keys = [()]
    for axis in params:
        keys = [k + (v,) for k in keys for v in axis]
    return {k: v for k, v in zip(keys, values)}


def load_run(results_dir, machine=None, commit=None, env=None):
    """One asv result file for the machine (or the given commit/env prefix): of the runs with the
    most benchmarks, the newest commit."""
    results_dir = Path(results_dir)
    machines = sorted(p.parent.name for p in results_dir.glob("*/machine.json"))
    if not machines:
        raise ReportError(f"no asv results under {results_dir}/ (run `python3 tasks.py bench` first)")
    candidates = []
    for m in machines if machine is None else [machine]:
        for path in (results_dir / m).glob("*.json"):
            if path.name == "machine.json":
                continue
            data = json.loads(path.read_text())
            if commit and not data["commit_hash"].startswith(commit):
                continue
            if env and env not in data["env_name"]:
                continue
            candidates.append(((len(data["results"]), data["date"]), m, path, data))
    if not candidates:
        raise ReportError(f"no results match machine={machine!r} commit={commit!r} env={env!r} "
                          f"(machines with results: {', '.join(machines)})")
    # The most complete run, newest among those: a subset run (-b ...) never hides a full one.
    _, m, path, data = max(candidates, key=lambda c: c[0])
    columns = data["result_columns"]
    data["benchmarks"] = {name: _rows(entry, columns) for name, entry in data["results"].items()}
    data["machine_info"] = json.loads((results_dir / m / "machine.json").read_text())
    data["other_machines"] = [other for other in machines if other != m]
    data["path"] = str(path)
    return data


def missing_reason(run, backend, device, value_present):
    if value_present:
        return None
    if device not in backend_class(backend).devices:
        return f"{backend} has no {device} implementation"
    if device == "gpu":
        return f"no GPU usable by {backend} on {run['machine_info'].get('machine')}"
    return f"{backend} unavailable in this environment"


def _ok(value):
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def format_seconds(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def table(run, benchmark, dtype):
    """Rows (device, backend) x dims: {"value", "speedup" over NumPy on the CPU, "best", "missing"}."""
    results = run["benchmarks"].get(benchmark, {})
    dims = sorted({k[2] for k in results})
    rows = []
    for device in DEVICES:
        for backend in BACKENDS:
            cells = []
            for dim in dims:
                value = results.get((backend, device, dim, dtype))
                base = results.get(("numpy", "cpu", dim, dtype))
                cell = {"value": value if _ok(value) else None,
                        "missing": missing_reason(run, backend, device, _ok(value))}
                if benchmark != FIRST_CALL and _ok(value) and _ok(base) and value > 0:
                    cell["speedup"] = base / value
                cells.append(cell)
            rows.append({"backend": backend, "device": device, "cells": cells})
    for i in range(len(dims)):
        present = [r["cells"][i]["value"] for r in rows if r["cells"][i]["value"] is not None]
        for r in rows:
            r["cells"][i]["best"] = bool(present) and r["cells"][i]["value"] == min(present)
    return dims, rows


def versions(run):
    params = run.get("params", {})
    return {p: params[p] for p in FRAMEWORK_PACKAGES if params.get(p)}


def provenance(run):
    info = run["machine_info"]
    threads = run["benchmarks"].get(THREADS, {})
    return {
        "machine": f"{info.get('machine')} ({info.get('cpu')}, {info.get('num_cpu')} cores, "
                   f"{_gib(info.get('ram'))}, {info.get('os')})",
        "commit": run["commit_hash"],
        "environment": run["env_name"],
        "versions": ", ".join(f"{k} {v}" for k, v in versions(run).items()) or "not recorded",
        "threads": (f"LINREG_NUM_THREADS={run.get('env_vars', {}).get('LINREG_NUM_THREADS', 'unset')}; "
                    + ", ".join(f"{b} {int(v)}" for (b,), v in threads.items() if _ok(v))),
        **({"other machines": ", ".join(run["other_machines"]) + " (report: --machine NAME)"}
           if run.get("other_machines") else {}),
    }


def _gib(ram):
    """machine.json's RAM: '24 GiB' (tasks.py) or a byte count (asv's own default)."""
    return f"{int(ram) / 2**30:.0f} GiB" if str(ram).isdigit() else str(ram)


def dashboard_url(machine_info, bench=STEADY):
    """The asv-tachyon view of one benchmark on one machine. Every machine.json field is a filter
    there, and the UI keeps the other fields at the first machine's values when only the machine
    changes (an empty graph), so the link sets them all."""
    fields = {"view": "explore", "bench": bench, "machine": machine_info["machine"]}
    fields |= {f"f-{k}": v for k, v in machine_info.items() if k not in ("machine", "version")}
    return "index.html#" + urlencode(fields, quote_via=quote)


def markdown(run):
    out = ["# Linear regression by gradient descent: framework comparison", ""]
    for key, value in provenance(run).items():
        out.append(f"- **{key}**: {value}")
    out += ["", "Cells: time (speed-up over NumPy on the CPU). ★ marks the fastest in each column. "
            "GPU rows are marked 🟦, CPU rows 🟩.", ""]
    for dtype in ("float64", "float32"):
        for benchmark, title, what in TABLES:
            dims, rows = table(run, benchmark, dtype)
            if not dims:
                continue
            out += [f"## {title}, {dtype} ({what})", "",
                    "| backend | device | " + " | ".join(f"d={d}" for d in dims) + " |",
                    "|---|---|" + "---|" * len(dims)]
            for r in rows:
                cells, said = [], None
                for c in r["cells"]:
                    if c["value"] is None:  # the reason once per row, not in every cell
                        cells.append("n/a" if c["missing"] == said else f"n/a: {c['missing']}")
                        said = c["missing"]
                        continue
                    text = format_seconds(c["value"])
                    if "speedup" in c:
                        text += f" ({c['speedup']:.2f}×)"
                    cells.append(f"**{text} ★**" if c["best"] else text)
                marker = "🟦 GPU" if r["device"] == "gpu" else "🟩 CPU"
                out.append(f"| {r['backend']} | {marker} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def plot(run, out_dir):
    """Time vs dimension (log y) per device and dtype, and a speed-up heatmap per dtype."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
    steady = run["benchmarks"].get(STEADY, {})
    for dtype in ("float64", "float32"):
        dims, rows = table(run, STEADY, dtype)
        if not dims:
            continue
        for device in DEVICES:
            series = [(r["backend"], [c["value"] for c in r["cells"]]) for r in rows if r["device"] == device]
            series = [(b, v) for b, v in series if any(x is not None for x in v)]
            if not series:
                continue
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            for backend, values in series:
                xs = [d for d, v in zip(dims, values) if v is not None]
                ax.plot(xs, [v * 1e3 for v in values if v is not None], marker="o", label=backend)
            if device == "gpu":  # the CPU baseline, for scale
                base = [steady.get(("numpy", "cpu", d, dtype)) for d in dims]
                if all(_ok(b) for b in base):
                    ax.plot(dims, [b * 1e3 for b in base], "k--", label="numpy (cpu)")
            ax.set(xscale="log", yscale="log", xlabel="dimension d (features)", ylabel="time per fit (ms)",
                   title=f"Steady-state fit on {device.upper()}, {dtype}, n = 10,000, 1,000 iterations")
            ax.set_xticks(dims, [str(d) for d in dims])
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
            name = f"time_vs_dim_{device}_{dtype}.png"
            fig.tight_layout()
            fig.savefig(out_dir / name, dpi=110)
            plt.close(fig)
            files.append((name, f"Steady-state time vs dimension, {device.upper()}, {dtype}"))
        labels = [f"{r['backend']} ({r['device']})" for r in rows]
        grid = np.array([[c.get("speedup", np.nan) for c in r["cells"]] for r in rows])
        keep = ~np.all(np.isnan(grid), axis=1)
        if not keep.any():
            continue
        grid, labels = grid[keep], [lab for lab, k in zip(labels, keep) if k]
        fig, ax = plt.subplots(figsize=(6.4, 0.5 * len(labels) + 1.6))
        logs = np.log2(grid)
        lim = max(1.0, float(np.nanmax(np.abs(logs))))
        im = ax.imshow(logs, cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
        for (i, j), s in np.ndenumerate(grid):
            ax.text(j, i, "n/a" if np.isnan(s) else f"{s:.2f}×", ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(dims)), [f"d={d}" for d in dims])
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(f"Speed-up over NumPy (CPU), steady state, {dtype}")
        fig.colorbar(im, ax=ax, label="log2 speed-up (green: faster than NumPy)")
        name = f"speedup_heatmap_{dtype}.png"
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        files.append((name, f"Speed-up over NumPy, {dtype}"))
    return files


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#eee}td.name{text-align:left}tr.cpu td.name{background:#e3f4e1}tr.gpu td.name{background:#dde8fa}
td.best{font-weight:bold;background:#fff3b0}td.na{color:#888;font-size:0.85em;text-align:left}
.sp{color:#555;font-size:0.85em}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
"""


def html_page(run, plots):
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>linreg_kernels comparison</title>",
             f"<style>{_CSS}</style></head><body>",
             "<h1>Linear regression by gradient descent: framework comparison</h1><ul id='provenance'>"]
    parts += [f"<li><b>{e(k)}</b>: {e(str(v))}</li>" for k, v in provenance(run).items()]
    parts.append("</ul><p>Cells: time and, in grey, speed-up over NumPy on the CPU. Highlighted: "
                 "fastest per column. Green rows run on the CPU, blue rows on the GPU. "
                 f"<a href='../{e(dashboard_url(run['machine_info']))}'>asv dashboard, this machine</a> · "
                 "<a href='report.md'>Markdown</a></p>")
    for dtype in ("float64", "float32"):
        for benchmark, title, what in TABLES:
            dims, rows = table(run, benchmark, dtype)
            if not dims:
                continue
            parts.append(f"<h2>{e(title)}, {dtype}</h2><p>{e(what)}</p><table class='result'><tr><th>backend</th>"
                         "<th>device</th>" + "".join(f"<th>d={d}</th>" for d in dims) + "</tr>")
            for r in rows:
                parts.append(f"<tr class='{r['device']}'><td class='name'>{r['backend']}</td>"
                             f"<td class='name'>{r['device'].upper()}</td>")
                reasons = {c["missing"] for c in r["cells"]}
                if len(reasons) == 1 and None not in reasons:  # the whole row is missing, for one reason
                    parts.append(f"<td class='na' colspan='{len(dims)}'>n/a: {e(reasons.pop())}</td></tr>")
                    continue
                for c in r["cells"]:
                    if c["value"] is None:
                        parts.append(f"<td class='na'>n/a: {e(c['missing'])}</td>")
                        continue
                    sp = f" <span class='sp'>({c['speedup']:.2f}×)</span>" if "speedup" in c else ""
                    cls = " class='best'" if c["best"] else ""
                    parts.append(f"<td{cls}>{e(format_seconds(c['value']))}{sp}</td>")
                parts.append("</tr>")
            parts.append("</table>")
    accuracy = run["benchmarks"].get(ACCURACY, {})
    worst = [(v, k) for k, v in accuracy.items() if _ok(v)]
    if worst:
        v, k = max(worst)
        parts.append(f"<p>Accuracy: the largest relative error against the float64 NumPy reference is "
                     f"{v:.1e} ({e(' '.join(map(str, k)))}).</p>")
    parts.append("<h2>Plots</h2>")
    parts += [f"<figure><img src='{e(name)}' alt='{e(alt)}'><figcaption>{e(alt)}</figcaption></figure>"
              for name, alt in plots]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(results_dir="results", out="html/report", machine=None, commit=None, env=None):
    run = load_run(results_dir, machine, commit, env)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(run), encoding="utf-8")
    (out / "index.html").write_text(html_page(run, plot(run, out)), encoding="utf-8")
    return run, out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m linreg_kernels.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--machine", help="asv machine name (default: the one with the newest results)")
    parser.add_argument("--commit", help="commit hash prefix (default: newest)")
    parser.add_argument("--env", help="substring of the asv environment name (default: newest)")
    parser.add_argument("--out", default="html/report")
    args = parser.parse_args(argv)
    try:
        run, out = write_report(args.results_dir, args.out, args.machine, args.commit, args.env)
    except ReportError as exc:
        parser.exit(1, f"error: {exc}\n")
    print(f"report for {run['commit_hash'][:8]} on {run['machine_info'].get('machine')}: "
          f"{out / 'index.html'} and {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
