"""What the operating system says about this machine: files under ``/proc`` and ``/sys``, read with the standard
library only, so that every layer of efflab may ask (the bottom layer; see the package docstring)."""

from __future__ import annotations

import os

__all__ = ["cache_sizes_bytes", "last_level_cache_bytes", "read_text"]

# Where Linux lists the caches of CPU 0: one index*/ folder per cache, with type, level and size files.
CPU0_CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"


def read_text(path: str) -> str:
    """The text of a file, or "" when it cannot be read (absent on this OS, or not permitted).

    >>> read_text("/nonexistent/efflab")
    ''
    """
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def cache_sizes_bytes(base: str = CPU0_CACHE_DIR) -> dict[str, int]:
    """Data/unified CPU cache sizes by level ("l1", "l2", "l3") from ``/sys/devices/system/cpu/cpu0/cache``.

    Per-core figures as the OS reports them (an L3 shared by all cores is reported whole; a VM may report its
    host's). Instruction caches are left out. Empty when unreadable.

    Examples
    --------
    >>> all(size > 0 for size in cache_sizes_bytes().values())
    True
    """
    out: dict[str, int] = {}
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return out
    for entry in entries:
        kind = read_text(f"{base}/{entry}/type").strip()
        level, text = read_text(f"{base}/{entry}/level").strip(), read_text(f"{base}/{entry}/size").strip()
        if kind == "Instruction" or not level.isdigit() or not text[:-1].isdigit() and not text.isdigit():
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
        out[f"l{int(level)}"] = int(text.rstrip("KMGkmg")) * scale
    return out


def last_level_cache_bytes(base: str = CPU0_CACHE_DIR) -> int | None:
    """Size of the highest cache level the OS reports (bytes), or None when it reports none.

    >>> size = last_level_cache_bytes()
    >>> size is None or size > 0
    True
    """
    caches = cache_sizes_bytes(base)
    return caches[max(caches, key=lambda level: int(level[1:]))] if caches else None
