#!/usr/bin/env python3
"""Benchmark: our conntrackd against the C conntrackd 1.4.7, same workload,
same machine, one run.

For each N and each daemon: two fresh firewall namespaces joined by a veth
sync link, FTFW over multicast, the daemon on both. `ctload` (our batched
ctnetlink load generator) creates N flows in the primary's kernel, then
updates and deletes them. Measured over these three waves: CPU seconds of
both daemons (/proc/PID/stat), bytes and datagrams on the sync link, the
lag from the end of each wave to the backup holding its result, and the
load generator's rate (also with no daemon, the kernel's own limit, and
with only a bare event listener, the best any daemon can leave it). Then
a failover: N flows again, the primary's daemon stops, and the backup's
commit is timed. Peak RSS (VmHWM) covers everything. Writes results/<stamp>.json, results/latest.json,
results/latest.md and results/latest.png (if matplotlib is installed).

Run through bench/run (as root).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target/release/conntrackd")
CTLOAD = os.path.join(ROOT, "target/release/ctload")
C_DAEMON = "/usr/sbin/conntrackd"
TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.01


def sh(*args, check=True, capture=True):
    r = subprocess.run(args, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Pair:
    """Primary and backup namespaces with a sync link and a daemon each."""

    def __init__(self, daemon, n, tag):
        self.daemon = daemon
        self.bin = OURS if daemon == "ours" else C_DAEMON
        self.ns = [f"bn{os.getpid()}{tag}a", f"bn{os.getpid()}{tag}b"]
        self.dir = tempfile.mkdtemp(prefix="ctd-bench-")
        for ns in self.ns:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        va, vb = f"bv{os.getpid()}{tag}a"[-15:], f"bv{os.getpid()}{tag}b"[-15:]
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        for i, (ns, dev) in enumerate(zip(self.ns, [va, vb])):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "link", "set", dev, "name", "sync0")
            sh("ip", "-n", ns, "addr", "add", f"10.77.0.{i + 1}/24", "dev", "sync0")
            sh("ip", "-n", ns, "link", "set", "sync0", "up")
            self.write_conf(i, n)

    def write_conf(self, i, n):
        limit = max(4 * n, 131072)
        conf = f"""Sync {{
	Mode FTFW {{ }}
	Multicast {{
		IPv4_address 225.0.0.50
		IPv4_interface 10.77.0.{i + 1}
		Interface sync0
		Group 3780
	}}
}}
General {{
	Systemd off
	HashSize {max(n // 4, 8192)}
	HashLimit {limit}
	LogFile {self.dir}/log{i}
	LockFile {self.dir}/lock{i}
	UNIX {{ Path {self.dir}/sock{i} }}
	NetlinkBufferSize 33554432
	NetlinkBufferSizeMaxGrowth 268435456
	Filter {{ Address Ignore {{ IPv4_address 10.77.0.0/24 }} }}
}}
"""
        with open(f"{self.dir}/conf{i}", "w") as f:
            f.write(conf)

    def ctl(self, i, *args):
        return sh("ip", "netns", "exec", self.ns[i], self.bin, "-C", f"{self.dir}/conf{i}", *args, check=False)

    def start(self):
        for i in (1, 0):
            sh("ip", "netns", "exec", self.ns[i], self.bin, "-C", f"{self.dir}/conf{i}", "-d", check=False)
            deadline = time.time() + 10
            while not os.path.exists(f"{self.dir}/sock{i}") and time.time() < deadline:
                time.sleep(0.05)
        time.sleep(1.5)  # FTFW handshake
        self.pids = [self.pid(i) for i in (0, 1)]

    def pid(self, i):
        for p in sh("ip", "netns", "pids", self.ns[i]).split():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip() == "conntrackd":
                        return int(p)
            except OSError:
                pass
        raise RuntimeError(f"no conntrackd in {self.ns[i]}: {open(f'{self.dir}/log{i}').read()}")

    def cpu(self):
        return sum(self.cpu_split())

    def cpu_split(self):
        """(user, system) seconds of both daemons."""
        nodes = self.cpu_nodes()
        return sum(u for u, _ in nodes), sum(s for _, s in nodes)

    def cpu_nodes(self):
        """(user, system) seconds of each daemon, primary first."""
        out = []
        for p in self.pids:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) / TICK, int(fields[12]) / TICK))
        return out

    def rss_now_kib(self):
        """Current RSS (VmRSS) of each daemon."""
        out = []
        for p in self.pids:
            with open(f"/proc/{p}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            out.append(int(m.group(1)) if m else 0)
        return out

    def rss_kib(self):
        """Peak RSS of each daemon; 0 for one that has stopped."""
        out = []
        for p in self.pids:
            try:
                with open(f"/proc/{p}/status") as f:
                    m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
            except OSError:
                m = None
            out.append(int(m.group(1)) if m else 0)
        return out

    def link(self):
        """(bytes, datagrams) sent on the sync link by both nodes."""
        b = d = 0
        for ns in self.ns:
            stats = sh("ip", "netns", "exec", ns, "cat",
                       "/sys/class/net/sync0/statistics/tx_bytes",
                       "/sys/class/net/sync0/statistics/tx_packets").split()
            b += int(stats[0])
            d += int(stats[1])
        return b, d

    def external(self):
        """(active, updated) of the backup's external cache."""
        out = self.ctl(1, "-s")
        m = re.search(r"cache external:\ncurrent active connections:\s+(\d+)\n"
                      r"connections created:\s+\d+\s+failed:\s+\d+\n"
                      r"connections updated:\s+(\d+)", out)
        return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)

    def internal(self, i):
        """Objects in node i's internal cache."""
        out = self.ctl(i, "-s")
        m = re.search(r"cache internal:\ncurrent active connections:\s+(\d+)", out)
        return int(m.group(1)) if m else -1

    def close(self):
        for i in (0, 1):
            self.ctl(i, "-k")
        for ns in self.ns:
            for p in sh("ip", "netns", "pids", ns, check=False).split():
                sh("kill", "-9", p, check=False)
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


FAMILY = []  # ["ipv6"] with --family 6: ctload's flows are IPv6


def load(ns, op, n):
    out = sh("ip", "netns", "exec", ns, CTLOAD, op, str(n), *FAMILY)
    return json.loads(out)


def wait_for(pred, timeout):
    """Polls pred() until true; returns the time it became true, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(POLL)
    return None


def baseline(n, tag):
    """The load generator alone: the kernel's limit."""
    ns = f"bn{os.getpid()}{tag}z"
    sh("ip", "netns", "add", ns)
    try:
        return {op: load(ns, op, n)["rate"] for op in ("create", "update", "delete")}
    finally:
        sh("ip", "netns", "del", ns, check=False)


def bare_listener(n, tag):
    """The load generator with the cheapest possible event listener
    (`ctload listen`: reads and discards events, nothing else): the best
    rate any event-driven daemon can leave it, since the kernel builds and
    queues each event in the context of the process that changed the table."""
    ns = f"bn{os.getpid()}{tag}l"
    sh("ip", "netns", "add", ns)
    listener = subprocess.Popen(["ip", "netns", "exec", ns, CTLOAD, "listen", "3600"],
                                stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        return {op: load(ns, op, n)["rate"] for op in ("create", "update", "delete")}
    finally:
        listener.kill()
        listener.wait()
        sh("ip", "netns", "del", ns, check=False)


def run_one(daemon, n, tag):
    pair = Pair(daemon, n, tag)
    try:
        pair.start()
        cpu0, split0, link0 = pair.cpu(), pair.cpu_split(), pair.link()
        nodes0 = pair.cpu_nodes()
        idle = pair.rss_now_kib()
        r = {"daemon": daemon, "n": n, "rate": {}, "lag_ms": {}}
        # Create wave.
        res = load(pair.ns[0], "create", n)
        end = time.time()
        r["rate"]["create"] = res["rate"]
        seen = [0]

        def created():
            seen[0] = max(seen[0], pair.external()[0])
            return seen[0] >= n
        t = wait_for(created, 60)
        r["lag_ms"]["create"] = None if t is None else round((t - end) * 1000, 1)
        r["lost"] = n - seen[0]
        # Update wave (a new mark on every flow).
        upd0 = pair.external()[1]
        res = load(pair.ns[0], "update", n)
        end = time.time()
        r["rate"]["update"] = res["rate"]
        t = wait_for(lambda: pair.external()[1] - upd0 >= n, 60)
        r["lag_ms"]["update"] = None if t is None else round((t - end) * 1000, 1)
        # Destroy wave.
        res = load(pair.ns[0], "delete", n)
        end = time.time()
        r["rate"]["delete"] = res["rate"]
        t = wait_for(lambda: pair.external()[0] == 0, 60)
        r["lag_ms"]["delete"] = None if t is None else round((t - end) * 1000, 1)
        r["cpu_s"] = round(pair.cpu() - cpu0, 3)
        split = pair.cpu_split()
        r["cpu_user_s"] = round(split[0] - split0[0], 3)
        r["cpu_sys_s"] = round(split[1] - split0[1], 3)
        r["cpu_us_per_event"] = round(r["cpu_s"] / (3 * n) * 1e6, 3)
        # Each node's share, as (user, system) seconds.
        r["cpu_nodes_s"] = {
            role: [round(now - before, 3) for now, before in zip(end_, start_)]
            for role, end_, start_ in zip(("primary", "backup"), pair.cpu_nodes(), nodes0)}
        b, d = pair.link()
        r["link_bytes"] = b - link0[0]
        r["link_datagrams"] = d - link0[1]
        # The failover: N flows again, the primary dies, the backup commits.
        # (Its daemon stops first because on one host its event socket would
        # count as a listener in every namespace: netlink listener masks
        # are global, so the kernel would build events for the backup's
        # commit that only a separate host spares it.)
        load(pair.ns[0], "create", n)
        wait_for(lambda: pair.external()[0] >= n, 60)
        rss_primary = pair.rss_kib()[0]
        pair.ctl(0, "-k")
        # The primary's host is gone, and with it its conntrack entries
        # (here they would share the kernel's hash table with the backup's).
        sh("ip", "netns", "exec", pair.ns[0], "conntrack", "-F", check=False)
        time.sleep(0.3)
        t0 = time.time()
        pair.ctl(1, "-c")
        r["commit_s"] = round(time.time() - t0, 4)
        committed = sh("ip", "netns", "exec", pair.ns[1], "conntrack", "-C").strip()
        r["committed"] = int(committed) if committed.isdigit() else -1
        # The new primary is complete once its internal cache holds the
        # committed flows too (from events, or straight from a quiet commit).
        wait_for(lambda: pair.internal(1) >= n, 30)
        rss = [rss_primary, pair.rss_kib()[1]]
        r["rss_kib"] = {"primary": rss[0], "backup": rss[1]}
        r["idle_rss_kib"] = {"primary": idle[0], "backup": idle[1]}
        # What the flows cost: the larger peak above that daemon's own
        # idle size (binary, libraries, buffers), per flow.
        r["rss_bytes_per_flow"] = round(
            max(peak - base for peak, base in zip(rss, idle)) * 1024 / n, 1)
        return r
    finally:
        pair.close()


def fmt(v, unit=""):
    return "—" if v is None else f"{v}{unit}"


def markdown(results, machine):
    lines = [
        f"Machine: {machine}; {results.get('family', 'IPv4')} TCP flows",
        "",
        "| N | daemon | CPU s (both: user+sys) | CPU µs/event | peak RSS primary/backup (KiB) | RSS B/flow (peak − idle) | sync bytes | datagrams | lag create/update/delete (ms) | commit (s) | lost | loadgen create/s (kernel alone; bare listener) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        base = results["baseline"][str(r["n"])]["create"]
        bare = results.get("bare_listener", {}).get(str(r["n"]), {}).get("create")
        lag = r["lag_ms"]
        lines.append(
            f"| {r['n']} | {r['daemon']} | {r['cpu_s']} ({r['cpu_user_s']}+{r['cpu_sys_s']}) | {r['cpu_us_per_event']} | "
            f"{r['rss_kib']['primary']}/{r['rss_kib']['backup']} | {r['rss_bytes_per_flow']} | "
            f"{r['link_bytes']} | {r['link_datagrams']} | "
            f"{fmt(lag['create'])}/{fmt(lag['update'])}/{fmt(lag['delete'])} | {r['commit_s']} | "
            f"{r['lost']} | {r['rate']['create']:.0f} ({base:.0f}; {fmt(bare)}) |"
        )
    lines.append("")
    lines.append("Ratios, C / ours (higher is better for ours):")
    lines.append("")
    lines.append("| N | CPU per event | RSS per flow | commit time |")
    lines.append("|---|---|---|---|")
    by = {(r["n"], r["daemon"]): r for r in results["runs"]}
    for n in sorted({r["n"] for r in results["runs"]}):
        c, o = by.get((n, "c")), by.get((n, "ours"))
        if c and o:
            ratio = lambda a, b: "—" if not b else f"{a / b:.2f}x"
            lines.append(f"| {n} | {ratio(c['cpu_us_per_event'], o['cpu_us_per_event'])} | "
                         f"{ratio(c['rss_bytes_per_flow'], o['rss_bytes_per_flow'])} | "
                         f"{ratio(c['commit_s'], o['commit_s'])} |")
    lines.append("")
    lines.append("Load generator's create rate as a share of its rate alone (target: within 5 %):")
    lines.append("")
    lines.append("| N | bare listener | c | ours |")
    lines.append("|---|---|---|---|")
    for n in sorted({r["n"] for r in results["runs"]}):
        alone = results["baseline"][str(n)]["create"]
        share = lambda rate: "—" if rate is None else f"{100 * rate / alone:.0f} %"
        bare = results.get("bare_listener", {}).get(str(n), {}).get("create")
        c, o = by.get((n, "c")), by.get((n, "ours"))
        lines.append(f"| {n} | {share(bare)} | {share(c and c['rate']['create'])} | "
                     f"{share(o and o['rate']['create'])} |")
    return "\n".join(lines) + "\n"


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no PNG (apt-get install python3-matplotlib)")
        return
    sizes = sorted({r["n"] for r in results["runs"]})
    by = {(r["n"], r["daemon"]): r for r in results["runs"]}
    metrics = [("cpu_us_per_event", "CPU µs per event"), ("rss_bytes_per_flow", "RSS bytes per flow (peak - idle)"),
               ("commit_s", "commit time (s)"), ("lag", "max lag after a wave (ms)")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(16, 4))
    for ax, (key, title) in zip(axes, metrics):
        for k, daemon in enumerate(("c", "ours")):
            vals = []
            for n in sizes:
                r = by.get((n, daemon))
                if r is None:
                    vals.append(0)
                elif key == "lag":
                    vals.append(max((v or 0) for v in r["lag_ms"].values()))
                else:
                    vals.append(r[key])
            xs = [i + (k - 0.5) * 0.38 for i in range(len(sizes))]
            ax.bar(xs, vals, width=0.38, label="conntrackd 1.4.7 (C)" if daemon == "c" else "ours (Rust)")
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"{n // 1000}k" for n in sizes])
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,250000")
    ap.add_argument("--daemons", default="c,ours")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--family", choices=("4", "6"), default="4",
                    help="the flows' address family (6 writes latest-ipv6.*)")
    a = ap.parse_args()
    if a.family == "6":
        FAMILY.append("ipv6")
    latest = "latest" if a.family == "4" else "latest-ipv6"
    sizes = [int(s) for s in a.sizes.split(",")]
    daemons = a.daemons.split(",")
    os.makedirs(a.out, exist_ok=True)
    sh("sysctl", "-qw", f"net.netfilter.nf_conntrack_max={4 * max(sizes) + 65536}")
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    machine = (f"{cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} CPUs, "
               f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, "
               f"Linux {platform.release()}")
    commit = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).strip()
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "commit": commit, "machine": machine, "family": f"IPv{a.family}",
               "baseline": {}, "bare_listener": {}, "runs": []}
    for i, n in enumerate(sizes):
        results["baseline"][str(n)] = baseline(n, f"{i}")
        print(f"N={n} kernel alone: {results['baseline'][str(n)]}", flush=True)
        results["bare_listener"][str(n)] = bare_listener(n, f"{i}")
        print(f"N={n} with a bare listener: {results['bare_listener'][str(n)]}", flush=True)
        for daemon in daemons:
            r = run_one(daemon, n, f"{i}{daemon[0]}")
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    stamp = results["date"].replace(":", "").replace("+0000", "Z")
    for name in (f"{stamp}.json", f"{latest}.json"):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(results, f, indent=1)
    md = markdown(results, machine)
    with open(os.path.join(a.out, f"{latest}.md"), "w") as f:
        f.write(md)
    plot(results, os.path.join(a.out, f"{latest}.png"))
    print(md)


if __name__ == "__main__":
    sys.exit(main())
