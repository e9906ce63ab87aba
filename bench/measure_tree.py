"""Run a command and measure its whole process tree: wall time, peak summed RSS (sampled from
/proc every 0.2 s) and CPU seconds (user + system of every process in the tree, at its last
sample). `/usr/bin/time -v` sees only the command itself and the children it waits for, not the
workers of a fork-server process pool, hence this.

Run: python bench/measure_tree.py [--probe] -- sim run scenarios/week_at_scale.toml --no-record -q
Linux only (reads /proc).

--probe: also time a plain SimPy M/M/c queue (bench_engine.py's baseline, 200,000 requests, best
of 3) just before and just after the command. This machine's speed drifts by 30-40% over an
hour, so a wall time means little without the host's speed at the time it was taken.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(name))
    return kids


def _tree(root: int) -> list[int]:
    kids, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _sample(pid: int) -> tuple[int, float] | None:
    """(RSS bytes, CPU seconds) of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except OSError:
        return None
    return rss_pages * PAGE, (int(fields[11]) + int(fields[12])) / TICK


def _host_speed() -> int:
    """Requests/s of bench_engine.py's plain SimPy M/M/c baseline, best of 3, in a child."""
    code = (
        "import sys; sys.argv = ['x']; sys.path.insert(0, 'bench'); import bench_engine as b; "
        "print(max(b.mmc_baseline(200_000, seed=s) for s in range(3)))"
    )
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=here, capture_output=True, text=True, check=True
    )
    return round(float(done.stdout.split()[-1]))


def main() -> None:
    argv = sys.argv[1:]
    probe = bool(argv) and argv[0] == "--probe"
    if probe:
        argv = argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    before = _host_speed() if probe else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv)
    peak, cpu = 0, {}
    while proc.poll() is None:
        total = 0
        for pid in _tree(proc.pid):
            got = _sample(pid)
            if got is not None:
                total += got[0]
                cpu[pid] = got[1]
        peak = max(peak, total)
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    out = {
        "command": " ".join(argv),
        "exit": proc.returncode,
        "wall_s": round(wall, 1),
        "peak_tree_rss_mb": round(peak / 2**20),
        "cpu_s": round(sum(cpu.values()), 1),
        "cpu_s_by_process": sorted((round(v, 1) for v in cpu.values()), reverse=True)[:6],
        "load_end": os.getloadavg(),
    }
    if probe:
        out["host_mmc_req_per_s"] = [before, _host_speed()]  # just before, just after
    print(json.dumps(out), file=sys.stderr)


if __name__ == "__main__":
    main()
