"""Which machine a run is on, whether it is quiet, and whether it belongs to a series.

Standard library only: tasks.py uses it before any virtual environment exists.

asv keeps one history per machine name. A name stands for one kind of hardware (the CPU model);
a run joins that history only if the machine was quiet (no other process busy, no CPU steal)
before, during and after it, and if its calibration (the one-pass floor, measured by the suite
itself and by `python -m harness.calibrate`) matches the series' earlier runs. What was measured
goes to results/<machine>/runs.jsonl, one line per run, beside asv's own files.
"""
import functools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

# Limits chosen from what an idle 2-core VM shows (others' CPU 0.00-0.03 cores, steal 0-2%) and
# from the floor's own spread there: repeated idle calibrations differ by up to ~10%.
MAX_OTHERS_CORES = 0.15  # CPU used by processes outside this run, in cores (mean over a window)
MAX_STEAL = 0.05  # fraction of CPU time the hypervisor gave to other guests
MAX_CALIBRATION_CHANGE = 0.15  # this run's floor vs the series' median floor
MAX_NOISE = 1.10  # median over fastest of identical passes: a noisier machine cannot resolve 10%
RUNS_LOG = "runs.jsonl"


def _cpuinfo():
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    path = Path("/proc/cpuinfo")
    fields = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def cpu_model(info=None):
    """The CPU as a machine's name must tell it apart: the model name, and where /proc/cpuinfo
    has them the family, the model number and the widest vector extension, e.g. "AMD EPYC,
    family 25 model 17, AVX-512". VMs of one provider can report one model name for CPUs of two
    generations that differ by up to 2x per point."""
    info = _cpuinfo() if info is None else info
    name = info.get("model name") or platform.processor() or platform.machine()
    flags = set(info.get("flags", "").split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    parts = [name]
    if "cpu family" in info and "model" in info:
        parts.append(f"family {info['cpu family']} model {info['model']}")
    return ", ".join(parts + ([isa] if isa else []))


def has_avx2(info=None):
    return "avx2" in (_cpuinfo() if info is None else info).get("flags", "").split()


@functools.cache  # asked by the machine's name, tasks.py's GPU check and the run's record
def gpu_model():
    """The first NVIDIA GPU's name as nvidia-smi reports it ("NVIDIA H200"), or None."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    names = out.stdout.strip().splitlines() if out.returncode == 0 else []
    return names[0].strip() if names else None


def _slug(text):
    words = re.sub(r"\((r|tm)\)|@.*$|\b(processor|cpu)\b", " ", text.lower())
    return "-".join(re.findall(r"[a-z0-9]+", words))


def machine_name(model, cores, gpu=None):
    """asv machine name for a hardware type, e.g. cpu-2core-intel-xeon, or
    gpu-nvidia-h200-cpu-16core-intel-xeon where a GPU answers: results are committed per name, so
    machines of one type share a history and different hardware never joins it."""
    name = f"cpu-{cores}core-{_slug(model)}"
    return f"gpu-{_slug(gpu)}-{name}" if gpu else name


def machine_info():
    """What asv records about this machine. asv makes every field a dashboard filter and a key of
    each series, so the values are the stable ones: kernel major.minor, RAM in GiB (the exact
    kernel build and byte count differ between machines of one type and would split its history)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    model, cores = cpu_model(), os.cpu_count()
    kernel = ".".join(platform.release().split(".")[:2])
    return {"machine": os.environ.get("LINREG_ASV_MACHINE") or machine_name(model, cores, gpu_model()),
            "os": f"{platform.system()} {kernel}", "arch": platform.machine(),
            "cpu": model, "num_cpu": str(cores), "ram": f"{round(ram / 2**30)} GiB"}


def cost_machine_info(valgrind_version):
    """asv's description of the machine the exact cost is counted on: valgrind's virtual CPU,
    not the host. Its counts do not depend on the host's model or load, so every host's cost
    runs form one series; its name changes with what does change them, valgrind's version and
    the instruction set it presents (AVX2 on an AVX2 host, whatever else the host has). The host
    of each run is in runs.jsonl. The name sorts after cpu-* and gpu-*: asv-tachyon opens on the
    first machine, and keeps each filter (cpu, num_cpu, ram...) at its first value: a cost machine
    has no timings, so its fields must not sort first ("n/a", not "1", for the cores)."""
    isa = "avx2" if has_avx2() else "no-avx2"
    version = valgrind_version.removeprefix("valgrind-")
    return {"machine": f"valgrind-{version}-{isa}", "os": "valgrind " + version, "arch": platform.machine(),
            "cpu": f"valgrind {version} virtual CPU ({isa.upper()}); simulated I1, D1 32 KiB, LL 8 MiB",
            "num_cpu": "n/a", "ram": "n/a"}


def register(results_dir, home=None, info=None):
    """Describe this machine to asv under its name and return the name, refusing a name whose
    committed results were measured on another CPU: one series must be one kind of hardware.

    Written to ~/.asv-machine.json directly: `asv machine --machine NAME --yes` (asv 0.6) stores
    only the name, dropping every field equal to its default, and the results would say nothing
    about the hardware.
    """
    info = info or machine_info()
    committed = Path(results_dir) / info["machine"] / "machine.json"
    if committed.exists():
        recorded = json.loads(committed.read_text()).get("cpu")
        if recorded and recorded != info["cpu"]:
            raise SystemExit(f"results/{info['machine']}/ was measured on a {recorded!r} CPU, this one is "
                             f"{info['cpu']!r}: set LINREG_ASV_MACHINE to another name")
    path = Path(home or Path.home()) / ".asv-machine.json"
    known = json.loads(path.read_text()) if path.exists() else {"version": 1}
    known[info["machine"]] = info
    path.write_text(json.dumps(known, indent=4))
    return info["machine"]


# --- load ---------------------------------------------------------------------------------

def _clock_ticks():
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_times():
    """(busy, steal, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    ticks = _clock_ticks()
    return busy / ticks, steal / ticks, (busy + idle + iowait + steal) / ticks


def _process_tree_cpu(root_pid):
    """CPU seconds used so far by root_pid and its descendants (children that have exited and
    been waited for are counted in their parent's cutime/cstime)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))  # ppid, u+s+cu+cs
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += stats.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return total / _clock_ticks()


class LoadSampler:
    """CPU used by everything outside this process tree, and steal, between two readings."""

    def __init__(self, root_pid=None):
        self.root = root_pid or os.getpid()
        self.start = self._read()

    def _read(self):
        busy, steal, total = _cpu_times()
        return time.monotonic(), busy, steal, total, _process_tree_cpu(self.root)

    def since_start(self):
        t1, busy1, steal1, total1, ours1 = self._read()
        t0, busy0, steal0, total0, ours0 = self.start
        seconds = max(t1 - t0, 1e-9)
        others = max(0.0, (busy1 - busy0) - (ours1 - ours0)) / seconds
        steal = (steal1 - steal0) / max(total1 - total0, 1e-9)
        return {"seconds": round(seconds, 1), "others_cores": round(others, 3), "steal": round(steal, 4),
                "loadavg_1min": float(Path("/proc/loadavg").read_text().split()[0])}


def quiet_window(seconds=3.0):
    """Load of the machine over a short window in which this process does nothing."""
    sampler = LoadSampler()
    time.sleep(seconds)
    return sampler.since_start()


class BackgroundLoad:
    """Samples the load every `period` seconds while a run goes on; summary() has the mean and the
    worst window."""

    def __init__(self, period=5.0):
        self.period, self.windows = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            sampler = LoadSampler()
            if self._stop.wait(self.period):
                break
            self.windows.append(sampler.since_start())

    def __enter__(self):
        self._overall = LoadSampler()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.overall = self._overall.since_start()

    def summary(self):
        worst = max(self.windows, key=lambda w: w["others_cores"], default=None)
        return {**self.overall, "worst_window": worst}


def load_problems(load):
    """Why a load reading makes a run not comparable (an empty list if it does not)."""
    problems = []
    if load["others_cores"] > MAX_OTHERS_CORES:
        problems.append(f"other processes used {load['others_cores']:.2f} cores on average over "
                        f"{load['seconds']:.0f} s (limit {MAX_OTHERS_CORES})")
    if load["steal"] > MAX_STEAL:
        problems.append(f"the hypervisor stole {load['steal']:.1%} of CPU time (limit {MAX_STEAL:.0%})")
    return problems


# --- the series' calibration --------------------------------------------------------------

def read_runs(results_dir, machine):
    path = Path(results_dir) / machine / RUNS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_run(results_dir, machine, record):
    path = Path(results_dir) / machine / RUNS_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def series_calibration(runs):
    """The series' reference floor per thread setting: the median over its accepted runs."""
    values = {}
    for run in runs:
        if run.get("accepted"):
            for threads, seconds in run["calibration"]["before"]["floor"].items():
                values.setdefault(threads, []).append(seconds)
    return {threads: statistics.median(v) for threads, v in values.items()}


def spread(samples):
    """Median over fastest of repeated identical measurements: 1.0 when they all agree."""
    return statistics.median(samples) / min(samples)


def run_noise(samples, min_samples=3):
    """{threads: noise} of a run from its own steady-state samples ({threads: [[s, ...] per
    point]}): the median over points of each point's spread. The variants take turns for the
    whole run, so this is the noise over the minutes the run took, as the timed kernels felt it.
    Settings with fewer samples per point are left out."""
    out = {}
    for threads, points in samples.items():
        spreads = [spread(s) for s in points if len(s) >= min_samples]
        if spreads:
            out[threads] = statistics.median(spreads)
    return out


def noise_problems(noise, measured="identical passes"):
    """Why a noise reading (median over fastest) says the machine cannot resolve a 10% change
    (empty if it can)."""
    if noise > MAX_NOISE:
        return [f"{measured} vary: their median is {noise - 1:.1%} above the fastest "
                f"(limit {MAX_NOISE - 1:.0%}); another guest is busy on this core's host"]
    return []


def floor_problems(floor, reference, against="the series' runs"):
    """Why floors ({threads: s}) do not match the reference floors (empty if they do)."""
    problems = []
    for threads, seconds in floor.items():
        ref = reference.get(threads)
        if ref and abs(seconds / ref - 1) > MAX_CALIBRATION_CHANGE:
            problems.append(f"one-pass floor at threads={threads}: {seconds * 1e3:.0f} ms, {against} "
                            f"{ref * 1e3:.0f} ms ({seconds / ref - 1:+.0%}, limit ±{MAX_CALIBRATION_CHANGE:.0%})")
    return problems


def calibration_problems(calibration, reference):
    """Why a calibration ({"floor": {threads: s}, "noise": ratio}) says the machine is too noisy,
    or does not match the series' reference floors (an empty list if neither)."""
    return noise_problems(calibration["noise"]) + floor_problems(calibration["floor"], reference)
