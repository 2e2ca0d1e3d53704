"""The article's comparison, regenerated from asv results: tables, plots, provenance.

    python -m harness.report [--results-dir results] [--machine M] [--commit C] [--out html/report]

Writes index.html (tables + plots) and report.md (the same tables). Every row, column and thread
setting comes from the result file it presents, so old runs keep their variants after the
registry changes. Reads asv's JSON directly; matplotlib is imported only to draw the plots.
"""
import argparse
import html
import json
from itertools import product
from math import prod
from pathlib import Path
from urllib.parse import quote, urlencode

from . import machine as machines
from . import results as R
from . import versions as V

CI_WARN = 0.10  # a 99% confidence interval wider than +-10% of its median is marked


def fmt_seconds(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def ci_width(point):
    """Half the 99% confidence interval's width relative to the median, or None."""
    if not point or point["ci"] is None or not point["value"]:
        return None
    lo, hi = point["ci"]
    return (hi - lo) / 2 / point["value"]


class Cell:
    def __init__(self, text, best=False, warn=False, missing=False):
        self.text, self.best, self.warn, self.missing = text, best, warn, missing


def missing_reason(run, record, variant, device="cpu"):
    skipped = (record or {}).get("skipped", {})
    return skipped.get(f"{variant}:{device}") or skipped.get(device) or "no value in this run (see asv's log)"


CPU_TRACKS = {"steady": R.STEADY, "best": R.BEST, "multiple": R.MULTIPLE, "utilisation": R.UTILISATION,
              "floor": R.FLOOR_BEST, "arithmetic": R.FLOOR_ARITHMETIC}
GPU_TRACKS = {"steady": R.GPU_STEADY, "best": R.GPU_BEST, "multiple": R.GPU_MULTIPLE, "utilisation": None,
              "floor": R.GPU_FLOOR_BEST, "arithmetic": None}


def floor_values(run, tracks, key):
    """(one-pass floor, arithmetic floor) at a point; the GPU has no arithmetic floor."""
    return run.value(tracks["floor"], key), run.value(tracks["arithmetic"], key) if tracks["arithmetic"] else None


def floor_cell(one_pass, arithmetic):
    """The floor a multiple is taken over (the larger of the two) and which one binds."""
    if one_pass is None:
        return Cell("n/a", missing=True)
    if arithmetic is None:
        return Cell(f"{fmt_seconds(one_pass)} (one pass)")
    if arithmetic > one_pass:
        return Cell(f"{fmt_seconds(arithmetic)} (arithmetic; one pass {fmt_seconds(one_pass)})")
    return Cell(f"{fmt_seconds(one_pass)} (one pass; arithmetic {fmt_seconds(arithmetic)})")


def steady_table(run, record, threads, dtype):
    """Rows: the variants of the run, then the floor. A cell: the fastest sample, its multiple of
    the floor, the cores used (CPU only), then the median and its 99% confidence interval; the
    fastest variant per column is starred. threads=None: the GPU table."""
    gpu = threads is None
    tracks = GPU_TRACKS if gpu else CPU_TRACKS
    where = () if gpu else (threads,)
    variants, dims = run.axis(tracks["steady"], 0), run.axis(tracks["steady"], len(where) + 1)
    best = {}
    for d in dims:
        present = [b for b in (run.value(tracks["best"], (v, *where, d, dtype)) for v in variants) if b is not None]
        best[d] = min(present, default=None)
    rows = []
    for v in variants:
        cells = []
        for d in dims:
            key = (v, *where, d, dtype)
            fastest, p = run.value(tracks["best"], key), run.points(tracks["steady"]).get(key)
            if fastest is None:
                cells.append(Cell("n/a", missing=True))
                continue
            parts = [fmt_seconds(fastest)]
            multiple = run.value(tracks["multiple"], key)
            util = run.value(tracks["utilisation"], key) if tracks["utilisation"] else None
            if multiple is not None:
                parts.append(f"{multiple:.2f}× floor")
            if util is not None:
                parts.append(f"{util:.2f} cores")
            width = ci_width(p)
            if p and p["value"] is not None:
                parts.append(f"median {fmt_seconds(p['value'])}" + (f" ±{width:.0%}" if width is not None else ""))
            warn = width is not None and width > CI_WARN
            cells.append(Cell(" · ".join(parts) + (" (wide CI)" if warn else ""), best=fastest == best[d], warn=warn))
        if all(c.missing for c in cells):
            cells = [Cell(f"n/a: {missing_reason(run, record, v, 'gpu' if gpu else 'cpu')}", missing=True)]
        rows.append((v, cells))
    rows.append(("floor", [floor_cell(*floor_values(run, tracks, (*where, d, dtype))) for d in dims]))
    return dims, rows


THREAD_SETTINGS = {"1": "one thread: every framework confined to one core",
                   "all": "all cores: every framework at its own default thread settings"}


def fastest_table(run, record, threads, reference="numpy"):
    """The answer at a glance: per variant, dtype and dimension, the fastest sample of one fit and
    its speed-up over `reference` at the same point; the fastest variant per column is starred."""
    variants, dims, dtypes = (run.axis(R.BEST, i) for i in (0, 2, 3))
    columns = [(d, dtype) for dtype in dtypes for d in dims]
    best = {c: min((b for b in (run.value(R.BEST, (v, threads, *c)) for v in variants) if b is not None), default=None)
            for c in columns}
    rows = []
    for v in variants:
        cells = []
        for d, dtype in columns:
            fastest = run.value(R.BEST, (v, threads, d, dtype))
            base = run.value(R.BEST, (reference, threads, d, dtype))
            if fastest is None:
                cells.append(Cell("n/a", missing=True))
                continue
            speedup = f" · {base / fastest:.2f}×" if base is not None else ""
            cells.append(Cell(fmt_seconds(fastest) + speedup, best=fastest == best[(d, dtype)]))
        if all(c.missing for c in cells):
            cells = [Cell(f"n/a: {missing_reason(run, record, v)}", missing=True)]
        rows.append((v, cells))
    return [f"d={d} {dtype}" for d, dtype in columns], rows


def answers(run, record):
    """The report's first tables: one per thread setting, fastest fit and speed-up over NumPy."""
    out = []
    for threads in run.axis(R.BEST, 1):
        columns, rows = fastest_table(run, record, threads)
        what = THREAD_SETTINGS.get(threads, f"threads={threads}")
        out.append((f"Fastest fit, threads={threads}",
                    f"{what[0].upper()}{what[1:]}. Per cell: the fastest sample of one fit (1,000 iterations, "
                    "n = 10,000, compiled, data in place) · its speed-up over NumPy at the same point (above 1: "
                    "faster than NumPy). ★ fastest in its column. Floor multiples, cores used, medians and their "
                    "intervals: the Steady state tables below.", columns, rows))
    return out


def point_table(run, record, benchmark, dtype, fmt):
    """Rows: variants; columns: dims; for benchmarks with params (variant, dim, dtype)."""
    variants, dims = run.axis(benchmark, 0), run.axis(benchmark, 1)
    rows = []
    for v in variants:
        cells = []
        for d in dims:
            value = run.value(benchmark, (v, d, dtype))
            cells.append(Cell("n/a", missing=True) if value is None else Cell(fmt(value)))
        if all(c.missing for c in cells):
            cells = [Cell(f"n/a: {missing_reason(run, record, v)}", missing=True)]
        rows.append((v, cells))
    return dims, rows


def accuracy_table(run, record, dtype):
    """Worst relative error over the dimensions, per variant and thread setting."""
    variants, threads = run.axis(R.ERROR, 0), run.axis(R.ERROR, 1)
    dims = run.axis(R.ERROR, 2)
    rows = []
    for v in variants:
        cells = []
        for t in threads:
            values = [run.value(R.ERROR, (v, t, d, dtype)) for d in dims]
            values = [x for x in values if x is not None]
            cells.append(Cell(f"{max(values):.1e}" if values else "n/a", missing=not values))
        rows.append((v, cells))
    return [f"threads={t}" for t in threads], rows


def process_table(run, record):
    variants, threads = run.axis(R.PEAK_MEMORY, 0), run.axis(R.PEAK_MEMORY, 1)
    largest = (max(run.axis(R.UTILISATION, 2), default=None), next(iter(run.axis(R.UTILISATION, 3)), None))
    rows = []
    for v in variants:
        cells = []
        for t in threads:
            mem, reported = run.value(R.PEAK_MEMORY, (v, t)), run.value(R.THREADS_REPORTED, (v, t))
            util = run.value(R.UTILISATION, (v, t, *largest))
            text = " · ".join(filter(None, [f"{mem:.0f} MB" if mem is not None else None,
                                            f"reports {reported:.0f} threads" if reported is not None else None,
                                            f"uses {util:.2f} cores at d={largest[0]} {largest[1]}" if util is not None else None]))
            cells.append(Cell(text or "n/a", missing=not text))
        rows.append((v, cells))
    return [f"threads={t}" for t in threads], rows


def sections(run, record):
    """(title, explanation, column headers, rows) for every table of the report."""
    out = []
    for threads in run.axis(R.STEADY, 1):
        for dtype in run.axis(R.STEADY, 3):
            dims, rows = steady_table(run, record, threads, dtype)
            if rows:
                out.append((f"Steady state, threads={threads}, {dtype}",
                            f"{THREAD_SETTINGS.get(threads, threads)}. One fit: 1,000 iterations, n = 10,000, compiled, data "
                            "in place. Per cell: the fastest of the run's samples; its multiple of the floor at "
                            "the same thread setting, the larger of the one-pass floor (1,000 streaming reads of "
                            "X and y as one compiled loop, the least these iterations must read) and the arithmetic "
                            "floor (their 4·n·d flops a step at the peak multiply-add rate measured here), the "
                            "floor row saying which binds; cores used (CPU time over wall time of the timed fits); the "
                            "median of the samples ± half its 99% confidence interval, marked where wider than "
                            f"±{CI_WARN:.0%}. ★ fastest in its column.",
                            [f"d={d}" for d in dims], rows))
    for benchmark, title, fmt, explanation in (
            (R.FIRST_CALL, "First call", fmt_seconds,
             "compile + one fit, empty compile caches, one thread, grid walked in order (float64 then float32, "
             "d ascending: one-off start-up lands in the first cell)"),
            (R.END_TO_END, "End to end", fmt_seconds, "fit() from NumPy arrays to a NumPy result, one thread")):
        for dtype in run.axis(benchmark, 2):
            dims, rows = point_table(run, record, benchmark, dtype, fmt)
            if rows:
                out.append((f"{title}, {dtype}", explanation, [f"d={d}" for d in dims], rows))
    for dtype in run.axis(R.ERROR, 3):
        columns, rows = accuracy_table(run, record, dtype)
        if rows:
            out.append((f"Accuracy, {dtype}", "largest relative error of (w, b) over the dimensions, against "
                        "float64 NumPy doing the same iterations", columns, rows))
    columns, rows = process_table(run, record)
    if rows:
        out.append(("Processes", "peak RSS of the process that measured the variant (framework, compiled "
                    "kernels, the grid's data); the thread count the framework reports, and the cores it used",
                    columns, rows))
    gpu_dims = run.axis(R.GPU_BEST, 1)
    for dtype in run.axis(R.GPU_BEST, 2):
        if any(run.value(R.GPU_BEST, (v, d, dtype)) is not None for v in run.axis(R.GPU_BEST, 0) for d in gpu_dims):
            dims, rows = steady_table(run, record, None, dtype)
            out.append((f"GPU steady state, {dtype}",
                        "framework defaults. Per cell: the fastest of the run's samples of one fit; its multiple "
                        "of the GPU floor (1,000 streaming reads of X as dot kernels replayed from one CUDA "
                        "graph: no host work between them); the median ± half its 99% confidence interval. "
                        "★ fastest in its column.", [f"d={d}" for d in dims], rows))
            for benchmark, title, fmt, explanation in (
                    (R.GPU_FIRST_CALL, "GPU first call", fmt_seconds, "compile + one fit, empty compile caches"),
                    (R.GPU_ERROR, "GPU accuracy", "{:.1e}".format,
                     "relative error of (w, b) against float64 NumPy doing the same iterations")):
                dims, rows = point_table(run, record, benchmark, dtype, fmt)
                out.append((f"{title}, {dtype}", explanation, [f"d={d}" for d in dims], rows))
    return out


def fmt_count(n):
    return f"{n / 1e6:.3g} M" if abs(n) >= 1e6 else f"{n / 1e3:.3g} k" if abs(n) >= 1e3 else f"{n:.0f}"


def ranks(values):
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    for rank, i in enumerate(order):
        out[i] = float(rank)
    return out


def spearman(a, b):
    """Spearman's rank correlation of two equally long lists (no ties expected)."""
    ra, rb = ranks(a), ranks(b)
    n = len(a)
    if n < 2:
        return None
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def cost_rank_agreement(cost, run):
    """How estimated cycles per step rank the variants against the fastest one-thread time, per
    (dim, dtype) point: {"points": [(dim, dtype, rho, cheapest by cycles, fastest by time)],
    "overall": rho over every (variant, dim, dtype)} (None where no timing run has one thread)."""
    if run is None or "1" not in run.axis(R.BEST, 1):
        return None
    rows, pairs = [], []
    for dtype in cost.axis(R.COST_CYCLES, 2):
        for dim in cost.axis(R.COST_CYCLES, 1):
            both = [(v, cost.value(R.COST_CYCLES, (v, dim, dtype)), run.value(R.BEST, (v, "1", dim, dtype)))
                    for v in cost.axis(R.COST_CYCLES, 0)]
            both = [b for b in both if b[1] is not None and b[2] is not None]
            if len(both) < 2:
                continue
            rho = spearman([b[1] for b in both], [b[2] for b in both])
            rows.append((dim, dtype, rho, min(both, key=lambda b: b[1])[0], min(both, key=lambda b: b[2])[0]))
            pairs += [(b[1], b[2]) for b in both]
    if not rows:
        return None
    return {"points": rows, "overall": spearman([p[0] for p in pairs], [p[1] for p in pairs])}


def cost_sections(cost, run, record):
    """The exact-cost tables: per dtype, instructions and estimated cycles per step, and the
    fixed instructions per call; then how the cycles rank the variants against the timings."""
    out = []
    explanation = ("counted by valgrind's callgrind, the same on a busy or a quiet machine: the work of the AVX2 code "
                   "path of valgrind's virtual CPU at one thread, on a simulated cache (I1, D1 32 KiB; LL 8 MiB). "
                   "Per cell: instructions per gradient step · estimated cycles per step (L1 hits + 5 × LL hits + "
                   "35 × RAM accesses, iai-callgrind's model) · instructions per call besides the steps. Blind to "
                   "memory bandwidth, frequency and parallelism: the timings say which variant is faster, the counts "
                   "say whether a variant changed. ★ fewest estimated cycles in its column.")
    variants, dims = cost.axis(R.COST_CYCLES, 0), cost.axis(R.COST_CYCLES, 1)
    for dtype in cost.axis(R.COST_CYCLES, 2):
        present = {d: [c for c in (cost.value(R.COST_CYCLES, (v, d, dtype)) for v in variants) if c is not None]
                   for d in dims}
        rows = []
        for v in variants:
            cells = []
            for d in dims:
                key = (v, d, dtype)
                ir, cycles, fixed = (cost.value(b, key) for b in (R.COST_INSTRUCTIONS, R.COST_CYCLES, R.COST_FIXED))
                if cycles is None:
                    cells.append(Cell("n/a", missing=True))
                    continue
                cells.append(Cell(f"{fmt_count(ir)} instr · {fmt_count(cycles)} cycles · fixed {fmt_count(fixed)}",
                                  best=cycles == min(present[d])))
            if all(c.missing for c in cells):
                cells = [Cell(f"n/a: {missing_reason(cost, record, v, 'cost')}", missing=True)]
            rows.append((v, cells))
        out.append((f"Exact cost per gradient step, {dtype}", explanation, [f"d={d}" for d in dims], rows))
    agreement = cost_rank_agreement(cost, run)
    if agreement:
        rows = [(f"d={dim} {dtype}", [Cell("n/a" if rho is None else f"{rho:+.2f}"), Cell(cheap), Cell(fast),
                                      Cell("yes" if cheap == fast else "no")])
                for dim, dtype, rho, cheap, fast in agreement["points"]]
        out.append(("Cost against time", "Spearman's rank correlation, per point, of the variants' estimated cycles "
                    f"per step (commit {cost.commit[:8]}) and their fastest one-thread fit (commit {run.commit[:8]}, "
                    f"{run.machine}); over every variant and point of the grid: {agreement['overall']:+.2f} (there the "
                    "dimension dominates). Estimated cycles are a model of one core without bandwidth "
                    "limits or frequency: where the two disagree, time is the answer to which is faster.",
                    ["rank correlation", "fewest cycles", "fastest", "agree"], rows, "point"))
    return out


def upgrade_sections(found):
    """The upgrade summary, then one table per release pair of `found` (harness.versions.upgrades)."""
    if not found:
        return []
    out = [("Framework upgrades", "Each framework's releases at one commit, in environments holding only it, its "
            "control and the harness (`python3 tasks.py versions`); one table per pair follows.",
            ["headline", "control's spread", "points where cost and time disagree"],
            [(f"{u.framework} {u.old} → {u.new}", [Cell(V.headline(u.framework, u.old, u.new, u.rows).split(": ", 1)[1]),
                                                   Cell(V.control_spread(u.rows)),
                                                   Cell(", ".join(V.row_name(r) for r in u.rows if V.disagrees(r)) or "none")])
             for u in found]
            + [(f, [Cell(f"not compared: {why}", missing=True)]) for f, why in V.NOT_COMPARED.items()])]
    for u in found:
        explanation = (f"{V.headline(u.framework, u.old, u.new, u.rows)}; {V.control_spread(u.rows)}. Commit "
                       f"{u.commit[:8]}, environments holding only {u.framework}, its control and the harness; "
                       f"times on {u.time_machine or 'no machine yet'}. Cost changed: instructions per step beyond "
                       f"±{V.COST_THRESHOLD:.0%} or estimated cycles beyond ±{V.CYCLES_THRESHOLD:.0%} (the A/A's worst: "
                       f"0.10% and 0.5%; where X fills the simulated last level, the cycles give no verdict). Time: a "
                       f"change only where the 99% intervals do not overlap. DISAGREE: the clock saw a change the "
                       f"count did not.")
        rows = [(V.row_name(r), [Cell(t, warn=t == "DISAGREE" or t.endswith(("slower", "faster")))
                                 for t in V.cells(r)]) for r in u.rows]
        out.append((f"Upgrade: {u.framework} {u.old} → {u.new}", explanation, V.COLUMNS, rows))
    return out


def upgrade_links(results_dir, found):
    """[(label, [(release, url)])]: one line linking each compared release's cost graph of its
    framework's first variant (one line, so that the report's first screen reaches its table)."""
    group = {}
    for u in found:
        own = next((r["variant"] for r in u.rows if not r["control"]), None)
        if own and u.old in u.cost_runs and u.new in u.cost_runs:
            for v in (u.old, u.new):
                group.setdefault(f"{u.framework} {v}",
                                 dashboard_urls(u.cost_runs[v], results_dir, R.COST_INSTRUCTIONS, [own])[0][1])
    if not group:
        return []
    return [("Framework releases compared, on the dashboard (the framework's own variant, instructions per step)",
             sorted(group.items()))]


def run_record(results_dir, run):
    """This run's newest line in runs.jsonl (its noise, whether it joined), if tasks.py bench made it."""
    for record in reversed(machines.read_runs(results_dir, run.machine)):
        if record.get("commit") == run.commit and record.get("env_name") == run.env_name:
            return record
    return None


def provenance(run, record, info, other_machines, cost=None, cost_record=None):
    versions = ", ".join(f"{k} {v}" for k, v in (run.versions or (record or {}).get("versions", {})).items())
    out = {
        "machine": f"{info.get('machine')} ({info.get('cpu')}, {info.get('num_cpu')} cores, {info.get('ram')}, "
                   f"{info.get('os')})",
        "commit": run.commit,
        "environment": run.env_name,
        "versions": versions or "not recorded",
    }
    noise = machines.run_noise(run.fit_samples())
    if noise:
        out["noise during the run (steady-state fits: each point's median over fastest, median over points)"] = \
            ", ".join(f"threads={t}: {v:.2f}" for t, v in noise.items())
    out["series"] = series_status(run, record)
    if record and record.get("gpu"):
        out["GPU"] = record["gpu"]
    if cost is not None:
        host = (cost_record or {}).get("host", {}).get("cpu", "not recorded")
        out["exact cost"] = (f"commit {cost.commit[:8]}" + (" (another commit than the timings)" if cost.commit != run.commit
                                                             else "") + f" on {cost.machine}, counted on a {host} host")
    if other_machines:
        out["other machines"] = ", ".join(other_machines) + " (report: --machine NAME)"
    return out


def series_status(run, record):
    """Whether the run is part of its machine's series, and why not."""
    where = f"results/{run.machine}/"
    if record is None:
        return f"from {where}, not made by tasks.py bench"
    if record.get("accepted") is False:
        return (f"NOT part of {where}, not fit to join it: " + "; ".join(record.get("problems", []))
                + " (`python3 tasks.py bench --add-refused` adds it as it is)")
    if record.get("forced"):
        return f"in {where}, added as it was despite: " + ("; ".join(record.get("problems", [])) or "nothing")
    return f"in {where}"


def headline(run, record):
    """One line above the tables: which run this is, and whether it is part of its machine's series."""
    return f"{run.machine}, commit {run.commit[:8]}: {series_status(run, record)}."


def headline_bench(run):
    """The benchmark the run has values of that a reader looks at first: the CPU grid's
    steady state, else the GPU's, else (a cost run) the instructions per step."""
    for bench in (R.STEADY, R.GPU_STEADY, R.COST_INSTRUCTIONS):
        if any(p["value"] is not None for p in run.points(bench).values()):
            return bench
    return R.STEADY


# The series a dashboard link shows: one variant at every dimension (SHOWN_AXIS), the other
# parameters at SHOWN_POINT. asv-tachyon colours a series by its index modulo 12, and the
# variants at one point are 12 or 24 combinations apart: all the same colour on one graph.
SHOWN_AXIS = "dim"
SHOWN_POINT = {"threads": "'1'", "dtype": "'float64'"}


def shown_series(listed, variant):
    """Indices, in asv's order of parameter combinations (the last parameter varies fastest), of
    `variant` at every SHOWN_AXIS value and SHOWN_POINT; `listed`: the benchmark's entry of
    benchmarks.json (None: no indices)."""
    if not listed or repr(variant) not in listed["params"][0]:
        return []
    fixed = {**SHOWN_POINT, "variant": repr(variant)}
    choices = [range(len(values)) if name == SHOWN_AXIS else
               [values.index(fixed[name]) if fixed.get(name) in values else 0]
               for name, values in zip(listed["param_names"], listed["params"])]
    strides = [prod(len(values) for values in listed["params"][i + 1:]) for i in range(len(choices))]
    return [sum(i * stride for i, stride in zip(combo, strides)) for combo in product(*choices)]


def dashboard_urls(run, results_dir, bench=None, variants=None):
    """[(variant, url)]: the asv-tachyon view of one run's benchmark on its machine, for each of
    `variants` (default: the run's first) at every dimension. Every parameter of a result
    (machine.json's fields, python, the environment's packages) is a filter there, and the UI
    keeps each one not in the link at its first value, which another machine's series may have
    alone (an empty graph), so the link sets them all: "null" where this run has none (asv
    publishes a missing parameter as null: a GPU machine's existing environment has no pins)."""
    bench = bench or headline_bench(run)
    keys = {k for m in R.machines(results_dir) for other in R.runs(results_dir, m) for k in other.params}
    filters = {f"f-{k}": run.params.get(k) or "null" for k in sorted(keys) if k != "machine"}
    listed = json.loads((Path(results_dir) / "benchmarks.json").read_text()).get(bench)
    urls = []
    for variant in variants or run.axis(bench, 0)[:1] or [None]:
        fields = {"view": "explore", "bench": bench, "machine": run.params["machine"]}
        series = shown_series(listed, variant)
        if series:
            fields["params"] = ",".join(map(str, series))
        urls.append((variant, "index.html#" + urlencode(fields | filters, quote_via=quote)))
    return urls


def dashboard_url(run, results_dir, bench=None, variant=None):
    """dashboard_urls' link for one variant (default: the run's first)."""
    return dashboard_urls(run, results_dir, bench, [variant] if variant else None)[0][1]


# asv-tachyon lists every parameter combination of a graph as a chip above it (168 for a CPU
# timing); held to two lines that scroll, the graph stays on the first screen.
DASHBOARD_STYLE = "<style id='linreg-compact'>.param-chips{max-height:4.2em;overflow-y:auto}</style>"


def compact_dashboard(html_dir):
    """Add DASHBOARD_STYLE to asv-tachyon's index.html in html_dir (once)."""
    index = Path(html_dir) / "index.html"
    page = index.read_text(encoding="utf-8")
    if DASHBOARD_STYLE not in page:
        index.write_text(page.replace("</head>", DASHBOARD_STYLE + "</head>", 1), encoding="utf-8")


def markdown(headline, answer_tables, tables, facts):
    out = ["# Linear regression by gradient descent: framework comparison", "", headline]

    def table(title, explanation, columns, rows, first="variant"):
        lines = ["", f"## {title}", "", explanation, "", f"| {first} | " + " | ".join(columns) + " |",
                 "|---|" + "---|" * len(columns)]
        for name, cells in rows:
            texts = [f"**{c.text} ★**" if c.best else c.text for c in cells]
            lines.append(f"| {name} | " + " | ".join(texts) + " |")
        return lines

    for t in answer_tables:
        out += table(*t)
    out += ["", "Plots: index.html."]
    for t in tables:
        out += table(*t)
    out += ["", "## How this run was measured", ""] + [f"- **{k}**: {v}" for k, v in facts.items()]
    return "\n".join(out) + "\n"


def plot(run, out_dir):
    """Time vs dimension per thread setting and dtype (log-log), the floor dashed; and the floor
    multiples as a heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    files = []
    settings = [(f"threads={t}", f"threads-{t}", CPU_TRACKS, (t,)) for t in run.axis(R.STEADY, 1)]
    if run.axis(R.GPU_STEADY, 0):
        settings.append(("GPU", "gpu", GPU_TRACKS, ()))
    for label, slug, tracks, where in settings:
        variants, dims = run.axis(tracks["steady"], 0), run.axis(tracks["steady"], len(where) + 1)
        dtypes = run.axis(tracks["steady"], len(where) + 2)
        for dtype in dtypes:
            fig, ax = plt.subplots(figsize=(6.8, 4.4))
            drawn = False
            for v in variants:
                pts = [(d, run.value(tracks["best"], (v, *where, d, dtype))) for d in dims]
                pts = [(d, t * 1e3) for d, t in pts if t is not None]
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=v)
                    drawn = True
            floor = [(d, *floor_values(run, tracks, (*where, d, dtype))) for d in dims]
            floor = [(d, max(t, a or 0) * 1e3) for d, t, a in floor if t is not None]
            if floor:
                ax.plot(*zip(*floor), "k--", label="floor")
            if not drawn:
                plt.close(fig)
                continue
            ax.set(xscale="log", yscale="log", xlabel="dimension d", ylabel="fastest fit of the run (ms)",
                   title=f"Steady state, {label}, {dtype}")
            ax.set_xticks(dims, [str(d) for d in dims])
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
            name = f"time_vs_dim_{slug}_{dtype}.png"
            fig.tight_layout()
            fig.savefig(out_dir / name, dpi=100)
            plt.close(fig)
            files.append((name, f"Steady-state time vs dimension, {label}, {dtype}; dashed: the floor"))
        for dtype in dtypes:
            grid = np.array([[run.value(tracks["multiple"], (v, *where, d, dtype)) or np.nan for d in dims]
                             for v in variants])
            if np.isnan(grid).all():
                continue
            fig, ax = plt.subplots(figsize=(6.8, 0.45 * len(variants) + 1.6))
            im = ax.imshow(np.log2(grid), cmap="RdYlGn_r", vmin=0, vmax=max(1.0, float(np.nanmax(np.log2(grid)))),
                           aspect="auto")
            for (i, j), m in np.ndenumerate(grid):
                ax.text(j, i, "n/a" if np.isnan(m) else f"{m:.1f}×", ha="center", va="center", fontsize=8)
            ax.set_xticks(range(len(dims)), [f"d={d}" for d in dims])
            ax.set_yticks(range(len(variants)), variants)
            ax.set_title(f"Multiple of the floor, {label}, {dtype}")
            fig.colorbar(im, ax=ax, label="log2 multiple (0 = at the floor)")
            name = f"floor_multiple_{slug}_{dtype}.png"
            fig.tight_layout()
            fig.savefig(out_dir / name, dpi=100)
            plt.close(fig)
            files.append((name, f"Multiple of the floor, {label}, {dtype}"))
    return files


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#eee}td.name{text-align:left;background:#f6f6f6}td.best{font-weight:bold;background:#fff3b0}
td.warn{color:#a40}td.na{color:#888;text-align:left}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
"""


def html_page(headline, answer_tables, tables, facts, plots, links):
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>linreg_kernels comparison</title>",
             f"<style>{_CSS}</style></head><body>",
             "<h1>Linear regression by gradient descent: framework comparison</h1>",
             f"<p id='headline'>{e(headline)}</p>"]
    parts += [f"<p>{e(label)}: " + " · ".join(f"<a href='../{e(url)}'>{e(text)}</a>" for text, url in group) + "</p>"
              for label, group in links]
    parts.append("<p><a href='#provenance'>How this run was measured</a> · <a href='report.md'>Markdown</a></p>")

    def table(title, explanation, columns, rows, first="variant"):
        parts.append(f"<h2>{e(title)}</h2><p>{e(explanation)}</p><table class='result'><tr><th>{e(first)}</th>"
                     + "".join(f"<th>{e(c)}</th>" for c in columns) + "</tr>")
        for name, cells in rows:
            parts.append(f"<tr><td class='name'>{e(name)}</td>")
            for c in cells:
                cls = "na" if c.missing else "best" if c.best else "warn" if c.warn else ""
                span = f" colspan='{len(columns)}'" if len(cells) == 1 and len(columns) > 1 else ""
                parts.append(f"<td class='{cls}'{span}>{e(c.text)}</td>")
            parts.append("</tr>")
        parts.append("</table>")

    for t in answer_tables:
        table(*t)
    parts.append("<h2>Plots</h2>")
    parts += [f"<figure><img src='{e(name)}' alt='{e(alt)}'><figcaption>{e(alt)}</figcaption></figure>"
              for name, alt in plots]
    for t in tables:
        table(*t)
    parts.append("<h2>How this run was measured</h2><ul id='provenance'>")
    parts += [f"<li><b>{e(k)}</b>: {e(str(v))}</li>" for k, v in facts.items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def write_report(results_dir="results", out="html/report", machine=None, commit=None, env=None):
    run = R.load_run(results_dir, machine, commit, env)
    info = R.machine_info(results_dir, run.machine)
    others = [m for m in R.machines(results_dir) if m != run.machine]
    record = run_record(results_dir, run)
    tables = sections(run, record)
    cost = R.cost_run(results_dir, run.commit)
    cost_record = run_record(results_dir, cost) if cost is not None else None
    if cost is not None:
        tables += cost_sections(cost, run, cost_record)
    upgrades = V.upgrades(results_dir, run.machine)
    tables += upgrade_sections(upgrades)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    facts = provenance(run, record, info, others, cost, cost_record)
    first = answers(run, record)
    line = headline(run, record)
    (out / "report.md").write_text(markdown(line, first, tables, facts), encoding="utf-8")
    bench = headline_bench(run)
    links = [(f"History on the dashboard ({bench.split('.', 1)[1]}, one thread, float64, every d)",
              dashboard_urls(run, results_dir, bench, run.axis(bench, 0)))]
    if cost is not None:
        links.append(("exact cost (instructions per step)",
                      dashboard_urls(cost, results_dir, R.COST_INSTRUCTIONS, cost.axis(R.COST_INSTRUCTIONS, 0))))
    links += upgrade_links(results_dir, upgrades)
    (out / "index.html").write_text(html_page(line, first, tables, facts, plot(run, out), links), encoding="utf-8")
    return run, out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m harness.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--machine", help="asv machine name (default: the run with the most values)")
    parser.add_argument("--commit", help="commit hash prefix")
    parser.add_argument("--env", help="substring of the asv environment name")
    parser.add_argument("--out", default="html/report")
    args = parser.parse_args(argv)
    try:
        run, out = write_report(args.results_dir, args.out, args.machine, args.commit, args.env)
    except R.ResultsError as exc:
        parser.exit(1, f"error: {exc}\n")
    print(f"report for {run.commit[:8]} on {run.machine}: {out / 'index.html'} and {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
