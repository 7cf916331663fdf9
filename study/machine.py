"""What machine a timing was taken on: figures from different CPUs must not be compared as if they were one."""

from __future__ import annotations

import os
import platform
from pathlib import Path

_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def _cpuinfo() -> dict[str, str] | None:
    """First value of each /proc/cpuinfo key (Linux), or None where there is no such file."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return None
    return info


def cpu_description() -> str:
    """'<model name>, family <n>, <cores> cores, <features>' from /proc/cpuinfo (Linux), the vector features being
    those that decide training speed (avx2 avx512f avx512_bf16 amx_tile); platform.processor() elsewhere."""
    info = _cpuinfo()
    if info is None:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    flags = set(info.get("flags", "").split())
    parts = [info.get("model name", platform.machine())]
    if "cpu family" in info:
        parts.append(f"family {info['cpu family']}")
    parts.append(f"{os.cpu_count()} cores")
    parts.append(" ".join(f for f in _FEATURES if f in flags) or "no avx2")
    return ", ".join(parts)


def has_bf16() -> bool:
    """True where the CPU computes bfloat16 natively (AVX512_BF16 or AMX): only there does bf16 training pay;
    elsewhere TensorFlow emulates it and training gets slower."""
    flags = set((_cpuinfo() or {}).get("flags", "").split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})
