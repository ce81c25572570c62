#!/usr/bin/env python3
"""Where the seconds of each drill go, as a picture (issue 16).

Reads the JSON lines bench/drills-all.sh writes (one drill report per line,
each with its `phases`) and draws one stacked bar per profile and drill:
the median time from the fault to each phase, as segments from one phase to
the next, with the drill's median recovered_s at the end. Writes an SVG
(no dependencies beyond Python's standard library).

    bench/phases.py target/bench/drills-all-*.jsonl -o docs/recovery-phases.svg
"""
import argparse
import json
import statistics
import sys
from html import escape

# The phases in the order an outage goes through them; a service's stop
# (`stopped svc-NAME`) is folded into "services stopped", its start
# (`started svc-NAME`) into "services". The stops are a planned move's
# (switchover, standby) and a recovery's on the node that gives up.
ORDER = [
    "detected",
    "fencing requested",
    "fenced",
    "services stopped",
    "vip down",
    "unmounted",
    "lease released",
    "lease held",
    "mounted",
    "vip up",
    "services",
    "first smtp 250",
]
COLOURS = {
    "detected": "#d62728",
    "fencing requested": "#ff7f0e",
    "fenced": "#bcbd22",
    "services stopped": "#e377c2",
    "vip down": "#aec7e8",
    "unmounted": "#9edae5",
    "lease released": "#98df8a",
    "lease held": "#2ca02c",
    "mounted": "#17becf",
    "vip up": "#1f77b4",
    "services": "#9467bd",
    "first smtp 250": "#7f7f7f",
}


def phase_times(report):
    """Seconds from the fault to each phase of ORDER, in one report."""
    t = {}
    for p in report.get("phases") or []:
        name = p["phase"]
        if name.startswith("started svc-") or name.startswith("stopped svc-"):
            name = "services" if name.startswith("started") else "services stopped"
            t[name] = max(t.get(name, 0.0), p["at_s"])
        elif name in ORDER and name not in t:
            t[name] = p["at_s"]
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jsonl", nargs="+")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()
    rows = []
    for f in a.jsonl:
        for line in open(f):
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    groups = {}
    for r in rows:
        groups.setdefault((r.get("profile", "?"), r["drill"]), []).append(r)
    bars = []
    for (profile, drill), rs in groups.items():
        med = {}
        for name in ORDER:
            xs = [phase_times(r)[name] for r in rs if name in phase_times(r)]
            if xs:
                med[name] = statistics.median(xs)
        rec = [r["recovered_s"] for r in rs if r.get("recovered_s") is not None]
        bars.append((profile, drill, med, statistics.median(rec) if rec else None, len(rs)))
    # Each drill's bars together, the stock profile's after mailha's, so a
    # reader compares them side by side.
    first_seen = {d: i for i, d in enumerate(dict.fromkeys(r["drill"] for r in rows))}
    bars.sort(key=lambda b: (first_seen[b[1]], b[0] == "stock"))
    scale_s = max([b[3] or 0 for b in bars] + [max(b[2].values(), default=0) for b in bars] + [1])
    width, left, row = 960, 300, 26
    plot = width - left - 20
    height = 60 + row * len(bars) + 60
    px = lambda s: left + plot * s / scale_s
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        f'<text x="10" y="20" font-size="14">Where the seconds go: median time from the fault to each phase ({len(rows)} drill runs)</text>',
    ]
    for i, (profile, drill, med, rec, n) in enumerate(bars):
        y = 40 + i * row
        out.append(f'<text x="10" y="{y + 15}">{escape(profile)} {escape(drill)} ({n})</text>')
        prev = 0.0
        for name in ORDER:
            if name not in med:
                continue
            x0, x1 = px(prev), px(max(med[name], prev))
            out.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="18" fill="{COLOURS[name]}">'
                f"<title>{escape(name)}: {med[name]:.2f} s</title></rect>"
            )
            prev = max(med[name], prev)
        if rec is not None:
            out.append(f'<text x="{px(rec) + 4:.1f}" y="{y + 14}">{rec:.2f} s</text>')
    y = 40 + len(bars) * row + 10
    for s in range(0, int(scale_s) + 2):
        if px(s) <= width - 10:
            out.append(f'<line x1="{px(s):.1f}" y1="35" x2="{px(s):.1f}" y2="{y}" stroke="#ddd"/>')
            out.append(f'<text x="{px(s) - 3:.1f}" y="{y + 12}">{s}</text>')
    lx, ly = 10, y + 20
    for name in ORDER:
        w = 14 + 7 * len(name) + 14
        if lx + w > width:
            lx, ly = 10, ly + 18
        out.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{COLOURS[name]}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly + 9}">{escape(name)}</text>')
        lx += w
    out.append("</svg>")
    svg = "\n".join(out) + "\n"
    if a.output == "-":
        sys.stdout.write(svg)
    else:
        open(a.output, "w").write(svg)


if __name__ == "__main__":
    main()
