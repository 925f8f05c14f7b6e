#!/usr/bin/env python3
"""Benchmark: our conntrackd against the C conntrackd 1.4.7, same workload,
same machine, one run.

Suites (--suite, several separated by commas):

waves (default): for each N and each daemon, two fresh firewall namespaces
  joined by a veth sync link, FTFW over multicast, the daemon on both.
  `ctload` creates N flows in the primary's kernel as fast as it can, then
  updates and deletes them. Measured over these three waves: CPU seconds
  of both daemons (/proc/PID/stat), wake-ups (context switches), bytes and
  datagrams on the sync link, the lag from the end of each wave to the
  backup holding its result, and the load generator's rate (also with no
  daemon, the kernel's own limit, and with only a bare event listener).
  Then a failover: N flows again, the primary's daemon stops, and the
  backup's commit is timed against the kernel's own create rate. Peak RSS
  (VmHWM) covers everything. `--suite scale` is the same over 10k to 2M
  flows (results/latest-scale.*).

sweep: the same waves paced at 1k, 10k, 50k events/s and full speed
  (`ctload --rate`), with a bare listener at each rate (the floor: reading
  the events and nothing else), plus the realistic churn stream (`ctload
  churn`: TCP, UDP, ICMP, NAT, IPv6, short- and long-lived flows) at 10k
  and 50k events/s. CPU per event of each daemon and of the listener,
  wake-ups per event, datagrams each way (data from the primary, ACKs from
  the backup) and the lag after every wave. With perf installed, a second
  short pass counts system calls per event of each daemon at 1k and 10k/s
  (perf stat on raw_syscalls; not in the CPU figures, since tracing slows
  every call) and records where our primary spends its time.

loss: FTFW over a sync link that drops a share of the datagrams both ways
  (nftables `numgen random`), a burst of flows (20,000) created at full
  speed, and the time from its end until the backup holds every flow; then
  the same for deleting them. Repeated (20 runs for ours), median and max.

Writes results/<suite>-<stamp>.json, results/latest[-suite].json, .md
and .png (if matplotlib is installed). `bench/report.py` puts the tables
into the README.

Run through bench/run (as root).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target/release/conntrackd")
CTLOAD = os.path.join(ROOT, "target/release/ctload")
C_DAEMON = "/usr/sbin/conntrackd"
TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.0005
NAMES = {"c": "conntrackd 1.4.7 (C)", "ours": "ours (Rust)", "bare": "bare listener",
         "forward": "bare forwarder and sink"}
# Other builds of ours for A/B runs: `--daemons ours,base=/tmp/conntrackd-base`.
BINARIES = {"ours": OURS, "c": C_DAEMON}
# Lines added to a daemon's General block: `--batch-delays 0` runs ours
# as "ours-d0" with `EventBatchDelay 0` besides the default.
GENERAL_EXTRA = {}


def sh(*args, check=True, capture=True):
    r = subprocess.run(args, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def proc_cpu(pid):
    """(user, system) seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def proc_switches(pid):
    """Context switches of a process (voluntary: its wake-ups)."""
    with open(f"/proc/{pid}/status") as f:
        text = f.read()
    v = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", text, re.M)
    n = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", text, re.M)
    return (int(v.group(1)) if v else 0) + (int(n.group(1)) if n else 0)


def ns_link(ns):
    """(tx bytes, tx datagrams) of a namespace's sync0."""
    stats = sh("ip", "netns", "exec", ns, "cat",
               "/sys/class/net/sync0/statistics/tx_bytes",
               "/sys/class/net/sync0/statistics/tx_packets").split()
    return int(stats[0]), int(stats[1])


class Pair:
    """Primary and backup namespaces with a sync link and a daemon each."""

    def __init__(self, daemon, n, tag, loss=0):
        self.daemon = daemon
        self.bin = BINARIES[daemon]
        self.ns = [f"bn{os.getpid()}{tag}a", f"bn{os.getpid()}{tag}b"]
        self.dir = tempfile.mkdtemp(prefix="ctd-bench-")
        for ns in self.ns:
            add_ns(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        va, vb = f"bv{os.getpid()}{tag}a"[-15:], f"bv{os.getpid()}{tag}b"[-15:]
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vb)
        for i, (ns, dev) in enumerate(zip(self.ns, [va, vb])):
            sh("ip", "link", "set", dev, "netns", ns)
            sh("ip", "-n", ns, "link", "set", dev, "name", "sync0")
            sh("ip", "-n", ns, "addr", "add", f"10.77.0.{i + 1}/24", "dev", "sync0")
            sh("ip", "-n", ns, "link", "set", "sync0", "up")
            self.write_conf(i, n)
            if loss:
                rules = os.path.join(self.dir, f"loss{i}.nft")
                with open(rules, "w") as f:
                    f.write("table inet loss {\n chain input { type filter hook input priority 0; "
                            f"udp dport 3780 numgen random mod 100 < {loss} drop; }}\n}}\n")
                sh("ip", "netns", "exec", ns, "nft", "-f", rules)

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
	{GENERAL_EXTRA.get(self.daemon, "")}
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
                    if f.read().strip() == os.path.basename(self.bin)[:15]:
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
        return [proc_cpu(p) for p in self.pids]

    def switches(self):
        """Context switches of each daemon, primary first."""
        return [proc_switches(p) for p in self.pids]

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
        a, b = self.link_nodes()
        return a[0] + b[0], a[1] + b[1]

    def link_nodes(self):
        """(bytes, datagrams) sent by each node, primary first."""
        return [ns_link(ns) for ns in self.ns]

    def stats(self, i):
        """`-s` of node i, asked on its control socket directly: a
        `conntrackd -s` process took milliseconds to start on a busy
        machine, which blurred the lag (1.4.7 and ours read the same
        request: an int, native-endian; the answer ends at EOF)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(5)
                s.connect(f"{self.dir}/sock{i}")
                s.sendall(struct.pack("=i", 21))
                chunks = []
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return b"".join(chunks).decode(errors="replace")
                    chunks.append(chunk)
        except OSError:
            return ""

    def external(self):
        """(active, updated) of the backup's external cache."""
        out = self.stats(1)
        m = re.search(r"cache external:\ncurrent active connections:\s+(\d+)\n"
                      r"connections created:\s+\d+\s+failed:\s+\d+\n"
                      r"connections updated:\s+(\d+)", out)
        return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)

    def internal(self, i):
        """Objects in node i's internal cache."""
        out = self.stats(i)
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


FAMILY = []  # ctload's flow options: ["ipv6"] with --family 6, ["--mix"] with --family mix, ["--labels"] with --family labels
# An nftables ruleset loaded into every namespace the bench creates, or
# None. Labelled flows need one that uses labels: the kernel attaches the
# label area to a flow only in a namespace whose rules set labels.
NS_RULES = None


def add_ns(ns):
    sh("ip", "netns", "add", ns)
    if NS_RULES:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=NS_RULES,
                       text=True, check=True)


EXITING = []  # load generators that answered and are still exiting


def run_ctload(ns, *args):
    """Runs ctload and returns its JSON line as soon as it is printed: the
    process then takes milliseconds to exit (it frees what it built), and
    the lag after a wave is timed meanwhile, from the `end` it reports."""
    for proc in EXITING:
        proc.wait()
    EXITING.clear()
    proc = subprocess.Popen(["ip", "netns", "exec", ns, CTLOAD, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"ctload {' '.join(args)}: {proc.stderr.read().strip()}")
    EXITING.append(proc)
    return json.loads(line)


def load(ns, op, n, rate=None):
    extra = ["--rate", str(rate)] if rate else []
    return run_ctload(ns, op, str(n), *FAMILY, *extra)


def churn(ns, events, rate):
    return run_ctload(ns, "churn", str(events), "--rate", str(rate))


def wait_for(pred, timeout):
    """Polls pred() until true; returns the time it became true, or None."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(POLL)
    return None


# Times the kernel alone creates the N flows after each commit; the best
# counts.
KERNEL_ALONE_RUNS = 3
# The same for the commit (the first is the failover itself).
COMMIT_RUNS = 3


def other_daemons():
    """conntrackd processes running on the host besides ours: their event
    sockets make the kernel build events everywhere (listener masks are
    global), so a baseline taken meanwhile is not the kernel alone."""
    states = sh("ps", "-C", "conntrackd", "-o", "stat=", check=False).split()
    # Zombies (our own daemons not reaped yet) listen to nothing.
    return sum(1 for st in states if not st.startswith("Z"))


def baseline(n, tag):
    """The load generator alone: the kernel's limit."""
    ns = f"bn{os.getpid()}{tag}z"
    add_ns(ns)
    try:
        return {op: load(ns, op, n)["rate"] for op in ("create", "update", "delete")}
    finally:
        sh("ip", "netns", "del", ns, check=False)


class Listener:
    """`ctload listen` in a namespace of its own: reads and discards events,
    nothing else."""

    def __init__(self, tag):
        self.ns = f"bn{os.getpid()}{tag}l"
        add_ns(self.ns)
        # `ip netns exec` execs ctload: the child's pid is the listener's.
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, CTLOAD, "listen", "3600"],
                                     stdout=subprocess.DEVNULL)
        time.sleep(0.3)

    def cpu(self):
        return sum(proc_cpu(self.proc.pid))

    def switches(self):
        return proc_switches(self.proc.pid)

    def close(self):
        self.proc.kill()
        self.proc.wait()
        sh("ip", "netns", "del", self.ns, check=False)


class BarePair(Pair):
    """The floor of replication: in the primary's namespace `ctload
    forward` reads the events and sends part of each to the backup's
    address on the sync link, where `ctload sink` receives and discards
    them. No cache, no protocol: what reading and sending alone cost."""

    def __init__(self, tag):
        BINARIES.setdefault("forward", CTLOAD)
        super().__init__("forward", 0, tag)

    def start(self):
        exe = lambda i, *args: subprocess.Popen(["ip", "netns", "exec", self.ns[i], CTLOAD, *args],
                                                stdout=subprocess.DEVNULL)
        self.procs = [exe(1, "sink", "3600", "3780"), exe(0, "forward", "3600", "10.77.0.2:3780")]
        time.sleep(0.3)
        if any(p.poll() is not None for p in self.procs):
            raise RuntimeError("ctload forward/sink did not start")
        # `ip netns exec` execs ctload: the children's pids are theirs.
        self.pids = [self.procs[1].pid, self.procs[0].pid]

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        for ns in self.ns:
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def bare_listener(n, tag):
    """The load generator with the cheapest possible event listener
    (`ctload listen`: reads and discards events, nothing else): the best
    rate any event-driven daemon can leave it, since the kernel builds and
    queues each event in the context of the process that changed the table."""
    listener = Listener(tag)
    try:
        return {op: load(listener.ns, op, n)["rate"] for op in ("create", "update", "delete")}
    finally:
        listener.close()


def run_one(daemon, n, tag):
    pair = Pair(daemon, n, tag)
    try:
        pair.start()
        cpu0, split0, link0 = pair.cpu(), pair.cpu_split(), pair.link()
        nodes0 = pair.cpu_nodes()
        sw0 = pair.switches()
        idle = pair.rss_now_kib()
        r = {"daemon": daemon, "n": n, "rate": {}, "lag_ms": {}}
        # Create wave.
        res = load(pair.ns[0], "create", n)
        end = res.get("end", time.time())
        r["rate"]["create"] = res["rate"]
        seen = [0]

        def created():
            seen[0] = max(seen[0], pair.external()[0])
            return seen[0] >= n
        t = wait_for(created, 120)
        r["lag_ms"]["create"] = None if t is None else round((t - end) * 1000, 1)
        r["lost"] = n - seen[0]
        # Update wave (a new mark on every flow).
        upd0 = pair.external()[1]
        res = load(pair.ns[0], "update", n)
        end = res.get("end", time.time())
        r["rate"]["update"] = res["rate"]
        t = wait_for(lambda: pair.external()[1] - upd0 >= n, 120)
        r["lag_ms"]["update"] = None if t is None else round((t - end) * 1000, 1)
        # Destroy wave.
        res = load(pair.ns[0], "delete", n)
        end = res.get("end", time.time())
        r["rate"]["delete"] = res["rate"]
        t = wait_for(lambda: pair.external()[0] == 0, 120)
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
        r["wakeups_per_event"] = {
            role: round((now - before) / (3 * n), 4)
            for role, now, before in zip(("primary", "backup"), pair.switches(), sw0)}
        b, d = pair.link()
        r["link_bytes"] = b - link0[0]
        r["link_datagrams"] = d - link0[1]
        # The failover: N flows again, the primary dies, the backup commits.
        # (Its daemon stops first because on one host its event socket would
        # count as a listener in every namespace: netlink listener masks
        # are global, so the kernel would build events for the backup's
        # commit that only a separate host spares it.)
        load(pair.ns[0], "create", n)
        wait_for(lambda: pair.external()[0] >= n, 120)
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
        wait_for(lambda: pair.internal(1) >= n, 60)
        rss = [rss_primary, pair.rss_kib()[1]]
        # Timed like the kernel alone below (the best of a few runs: a
        # commit varies by ±15 % from run to run): the committed entries are
        # flushed, the backup's internal cache empties from the events, and
        # the external cache is committed again.
        commits = [r["commit_s"]]
        for _ in range(COMMIT_RUNS - 1):
            sh("ip", "netns", "exec", pair.ns[1], "conntrack", "-F", check=False)
            wait_for(lambda: pair.internal(1) == 0, 60)
            time.sleep(0.3)
            t0 = time.time()
            pair.ctl(1, "-c")
            commits.append(round(time.time() - t0, 4))
        r["commit_runs_s"] = commits
        r["commit_s"] = min(commits)
        # The kernel's own create rate right after the commit, with no
        # daemon of ours running (the backup's event socket would make the
        # kernel build events): the machine is shared, and a baseline taken
        # minutes apart can see other load.
        pair.ctl(1, "-k")
        # The committed entries go too: the kernel's conntrack hash table is
        # one for every namespace, and the commit started with it free of
        # these flows, so the kernel alone must as well.
        sh("ip", "netns", "exec", pair.ns[1], "conntrack", "-F", check=False)
        time.sleep(0.3)
        alone = f"bn{os.getpid()}{tag}k"
        add_ns(alone)
        try:
            r["other_conntrackd_at_commit"] = other_daemons()
            # The kernel's own time varies from run to run (by 2x at 2M
            # flows): its best of a few runs is the limit.
            runs = []
            for _ in range(KERNEL_ALONE_RUNS):
                runs.append(load(alone, "create", n)["seconds"])
                load(alone, "delete", n)
            r["kernel_create_runs_s"] = runs
            r["kernel_create_s"] = min(runs)
        finally:
            sh("ip", "netns", "del", alone, check=False)
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


def ratio(a, b):
    return None if not a or not b else a / b


def fx(v, digits=2):
    return "—" if v is None else f"{v:.{digits}f}x"


def machine_line(results):
    return f"Machine: {results['machine']}; load average before the run: {results.get('load', '?')}"


def markdown(results, machine=None):
    family = results.get("family", "IPv4")
    family = {"mix": "the realistic mix of flows (TCP/UDP/ICMP, 10 % IPv6, 20 % NAT)",
              "labels": "IPv4 TCP flows with a connection label each"}.get(family, f"{family} TCP flows")
    lines = [
        f"{machine_line(results)}; {family}; commit {results.get('commit')}",
        "",
        "| N | daemon | CPU s (both: user+sys) | CPU µs/event | wake-ups/event primary/backup | peak RSS primary/backup (KiB) | RSS B/flow (peak − idle) | sync bytes | datagrams | lag create/update/delete (ms) | commit (s) | commit / kernel's create rate (kernel alone, s) | lost | loadgen create/s (kernel alone; bare listener) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        base = results["baseline"][str(r["n"])]["create"]
        bare = results.get("bare_listener", {}).get(str(r["n"]), {}).get("create")
        lag = r["lag_ms"]
        wk = r.get("wakeups_per_event", {})
        limit = r.get("kernel_create_s") or r["n"] / base
        lines.append(
            f"| {r['n']} | {r['daemon']} | {r['cpu_s']} ({r['cpu_user_s']}+{r['cpu_sys_s']}) | {r['cpu_us_per_event']} | "
            f"{fmt(wk.get('primary'))}/{fmt(wk.get('backup'))} | "
            f"{r['rss_kib']['primary']}/{r['rss_kib']['backup']} | {r['rss_bytes_per_flow']} | "
            f"{r['link_bytes']} | {r['link_datagrams']} | "
            f"{fmt(lag['create'])}/{fmt(lag['update'])}/{fmt(lag['delete'])} | {r['commit_s']} | "
            f"{100 * limit / r['commit_s']:.0f} % ({limit:.3f} s) | "
            f"{r['lost']} | {r['rate']['create']:.0f} ({base:.0f}; {fmt(bare)}) |"
        )
    others = {f"{r['n']} {r['daemon']}": r["other_conntrackd_at_commit"] for r in results["runs"]
              if "other_conntrackd_at_commit" in r}
    if others:
        lines.append("")
        lines.append("Kernel alone: `ctload create N` in a fresh namespace right after the commit, the pair's daemons "
                     "stopped and the committed entries flushed, best of "
                     f"{len(results['runs'][0].get('kernel_create_runs_s', [0]))} runs. Other conntrackd processes on the host then (their event sockets make the kernel build "
                     "events for every flow, so the figure is the kernel alone only at 0): "
                     + ", ".join(f"{k}: {v}" for k, v in others.items()) + ".")
    lines.append("")
    lines.append("Ratios, ours / C (lower is better for ours):")
    lines.append("")
    lines.append("| N | CPU per event | RSS per flow | peak RSS | commit time |")
    lines.append("|---|---|---|---|---|")
    by = {(r["n"], r["daemon"]): r for r in results["runs"]}
    for n in sorted({r["n"] for r in results["runs"]}):
        c, o = by.get((n, "c")), by.get((n, "ours"))
        if c and o:
            peak = lambda r: max(r["rss_kib"].values())
            lines.append(f"| {n} | {fx(ratio(o['cpu_us_per_event'], c['cpu_us_per_event']))} | "
                         f"{fx(ratio(o['rss_bytes_per_flow'], c['rss_bytes_per_flow']))} | "
                         f"{fx(ratio(peak(o), peak(c)))} | "
                         f"{fx(ratio(o['commit_s'], c['commit_s']))} |")
    lines.append("")
    lines.append("Load generator's create rate as a share of its rate alone:")
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


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("matplotlib missing: no PNG (apt-get install python3-matplotlib)")
        return None


def plot(results, path):
    plt = pyplot()
    if plt is None:
        return
    sizes = sorted({r["n"] for r in results["runs"]})
    by = {(r["n"], r["daemon"]): r for r in results["runs"]}
    metrics = [("cpu_us_per_event", "CPU µs per event"), ("rss_bytes_per_flow", "RSS bytes per flow (peak - idle)"),
               ("commit_s", "commit time (s)"), ("lag", "max lag after a wave (ms)")]
    fig, axes = plt.subplots(1, len(metrics), figsize=(16, 4))
    curve = len(sizes) > 3
    for ax, (key, title) in zip(axes, metrics):
        for k, daemon in enumerate(("c", "ours")):
            vals = []
            for n in sizes:
                r = by.get((n, daemon))
                if r is None:
                    vals.append(None)
                elif key == "lag":
                    vals.append(max((v or 0) for v in r["lag_ms"].values()))
                else:
                    vals.append(r[key])
            label = NAMES[daemon]
            if curve:
                pts = [(n, v) for n, v in zip(sizes, vals) if v is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            else:
                xs = [i + (k - 0.5) * 0.38 for i in range(len(sizes))]
                ax.bar(xs, [v or 0 for v in vals], width=0.38, label=label)
        if curve:
            ax.set_xscale("log")
            ax.set_xlabel("flows")
            if key == "commit_s":
                lim = [(by.get((n, "ours")) or {}).get("kernel_create_s") or n / results["baseline"][str(n)]["create"]
                       for n in sizes]
                ax.plot(sizes, lim, linestyle="--", color="gray", label="kernel alone (ctload create)")
                ax.set_yscale("log")
        else:
            ax.set_xticks(range(len(sizes)))
            ax.set_xticklabels([f"{n // 1000}k" for n in sizes])
        ax.set_title(title)
    axes[0].legend()
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ---- sweep --------------------------------------------------------------

def sweep_n(rate, cap):
    """Flows per wave at a rate: about 10 s of events, at most `cap`."""
    return cap if rate is None else min(cap, max(2000, rate * 10))


def run_paced(daemon, rate, n, tag, workload):
    """The three waves (or the churn stream) at `rate` through a pair, or
    through a bare listener (`daemon` "bare")."""
    r = {"daemon": daemon, "rate": rate, "n": n, "workload": workload, "lag_ms": {}, "loadgen": {}}
    pair = listener = None
    if daemon == "bare":
        listener = Listener(tag)
        ns = listener.ns
        cpu = lambda: [listener.cpu()]
        switches = lambda: [listener.switches()]
    else:
        pair = BarePair(tag) if daemon == "forward" else Pair(daemon, n, tag)
        ns = pair.ns[0]
        cpu = lambda: [sum(c) for c in pair.cpu_nodes()]
        switches = pair.switches
    try:
        if pair:
            pair.start()
        cpu0, sw0 = cpu(), switches()
        link0 = pair.link_nodes() if pair else None
        events = 0
        if workload == "churn":
            res = churn(ns, n, rate)
            end = res.get("end", time.time())
            events = n
            r["loadgen"]["churn"] = res["rate"]
            r["live"] = res["live"]
            r["churn"] = {k: res[k] for k in ("creates", "updates", "deletes")}
            if pair and daemon != "forward":
                t = wait_for(lambda: pair.external()[0] == res["live"], 60)
                r["lag_ms"]["churn"] = None if t is None else round((t - end) * 1000, 1)
                r["loadgen_errors"] = res["errors"]
                r["backup_holds"] = pair.external()[0]
                r["primary_kernel"] = sh("ip", "netns", "exec", ns, "conntrack", "-C").strip()
        else:
            for op in ("create", "update", "delete"):
                upd0 = pair.external()[1] if pair and op == "update" else 0
                res = load(ns, op, n, rate)
                end = res.get("end", time.time())
                events += n
                r["loadgen"][op] = res["rate"]
                if not pair or daemon == "forward":
                    time.sleep(0.1)
                    continue
                done = {"create": lambda: pair.external()[0] >= n,
                        "update": lambda: pair.external()[1] - upd0 >= n,
                        "delete": lambda: pair.external()[0] == 0}[op]
                t = wait_for(done, 60)
                r["lag_ms"][op] = None if t is None else round((t - end) * 1000, 1)
        r["events"] = events
        used = [now - before for now, before in zip(cpu(), cpu0)]
        woke = [now - before for now, before in zip(switches(), sw0)]
        roles = ("primary", "backup") if pair else ("listener",)
        r["cpu_s"] = {role: round(u, 3) for role, u in zip(roles, used)}
        r["cpu_us_per_event"] = {role: round(u / events * 1e6, 3) for role, u in zip(roles, used)}
        r["cpu_us_per_event"]["total"] = round(sum(used) / events * 1e6, 3)
        r["wakeups_per_event"] = {role: round(w / events, 4) for role, w in zip(roles, woke)}
        if pair:
            now = pair.link_nodes()
            r["datagrams_per_event"] = {role: round((a[1] - b[1]) / events, 4)
                                        for role, a, b in zip(roles, now, link0)}
            r["bytes_per_event"] = {role: round((a[0] - b[0]) / events, 1)
                                    for role, a, b in zip(roles, now, link0)}
        return r
    finally:
        if pair:
            pair.close()
        if listener:
            listener.close()


def perf_available():
    return shutil.which("perf") is not None and subprocess.run(
        ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"],
        capture_output=True).returncode == 0


def run_perf(daemon, rate, n, tag):
    """System calls and wake-ups of each daemon over a paced create wave,
    counted by perf (a pass of its own: tracing slows every call); for
    ours, also where the primary's time goes (perf record)."""
    pair = Pair(daemon, n, tag)
    out = os.path.join(pair.dir, "perf")
    try:
        pair.start()
        stats = [subprocess.Popen(["perf", "stat", "-x", ",", "-e",
                                   "raw_syscalls:sys_enter,context-switches,task-clock",
                                   "-p", str(p), "-o", f"{out}.stat{i}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i, p in enumerate(pair.pids)]
        record = None
        if daemon != "c":
            record = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-p", str(pair.pids[0]),
                                       "-o", f"{out}.data"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        link0 = pair.link_nodes()
        load(pair.ns[0], "create", n, rate)
        wait_for(lambda: pair.external()[0] >= n, 60)
        time.sleep(0.2)
        now = pair.link_nodes()
        for p in stats + ([record] if record else []):
            p.send_signal(2)
            p.wait()
        r = {"daemon": daemon, "rate": rate, "n": n}
        for i, role in enumerate(("primary", "backup")):
            counts = {}
            with open(f"{out}.stat{i}") as f:
                for line in f:
                    parts = line.strip().split(",")
                    if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                        counts[parts[2]] = float(parts[0])
            sent = now[i][1] - link0[i][1]
            r[role] = {
                "syscalls_per_event": round(counts.get("raw_syscalls:sys_enter", 0) / n, 3),
                "switches_per_event": round(counts.get("context-switches", 0) / n, 3),
                "datagrams_sent_per_event": round(sent / n, 4),
                "syscalls_per_datagram_sent": round(counts.get("raw_syscalls:sys_enter", 0) / sent, 1) if sent else None,
            }
        if record:
            report = sh("perf", "report", "-i", f"{out}.data", "--no-children", "--sort", "symbol",
                        "--stdio", "-g", "none", "--percent-limit", "2", check=False)
            top = []
            for line in report.splitlines():
                m = re.match(r"\s+([\d.]+)%\s+\[([.k])\]\s+(.*)", line)
                if m:
                    # perf pads the symbol column and ends the line with " - -".
                    symbol = re.sub(r"(\s+-)+\s*$", "", " ".join(m.group(3).split()))[:90]
                    top.append([float(m.group(1)), ("kernel " if m.group(2) == "k" else "") + symbol])
            r["primary"]["profile"] = top[:15]
            # Inclusive shares of the system calls that move the data: what
            # reading the events costs (a bare listener's whole work) and
            # what sending to the peer costs (on veth, the peer's network
            # stack and wake-up run in the sender's call).
            tree = sh("perf", "report", "-i", f"{out}.data", "--children", "--sort", "symbol",
                      "--stdio", "-g", "none", check=False)
            shares = {}
            for line in tree.splitlines():
                m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[[.k]\]\s+(\S+)", line)
                if m and m.group(2) in ("__recvmmsg", "__libc_sendto", "epoll_wait", "clock_nanosleep@GLIBC_2.2.5"):
                    shares[m.group(2).split("@")[0]] = max(shares.get(m.group(2).split("@")[0], 0), float(m.group(1)))
            r["primary"]["syscall_shares"] = shares
        return r
    finally:
        pair.close()


def sweep_markdown(results):
    lines = [f"{machine_line(results)}; commit {results.get('commit')}", ""]
    lines.append("CPU per kernel event (µs) at each rate; the bare listener reads the events and nothing else; "
                 "the bare forwarder reads them too and sends 86 bytes of each to a sink on the backup "
                 "(datagrams filled as ours are, the last one before each 4 ms pause): reading and sending alone. "
                 "Goals: both daemons together ≤ 0.4× C's, our primary ≤ 1.5× the bare listener.")
    lines.append("")
    lines.append("| workload | rate/s | N | bare listener | bare forwarder / sink | C primary+backup | ours primary+backup | ours/C | "
                 "ours primary | ours primary / bare | ours primary / forwarder | ours backup / sink | "
                 "wake-ups/event C (pri/bak) | wake-ups/event ours (pri/bak) | datagrams/event C (data/ACK) | datagrams/event ours (data/ACK) | "
                 "lag C (ms) | lag ours (ms) |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    by = {(r["workload"], r["rate"], r["daemon"]): r for r in results["runs"]}
    keys = []
    for r in results["runs"]:
        k = (r["workload"], r["rate"])
        if k not in keys:
            keys.append(k)
    cpu = lambda r, role="total": None if r is None else r["cpu_us_per_event"].get(role)
    wk = lambda r: "—" if r is None else f"{r['wakeups_per_event']['primary']}/{r['wakeups_per_event']['backup']}"
    dg = lambda r: "—" if r is None else f"{r['datagrams_per_event']['primary']}/{r['datagrams_per_event']['backup']}"
    lag = lambda r: "—" if r is None else "/".join(fmt(v) for v in r["lag_ms"].values())
    for workload, rate in keys:
        b, f, c, o = (by.get((workload, rate, d)) for d in ("bare", "forward", "c", "ours"))
        n = (c or o or b)["n"]
        lines.append(
            f"| {workload} | {rate or 'full'} | {n} | {fmt(cpu(b))} | "
            f"{'—' if f is None else fmt(cpu(f, 'primary')) + ' / ' + fmt(cpu(f, 'backup'))} | {fmt(cpu(c))} | {fmt(cpu(o))} | "
            f"{fx(ratio(cpu(o), cpu(c)))} | {fmt(cpu(o, 'primary'))} | {fx(ratio(cpu(o, 'primary'), cpu(b)))} | "
            f"{fx(ratio(cpu(o, 'primary'), cpu(f, 'primary')))} | {fx(ratio(cpu(o, 'backup'), cpu(f, 'backup')))} | "
            f"{wk(c)} | {wk(o)} | {dg(c)} | {dg(o)} | {lag(c)} | {lag(o)} |")
    lines.append("")
    lines.append("Lag is from the end of each wave (create/update/delete, or the churn stream) to the backup's "
                 "`-s` showing its result.")
    variants = sorted({d for (_, _, d) in by if d.startswith("ours-d")}, key=lambda d: int(d[6:]))
    if variants:
        lines.append("")
        lines.append("Lag or CPU: ours with each `EventBatchDelay` (ms; 4 unless written, 0 reads events as they "
                     "come, as 1.4.7 does), against C in the same run.")
        lines.append("")
        lines.append("| workload | rate/s | EventBatchDelay | both daemons / C's CPU | wake-ups/event (pri/bak) | "
                     "lag (ms) | lag C (ms) | waves with lag ≤ C's |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for workload, rate in keys:
            c = by.get((workload, rate, "c"))
            for d in ["ours"] + variants:
                o = by.get((workload, rate, d))
                if o is None:
                    continue
                ms = 4 if d == "ours" else int(d[6:])
                le = "—" if c is None else sum(
                    1 for w, v in o["lag_ms"].items()
                    if v is not None and c["lag_ms"].get(w) is not None and v <= c["lag_ms"][w])
                lines.append(f"| {workload} | {rate or 'full'} | {ms} | {fx(ratio(cpu(o), cpu(c)))} | {wk(o)} | "
                             f"{lag(o)} | {lag(c)} | {le} of {len(o['lag_ms'])} |")
    if results.get("perf"):
        lines.append("")
        lines.append("Counted by perf over a paced create wave (a pass of its own):")
        lines.append("")
        lines.append("| daemon | rate/s | node | syscalls/event | context switches/event | datagrams sent/event | syscalls per datagram sent |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in results["perf"]:
            for role in ("primary", "backup"):
                p = r[role]
                lines.append(f"| {r['daemon']} | {r['rate'] or 'full'} | {role} | {p['syscalls_per_event']} | "
                             f"{p['switches_per_event']} | {p['datagrams_sent_per_event']} | {fmt(p['syscalls_per_datagram_sent'])} |")
        for r in results["perf"]:
            top = r["primary"].get("profile")
            if top:
                lines.append("")
                shares = r["primary"].get("syscall_shares", {})
                lines.append(f"Where our primary's time goes at {r['rate'] or 'full speed'}{'/s' if r['rate'] else ''} "
                             "(perf record): inclusive, " +
                             ", ".join(f"`{k}` {v:.0f} %" for k, v in sorted(shares.items())) +
                             "; self time ≥ 2 %: " + "; ".join(f"{sym} {pct:.0f} %" for pct, sym in top[:10]))
    return "\n".join(lines) + "\n"


def sweep_plot(results, path):
    plt = pyplot()
    if plt is None:
        return
    variants = sorted({r["daemon"] for r in results["runs"] if r["daemon"].startswith("ours-d")},
                      key=lambda d: int(d[6:]))
    fig, axes = plt.subplots(1, 4 if variants else 3, figsize=(21 if variants else 16, 4))
    for workload, ax in zip(("waves", "churn"), axes[:2]):
        runs = [r for r in results["runs"] if r["workload"] == workload]
        rates = []
        for r in runs:
            if r["rate"] not in rates:
                rates.append(r["rate"])
        for k, (daemon, key) in enumerate((("bare", "total"), ("c", "total"), ("ours", "total"), ("ours", "primary"))):
            vals = []
            for rate in rates:
                r = next((x for x in runs if x["rate"] == rate and x["daemon"] == daemon), None)
                vals.append(r["cpu_us_per_event"].get(key, 0) if r else 0)
            xs = [i + (k - 1.5) * 0.2 for i in range(len(rates))]
            label = NAMES[daemon] + (" primary only" if key == "primary" else (" both daemons" if daemon != "bare" else ""))
            ax.bar(xs, vals, width=0.2, label=label)
        ax.set_xticks(range(len(rates)))
        ax.set_xticklabels([f"{r // 1000}k/s" if r else "full" for r in rates])
        ax.set_title(f"CPU µs per event ({'create/update/delete waves' if workload == 'waves' else 'realistic churn'})")
    axes[0].legend(fontsize=7)
    ax = axes[2]
    runs = [r for r in results["runs"] if r["daemon"] != "bare"]
    for k, daemon in enumerate(("c", "ours")):
        labels, vals = [], []
        for r in runs:
            if r["daemon"] != daemon:
                continue
            for wave, v in r["lag_ms"].items():
                labels.append(f"{(r['rate'] or 0) // 1000 or 'full'}{'k' if r['rate'] else ''} {wave[:2]}")
                vals.append(v or 0)
        ax.bar([i + (k - 0.5) * 0.4 for i in range(len(vals))], vals, width=0.4, label=NAMES[daemon])
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_title("lag after each wave (ms)")
    ax.legend(fontsize=7)
    if variants:
        # The trade: each point is one rate, CPU against C's and the lag
        # after its waves (median), for each EventBatchDelay.
        ax = axes[3]
        by = {(r["workload"], r["rate"], r["daemon"]): r for r in results["runs"]}
        for daemon in ["ours"] + variants:
            xs, ys = [], []
            for (workload, rate, d), r in by.items():
                c = by.get((workload, rate, "c"))
                lags = [v for v in r["lag_ms"].values() if v is not None]
                if d != daemon or c is None or not lags:
                    continue
                xs.append(statistics.median(lags))
                ys.append(r["cpu_us_per_event"]["total"] / c["cpu_us_per_event"]["total"])
            ms = 4 if daemon == "ours" else int(daemon[6:])
            ax.scatter(xs, ys, label=f"ours, EventBatchDelay {ms}")
        xs = [statistics.median([v for v in r["lag_ms"].values() if v is not None] or [0])
              for r in results["runs"] if r["daemon"] == "c"]
        ax.scatter(xs, [1.0] * len(xs), marker="x", color="black", label=NAMES["c"])
        ax.axhline(0.4, linestyle=":", color="grey")
        ax.set_xlabel("median lag after the waves of one rate (ms)")
        ax.set_ylabel("CPU, both daemons / C's")
        ax.set_title("lag or CPU: one point per rate and workload")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ---- loss ----------------------------------------------------------------

def run_loss(daemon, runs, burst, loss, tag, timeout):
    pair = Pair(daemon, burst, tag, loss=loss)
    out = {"daemon": daemon, "burst": burst, "loss_percent": loss, "create_s": [], "delete_s": []}
    try:
        pair.start()
        for i in range(runs):
            end = load(pair.ns[0], "create", burst).get("end", time.time())
            t = wait_for(lambda: pair.external()[0] >= burst, timeout)
            out["create_s"].append(None if t is None else round(t - end, 3))
            if t is None:
                # Start the next run from a clean state.
                pair.ctl(1, "-f", "external")
            end = load(pair.ns[0], "delete", burst).get("end", time.time())
            t = wait_for(lambda: pair.external()[0] == 0, timeout)
            out["delete_s"].append(None if t is None else round(t - end, 3))
            if t is None:
                pair.ctl(1, "-f", "external")
            print(f"  {daemon} run {i + 1}: create {out['create_s'][-1]} s, delete {out['delete_s'][-1]} s", flush=True)
            time.sleep(0.5)
        return out
    finally:
        pair.close()


def summary(values):
    """Median and max of recovery times; a run that never completed counts
    as infinitely long (so the max is then None)."""
    done = [v for v in values if v is not None]
    ordered = sorted(float("inf") if v is None else v for v in values)
    median = statistics.median(ordered) if ordered else None
    return {"median": None if median is None or median == float("inf") else round(median, 3),
            "max": max(done) if done and len(done) == len(values) else None,
            "incomplete": len(values) - len(done)}


def loss_markdown(results):
    lines = [f"{machine_line(results)}; commit {results.get('commit')}", ""]
    lines.append("| daemon | loss (each way) | burst | runs | create: median / max (s) | delete: median / max (s) | incomplete after the timeout |")
    lines.append("|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        c, d = summary(r["create_s"]), summary(r["delete_s"])
        lines.append(f"| {r['daemon']} | {r['loss_percent']} % | {r['burst']} | {len(r['create_s'])} | "
                     f"{fmt(c['median'])} / {fmt(c['max'])} | {fmt(d['median'])} / {fmt(d['max'])} | "
                     f"{c['incomplete']} + {d['incomplete']} (timeout {results['timeout']} s) |")
    lines.append("")
    lines.append("Each run: from the end of the burst to the backup's `-s` holding all of it; a run that did not "
                 "complete within the timeout counts as incomplete (its max is then —).")
    for r in results["runs"]:
        lines.append(f"- {r['daemon']} create: {', '.join(fmt(v) for v in r['create_s'])}")
        lines.append(f"- {r['daemon']} delete: {', '.join(fmt(v) for v in r['delete_s'])}")
    return "\n".join(lines) + "\n"


def loss_plot(results, path):
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(1, 1, figsize=(8, 4))
    labels, data = [], []
    for r in results["runs"]:
        for what in ("create_s", "delete_s"):
            vals = [v if v is not None else results["timeout"] for v in r[what]]
            labels.append(f"{r['daemon']} {what[:-2]}")
            data.append(vals)
    for i, vals in enumerate(data):
        ax.scatter([i] * len(vals), vals, alpha=0.6)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.axhline(2.0, linestyle="--", color="gray")
    ax.set_ylabel("s from the end of the burst (timeout plotted at the timeout)")
    ax.set_yscale("log")
    ax.set_title(f"Recovery of a {results['runs'][0]['burst']}-flow burst at {results['runs'][0]['loss_percent']} % loss each way")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ---- main ----------------------------------------------------------------

def header(a):
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    machine = (f"{cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} CPUs, "
               f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, "
               f"Linux {platform.release()}")
    commit = sh("git", "-C", ROOT, "rev-parse", "--short", "HEAD", check=False).strip()
    # Only what is built counts (the README and results change between runs).
    dirty = sh("git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--",
               "crates", "Cargo.toml", "Cargo.lock", check=False).strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit + ("+dirty" if dirty else ""), "machine": machine,
            "load": " ".join(open("/proc/loadavg").read().split()[:3])}


def save(results, a, name, md, plotter):
    results["load_after"] = " ".join(open("/proc/loadavg").read().split()[:3])
    stamp = results["date"].replace(":", "").replace("+0000", "Z")
    for file in (f"{name}-{stamp}.json", f"{name}.json"):
        with open(os.path.join(a.out, file), "w") as f:
            json.dump(results, f, indent=1)
    text = md(results)
    with open(os.path.join(a.out, f"{name}.md"), "w") as f:
        f.write(text)
    plotter(results, os.path.join(a.out, f"{name}.png"))
    print(text, flush=True)


def suite_waves(a, sizes, name):
    results = header(a)
    results.update({"family": {"4": "IPv4", "6": "IPv6", "mix": "mix", "labels": "labels"}[a.family],
                    "baseline": {}, "bare_listener": {}, "runs": []})
    for i, n in enumerate(sizes):
        results.setdefault("other_conntrackd_at_baseline", {})[str(n)] = other_daemons()
        results["baseline"][str(n)] = baseline(n, f"{i}")
        print(f"N={n} kernel alone: {results['baseline'][str(n)]}", flush=True)
        results["bare_listener"][str(n)] = bare_listener(n, f"{i}")
        print(f"N={n} with a bare listener: {results['bare_listener'][str(n)]}", flush=True)
        for daemon in a.daemons.split(","):
            r = run_one(daemon, n, f"{i}{daemon[0]}")
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    save(results, a, name, markdown, plot)


def suite_sweep(a):
    results = header(a)
    results.update({"runs": [], "perf": []})
    rates = [None if r == "full" else int(r) for r in a.rates.split(",")]
    daemons = ["bare", "forward"] + a.daemons.split(",")
    for i, rate in enumerate(rates):
        n = sweep_n(rate, a.sweep_cap)
        for daemon in daemons:
            r = run_paced(daemon, rate, n, f"s{i}{daemon[0]}", "waves")
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    for i, rate in enumerate(int(r) for r in a.churn_rates.split(",") if r):
        events = min(rate * 10, 300_000)
        for daemon in daemons:
            r = run_paced(daemon, rate, events, f"c{i}{daemon[0]}", "churn")
            results["runs"].append(r)
            print(json.dumps(r), flush=True)
    if a.perf and perf_available():
        for i, rate in enumerate((1000, 10000, None)):
            for daemon in (d for d in a.daemons.split(",") if d in ("c", "ours")):
                r = run_perf(daemon, rate, min(rate * 5, 50_000) if rate else 100_000, f"p{i}{daemon[0]}")
                results["perf"].append(r)
                print(json.dumps(r), flush=True)
    save(results, a, "latest-sweep", sweep_markdown, sweep_plot)


def suite_loss(a):
    results = header(a)
    results.update({"runs": [], "timeout": a.loss_timeout})
    for daemon in a.daemons.split(","):
        runs = a.loss_runs_c if daemon == "c" else a.loss_runs
        if runs:
            results["runs"].append(run_loss(daemon, runs, a.burst, a.loss, f"l{daemon[0]}", a.loss_timeout))
    save(results, a, "latest-loss", loss_markdown, loss_plot)


def main():
    global NS_RULES
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", default="waves", help="waves, scale, sweep, loss (comma-separated)")
    ap.add_argument("--sizes", default=None, help="flows per run (waves: 10000,100000,250000; scale: 10000,100000,1000000,2000000)")
    ap.add_argument("--daemons", default="c,ours")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench/results"))
    ap.add_argument("--family", choices=("4", "6", "mix", "labels"), default="4",
                    help="the flows: IPv4 or IPv6 TCP, the realistic mix, or IPv4 TCP with connection labels "
                         "(writes latest-ipv6.*, latest-mix.*, latest-labels.*)")
    ap.add_argument("--rates", default="1000,10000,50000,full", help="sweep: events per second")
    ap.add_argument("--churn-rates", default="10000,50000", help="sweep: rates of the churn stream")
    ap.add_argument("--sweep-cap", type=int, default=100_000, help="sweep: flows per wave at most")
    ap.add_argument("--no-perf", dest="perf", action="store_false", help="sweep: no perf pass")
    ap.add_argument("--batch-delays", default="0",
                    help="sweep: also run ours with these EventBatchDelay values (ms; the default is 4), "
                         "the trade between lag and CPU")
    ap.add_argument("--loss", type=int, default=30, help="loss: percent dropped each way")
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--loss-runs", type=int, default=20)
    ap.add_argument("--loss-runs-c", type=int, default=5)
    ap.add_argument("--loss-timeout", type=float, default=30.0)
    a = ap.parse_args()
    names = []
    for spec in a.daemons.split(","):
        name, _, path = spec.partition("=")
        if path:
            BINARIES[name] = os.path.abspath(path)
            NAMES[name] = f"{name} ({path})"
        names.append(name)
    if "sweep" in a.suite.split(",") and "ours" in names:
        for ms in (d for d in a.batch_delays.split(",") if d):
            name = f"ours-d{int(ms)}"
            BINARIES[name] = OURS
            NAMES[name] = f"ours, EventBatchDelay {int(ms)}"
            GENERAL_EXTRA[name] = f"EventBatchDelay {int(ms)}"
            names.append(name)
    a.daemons = ",".join(names)
    if a.family == "6":
        FAMILY.append("ipv6")
    elif a.family == "mix":
        FAMILY.append("--mix")
    elif a.family == "labels":
        FAMILY.append("--labels")
        NS_RULES = "table inet labels {\n chain pre { type filter hook prerouting priority 0; ct label set 1; }\n}\n"
    os.makedirs(a.out, exist_ok=True)
    suites = a.suite.split(",")
    biggest = [int(s) for s in (a.sizes or "2000000").split(",")]
    sh("sysctl", "-qw", f"net.netfilter.nf_conntrack_max={4 * max(biggest + [250000]) + 65536}")
    for suite in suites:
        if suite == "waves":
            sizes = [int(s) for s in (a.sizes or "10000,100000,250000").split(",")]
            suffix = {"4": "", "6": "-ipv6", "mix": "-mix", "labels": "-labels"}[a.family]
            suite_waves(a, sizes, f"latest{suffix}")
        elif suite == "scale":
            sizes = [int(s) for s in (a.sizes or "10000,100000,1000000,2000000").split(",")]
            suffix = {"4": "", "6": "-ipv6", "mix": "-mix", "labels": "-labels"}[a.family]
            suite_waves(a, sizes, f"latest-scale{suffix}")
        elif suite == "sweep":
            suite_sweep(a)
        elif suite == "loss":
            suite_loss(a)
        else:
            sys.exit(f"unknown suite {suite}")


if __name__ == "__main__":
    sys.exit(main())
