"""Which machine a run is on, and how noisy the run was.

Standard library only: tasks.py uses it before any virtual environment exists.

asv keeps one history per machine name. A name stands for one kind of hardware (the CPU model,
family, model number and vector extension); a timing run joins that history if its own samples
say the machine kept its speed (run_noise) and no other work ran beside it (OtherWork). What was
measured goes to results/<machine>/runs.jsonl, one line per run, beside asv's own files.
"""
import functools
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.settings import MACHINE_ENV_VAR

# Median over fastest of a point's samples, median over points: beyond it, another guest slowed
# this core's host for part of the run and the run's medians are off by more than 10%.
MAX_NOISE = 1.10
# Cores that processes other than the run's own may use on average while it is timed. A steady
# hog on the other core leaves the noise low (every sample is slowed alike) while the all-cores
# timings slow down: numpy at d = 100, threads=all, took 4.5x as long beside one (2026-12-03).
MAX_OTHERS = 0.25
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
    return {"machine": os.environ.get(MACHINE_ENV_VAR) or machine_name(model, cores, gpu_model()),
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
                             f"{info['cpu']!r}: set {MACHINE_ENV_VAR} to another name")
    path = Path(home or Path.home()) / ".asv-machine.json"
    known = json.loads(path.read_text()) if path.exists() else {"version": 1}
    known[info["machine"]] = info
    path.write_text(json.dumps(known, indent=4))
    return info["machine"]


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


class OtherWork:
    """The cores other processes used on this machine between its creation and cores(): every
    process's CPU time (/proc/stat) less this process's and its waited-for descendants'."""

    def __init__(self):
        self._start = time.perf_counter(), self._busy(), self._own()

    @staticmethod
    def _busy():
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[1:8])
        return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own():
        own = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return sum(usage.ru_utime + usage.ru_stime for usage in own)

    def cores(self):
        """None where /proc/stat cannot be read."""
        wall, busy, own = self._start
        if busy is None:
            return None
        return max(0.0, (self._busy() - busy) - (self._own() - own)) / (time.perf_counter() - wall)


def others_problems(cores):
    """Why other work on this machine during the run (OtherWork's figure) makes it unfit."""
    if cores is not None and cores > MAX_OTHERS:
        return [f"other processes on this machine used {cores:.2f} cores on average while it ran (limit "
                f"{MAX_OTHERS:.2f}): its timings were taken beside other work; run it with nothing else running"]
    return []


def noise_problems(noise, measured):
    """Why a run's noise (run_noise's figure for one thread setting) makes it unfit to join its
    series (empty if it does not)."""
    if noise > MAX_NOISE:
        return [f"{measured} vary: their median is {noise - 1:.1%} above the fastest "
                f"(limit {MAX_NOISE - 1:.0%}): the machine's speed changed during the run (other work here, or "
                "another guest on its host)"]
    return []
