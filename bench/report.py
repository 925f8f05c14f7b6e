#!/usr/bin/env python3
"""Writes the README's benchmark figures from bench/results: the goals of
issue 17 checked against the latest result files, then each suite's
table as bench.py wrote it. Everything between the README's
`<!-- bench:begin -->` and `<!-- bench:end -->` markers is replaced; no
figure in that part is written by hand.

    python3 bench/report.py          # rewrite the README
    python3 bench/report.py --check  # exit 1 if the README is stale
"""

import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench/results")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

SUITES = [
    ("latest-sweep", "Rate sweep (`sudo bench/run --suite sweep`)"),
    ("latest", "Full speed, IPv4 (`sudo bench/run`)"),
    ("latest-ipv6", "Full speed, IPv6 (`sudo bench/run --family 6`)"),
    ("latest-mix", "Full speed, the realistic mix of flows (`sudo bench/run --family mix`)"),
    ("latest-labels", "Full speed, flows with connection labels (`sudo bench/run --family labels`)"),
    ("latest-scale", "Scale, 10k to 2M flows (`sudo bench/run --suite scale`)"),
    ("latest-loss", "Loss recovery (`sudo bench/run --suite loss`)"),
]


def load(name):
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def verdict(ok):
    return "met" if ok else "**not met**"


def source(name, data):
    return f"`bench/results/{name}.json` ({data['date'][:16]}, commit {data['commit']}, load {data.get('load', '?')})"


def sweep_goals(sweep, by, ours):
    """The sweep's goals for one build or setting of ours ("ours", or
    "ours-dN": `EventBatchDelay N`)."""
    rows = []
    setting = "" if ours == "ours" else f" (ours with `EventBatchDelay {ours[6:]}`)"
    both, primary, lags, forwarded = [], [], [], []
    for (workload, rate, daemon), r in by.items():
        if daemon != ours:
            continue
        c, b = by.get((workload, rate, "c")), by.get((workload, rate, "bare"))
        f = by.get((workload, rate, "forward"))
        label = f"{workload} {rate or 'full'}"
        if f and f["cpu_us_per_event"].get("primary"):
            forwarded.append((r["cpu_us_per_event"]["primary"] / f["cpu_us_per_event"]["primary"], label))
        if c:
            both.append((r["cpu_us_per_event"]["total"] / c["cpu_us_per_event"]["total"], label))
        if b and b["cpu_us_per_event"]["total"]:
            primary.append((r["cpu_us_per_event"]["primary"] / b["cpu_us_per_event"]["total"], label))
        for wave, lag in r["lag_ms"].items():
            theirs = c["lag_ms"].get(wave) if c else None
            lags.append((lag, theirs, f"{label} {wave}"))
    if both:
        worst = max(both)
        rows.append((f"CPU of both daemons ≤ 0.4× C's at every rate{setting}",
                     f"{min(both)[0]:.2f}×–{worst[0]:.2f}× (worst: {worst[1]})", verdict(worst[0] <= 0.4),
                     source("latest-sweep", sweep)))
    if primary:
        worst = max(primary)
        rows.append((f"our primary ≤ 1.5× the bare listener's CPU at every rate{setting}",
                     f"{min(primary)[0]:.2f}×–{worst[0]:.2f}× (worst: {worst[1]})", verdict(worst[0] <= 1.5),
                     source("latest-sweep", sweep)))
    if forwarded and ours == "ours":
        worst = max(forwarded)
        rows.append(("not an issue goal, the floor it would have on two hosts: our primary ≤ 1.5× the bare "
                     "forwarder's CPU (it reads the events and sends them on the link, nothing else)",
                     f"{min(forwarded)[0]:.2f}×–{worst[0]:.2f}× (worst: {worst[1]})", verdict(worst[0] <= 1.5),
                     source("latest-sweep", sweep)))
    if lags:
        done = [lag for lag, _, _ in lags if lag is not None]
        med = statistics.median(done) if done else None
        worst = max(lags, key=lambda x: float("inf") if x[0] is None else x[0])
        above_c = [w for lag, theirs, w in lags if lag is not None and theirs is not None and lag > theirs]
        ok = med is not None and med <= 10 and worst[0] is not None and worst[0] <= 50
        rows.append((f"lag after every wave ≤ 10 ms median, ≤ 50 ms max{setting}",
                     f"median {med} ms, max {worst[0]} ms ({worst[2]})", verdict(ok), source("latest-sweep", sweep)))
        rows.append((f"lag after every wave ≤ C's{setting}",
                     f"above C's in {len(above_c)} of {len(lags)} waves" +
                     (f" ({', '.join(above_c[:6])})" if above_c else ""), verdict(not above_c),
                     source("latest-sweep", sweep)))
    return rows


def goals():
    """One row per goal: what it asks, what was measured, where."""
    rows = []
    sweep = load("latest-sweep")
    if sweep:
        by = {(r["workload"], r["rate"], r["daemon"]): r for r in sweep["runs"]}
        variants = sorted({d for (_, _, d) in by if d.startswith("ours-d")}, key=lambda d: int(d[6:]))
        for ours in ["ours"] + variants:
            rows += sweep_goals(sweep, by, ours)
    for name in ("latest", "latest-scale"):
        data = load(name)
        if not data:
            continue
        for r in data["runs"]:
            if r["daemon"] != "ours" or r["n"] < 100_000:
                continue
            limit = r.get("kernel_create_s") or r["n"] / data["baseline"][str(r["n"])]["create"]
            share = limit / r["commit_s"]
            rows.append((f"commit ≥ 90 % of the kernel's create rate ({r['n']} flows)",
                         f"{100 * share:.0f} % ({r['commit_s']} s; kernel alone {limit:.3f} s)", verdict(share >= 0.9),
                         source(name, data)))
    scale = load("latest-scale")
    if scale:
        for daemon in ("ours", "c"):
            runs = sorted((r for r in scale["runs"] if r["daemon"] == daemon), key=lambda r: r["n"])
            if len(runs) < 2:
                continue
            base = lambda r: r.get("kernel_create_s") or r["n"] / scale["baseline"][str(r["n"])]["create"]
            per = {
                "CPU µs/event": [r["cpu_us_per_event"] for r in runs],
                "RSS B/flow": [r["rss_bytes_per_flow"] for r in runs],
                "commit µs/flow": [round(r["commit_s"] / r["n"] * 1e6, 2) for r in runs],
                "commit / kernel alone": [round(r["commit_s"] / base(r), 2) for r in runs],
            }
            # From 100k up: at 10k, fixed costs (starting `conntrackd -c`) weigh.
            big = [i for i, r in enumerate(runs) if r["n"] >= 100_000]
            spread = {k: max(v[i] for i in big) / min(v[i] for i in big) for k, v in per.items()
                      if big and min(v[i] for i in big) > 0 and k != "commit µs/flow"}
            worst = max(spread, key=spread.get)
            text = "; ".join(f"{k} " + "/".join(str(x) for x in v) for k, v in per.items())
            sizes = "/".join(f"{r['n'] // 1000}k" for r in runs)
            rows.append((f"{'ours' if daemon == 'ours' else '1.4.7'}: linear growth, 10k to 2M flows "
                         "(per-event and per-flow costs flat; commit relative to the kernel's own)",
                         f"at {sizes}: {text}. From 100k up the largest change is {worst} ({spread[worst]:.2f}×)",
                         (verdict(spread[worst] <= 1.25) if daemon == "ours" else "—"), source("latest-scale", scale)))
    for name, family, limit in (("latest", "IPv4", 0.3), ("latest-ipv6", "IPv6", 0.5), ("latest-mix", "mixed (NAT, IPv6)", 0.5),
                                ("latest-labels", "labelled IPv4", 0.5), ("latest-scale", "IPv4, up to 2M", 0.3)):
        data = load(name)
        if not data:
            continue
        by = {(r["n"], r["daemon"]): r for r in data["runs"]}
        ratios = []
        for (n, daemon), r in by.items():
            c = by.get((n, "c"))
            if daemon == "ours" and c and c["rss_bytes_per_flow"]:
                ratios.append((r["rss_bytes_per_flow"] / c["rss_bytes_per_flow"], n))
        if ratios:
            worst = max(ratios)
            rows.append((f"RSS per flow ≤ {limit}× C's, {family} flows",
                         f"{min(ratios)[0]:.2f}×–{worst[0]:.2f}× (worst at {worst[1]})", verdict(worst[0] <= limit),
                         source(name, data)))
    loss = load("latest-loss")
    if loss:
        for r in loss["runs"]:
            if r["daemon"] != "ours":
                continue
            times = [t for t in r["create_s"] + r["delete_s"]]
            done = [t for t in times if t is not None]
            worst = None if len(done) < len(times) else max(done)
            med = statistics.median(sorted(float("inf") if t is None else t for t in times))
            rows.append((f"a {r['burst']}-flow burst complete on the backup within 2 s at {r['loss_percent']} % loss, every time",
                         f"{len(r['create_s'])} runs of create and delete: median {med:.2f} s, max {worst if worst is not None else 'never'} s",
                         verdict(worst is not None and worst <= 2.0), source("latest-loss", loss)))
    return rows


def helpers_queue():
    """The user-space helpers' queue path, from the newest
    bench/results/helpers-queue-*.json (written by bench/helpers-queue)."""
    names = sorted(n for n in os.listdir(RESULTS) if n.startswith("helpers-queue-") and n.endswith(".json"))
    if not names:
        return []
    with open(os.path.join(RESULTS, names[-1])) as f:
        data = json.load(f)
    lines = ["", "#### User-space helpers' queue path (`sudo bench/helpers-queue`)", "",
             f"From `bench/results/{names[-1]}` ({data['machine']}, Linux {data['kernel']}; "
             "the cores are shared with the traffic's sender and receiver). Verdict latency runs from the read "
             "of a batch to its verdict; send to delivery adds the queue's wait and the scheduling of three "
             "threads.", "",
             "| round | packets | verdicts/s of busy time | verdicts/s of wall clock | read→verdict p50 / p99 | send→delivery p50 / p99 |",
             "|---|---|---|---|---|---|"]
    for r in data["result"]["rounds"]:
        rv, sd = r["read_to_verdict_us"], r["send_to_delivery_us"]
        name = r["round"] if r["rate_asked"] is None else f"{r['round']} at {r['rate_asked']:,}/s"
        lines.append(f"| {name} | {r['delivered']:,} of {r['sent']:,} delivered | {r['verdicts_per_busy_s']:,} | "
                     f"{r['verdicts_per_wall_s']:,} | {rv['p50']} µs / {rv['p99']} µs | {sd['p50']} µs / {sd['p99']} µs |")
    helper = data["result"].get("helper", {})
    if helper:
        lines += ["", f"The helper saw {helper['packets']:,} packets: {helper['parse_errors']} parse errors, "
                      f"{helper['queue_drops']} queue drops."]
    return lines


def block():
    lines = [BEGIN, "",
             "Generated by `bench/report.py` from `bench/results/` (do not edit by hand).", "",
             "Against the goals of issue 17:", "",
             "| goal | measured | | from |", "|---|---|---|---|"]
    for goal, measured, ok, src in goals():
        lines.append(f"| {goal} | {measured} | {ok} | {src} |")
    for name, title in SUITES:
        md = os.path.join(RESULTS, f"{name}.md")
        if not os.path.exists(md):
            continue
        lines += ["", f"#### {title}", ""]
        with open(md) as f:
            lines += f.read().rstrip("\n").split("\n")
        if os.path.exists(os.path.join(RESULTS, f"{name}.png")):
            lines += ["", f"![{title}](bench/results/{name}.png)"]
    lines += helpers_queue()
    lines += ["", END]
    return "\n".join(lines)


def main():
    with open(README) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        sys.exit(f"README.md has no {BEGIN} … {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + block() + tail
    if "--check" in sys.argv:
        if new != text:
            sys.exit("README.md's benchmark section is stale: run python3 bench/report.py")
        return
    with open(README, "w") as f:
        f.write(new)


if __name__ == "__main__":
    main()
