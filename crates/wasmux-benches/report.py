#!/usr/bin/env python3
"""Summarises the last `cargo bench -p wasmux-benches --bench cold_start` run as a
Markdown table: the median of (a), (b) and (c) per engine, then (d), wasmux's
overhead over raw wasmtime taking the same steps, as ratios of medians.

    python3 crates/wasmux-benches/report.py [CARGO_TARGET_DIR]
"""
import json
import os
import sys
from pathlib import Path

target = Path(sys.argv[1] if len(sys.argv) > 1 else
              os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/wasmux/target"))
root = target / "criterion"
steps = {"a-compile-run": "(a) bytes → compile → run",
         "b-cache-hit-run": "(b) cache hit → run",
         "c-prepared-run": "(c) prepared module → run"}


def median(step, engine):
    path = root / step / engine / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def show(ns):
    if ns is None:
        return "unsupported"
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.1f} µs"


engines = sorted({p.name for s in steps for p in (root / s).glob("*") if p.is_dir()} - {"report"},
                 key=lambda e: (e.startswith("raw"), e))
print("| engine | " + " | ".join(steps.values()) + " |")
print("|---|" + "---:|" * len(steps))
for engine in engines:
    print(f"| {engine} | " + " | ".join(show(median(s, engine)) for s in steps) + " |")
print()
print("| (d) overhead over raw wasmtime | " + " | ".join(steps.values()) + " |")
print("|---|" + "---:|" * len(steps))
for ours, raw in [("wasmtime", "raw-wasmtime"), ("wasmtime-pooled", "raw-wasmtime-pooled")]:
    cells = []
    for s in steps:
        a, b = median(s, ours), median(s, raw)
        cells.append("n/a" if a is None or b is None else f"{a / b:.2f}x ({(a / b - 1) * 100:+.0f}%)")
    print(f"| {ours} / {raw} | " + " | ".join(cells) + " |")
