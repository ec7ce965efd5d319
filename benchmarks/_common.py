"""Helpers shared by the benchmark scripts: environment record, tables, load.

Not part of the sklearn_lt package; imported by ``bench_accuracy.py``,
``bench_speed.py`` and ``report.py``, which live in the same folder.
"""

import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_ROOT = BENCH_DIR.parent

PACKAGES = (
    "torch",
    "skorch",
    "scikit-learn",
    "imbalanced-learn",
    "numpy",
    "sklearn-lt",
)


def command_line():
    """The command that is running, as it could be typed again."""
    script = os.path.relpath(sys.argv[0], REPO_ROOT)
    return " ".join(["python", shlex.quote(script), *map(shlex.quote, sys.argv[1:])])


def package_versions():
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name():
    import torch

    if torch.cuda.is_available():
        return ", ".join(
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        )
    return "none (torch.cuda.is_available() is False)"


def load_average():
    """The 1-, 5- and 15-minute load averages, rounded."""
    return [round(value, 2) for value in os.getloadavg()]


def environment(seeds=None, **extra):
    """Everything needed to interpret a result file: command, versions, hardware."""
    import torch

    record = {
        "command": command_line(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": package_versions(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpu": gpu_name(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": load_average(),
    }
    if seeds is not None:
        record["seeds"] = list(seeds)
    record.update(extra)
    return record


def environment_markdown(env):
    """The environment record as a short markdown list."""
    versions = ", ".join(f"{name} {v}" for name, v in env["packages"].items())
    lines = [
        f"- Command: `{env['command']}`",
        f"- Date (UTC): {env['date_utc']}; wall time {env.get('wall_time_s', '?')} s",
        f"- Hardware: {env['cpu']}, {env['cpu_cores']} cores; GPU: {env['gpu']}",
        f"- Python {env['python']}; {versions}",
        f"- torch threads: {env['torch_threads']}; load average (1, 5, 15 min) "
        f"at start {env['load_average_start']}, at end "
        f"{env.get('load_average_end', '?')}",
    ]
    if "suite_wall_time_s" in env:
        lines.append(f"- Wall time per suite (s): {env['suite_wall_time_s']}")
    if "seeds" in env:
        lines.append(f"- Seeds: {env['seeds']}")
    if "relabelled" in env:
        lines.append(f"- Method names relabelled {env['relabelled']}")
    for later in env.get("later_runs", []):
        renamed = later.get("renamed", {})
        run_as = (
            " (run under the names "
            + ", ".join(f"{old} -> {new}" for old, new in renamed.items())
            + ")"
            if renamed
            else ""
        )
        lines.append(
            f"- Rows of {', '.join(later['methods'])} from a later run{run_as}: "
            f"`{later['command']}` ({later['date_utc']}, wall time "
            f"{later.get('wall_time_s', '?')} s, load average at start "
            f"{later['load_average_start']})"
        )
    return "\n".join(lines)


def fmt(value, digits=1, scale=1.0):
    """A number for a table; NaN and None print as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * scale:.{digits}f}"


def fmt_mean_std(values, digits=1, scale=100.0):
    """``mean ± std`` of the finite values (std over seeds, ddof=1)."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return "-"
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return fmt(mean, digits, scale)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def markdown_table(header, rows):
    """A GitHub markdown table; numbers right-aligned."""
    align = ["---"] + ["--:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def wait_for_low_load(threshold, max_wait, poll=15.0, log=print):
    """Wait until the 1-minute load average is below ``threshold``.

    Returns the load average seen last and whether the wait timed out.
    """
    start = time.monotonic()
    while True:
        load = os.getloadavg()[0]
        if load < threshold:
            return load, False
        waited = time.monotonic() - start
        if waited >= max_wait:
            log(f"load {load:.2f} still >= {threshold} after {waited:.0f} s; going on")
            return load, True
        log(f"load average {load:.2f} >= {threshold}; waiting ({waited:.0f} s so far)")
        time.sleep(poll)


def write_json(path, payload):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)
