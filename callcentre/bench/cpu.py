"""Where the CPU goes during a run: CPU seconds (user + system, from /proc) of each process of the stack (with
its worker children), of PostgreSQL (every `postgres` process) and of the load generator itself."""

from __future__ import annotations

import os
from collections.abc import Mapping


def _read_stats() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds) of every process, or {} without /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, str, float]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def snapshot(processes: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds so far per named process tree (the process and its children), plus `postgres`, `nats`
    when not named, and `load generator` (this process)."""
    stats = _read_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name, _cpu) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        total, todo, seen = 0.0, [pid], set()
        while todo:
            p = todo.pop()
            if p in seen or p not in stats:
                continue
            seen.add(p)
            total += stats[p][2]
            todo.extend(children.get(p, ()))
        return total

    out = {name: tree(pid) for name, pid in processes.items()}
    out["postgres"] = sum(cpu for _ppid, name, cpu in stats.values() if name == "postgres")
    own = os.getpid()
    out["load generator"] = stats[own][2] if own in stats else 0.0
    return out


def cores_used(before: Mapping[str, float], after: Mapping[str, float], seconds: float) -> dict[str, float]:
    """Average cores each process used between two snapshots (a process that restarted counts from 0)."""
    if seconds <= 0:
        return {}
    return {name: round(max(0.0, after[name] - before.get(name, 0.0)) / seconds, 2) for name in after}
