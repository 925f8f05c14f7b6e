# shellcheck shell=bash
# The two-firewall topology shared by scripts/failover and
# scripts/keepalived-failover; source it, do not run it.
#
#   client 10.1.0.2 ──[br lan]── fw1 / fw2 ──[br wan]── server 10.2.0.2
#                                  └─ sync0 ─┘ (10.77.0.0/24, conntrackd)
#
# fwN has 10.1.0.1N on lan0 and 10.2.0.1N on wan0; the virtual gateways are
# 10.1.0.1 and 10.2.0.1. Both firewalls drop forwarded packets but
# established flows and new SYNs (plus $TOPO_FW_EXTRA rules), with
# nf_conntrack_tcp_loose=$TOPO_TCP_LOOSE (default 0).
#
# The caller sets PFX (a short namespace prefix), QUIET (0/1) and BIN (the
# conntrackd binary, or empty) before topo_init, and may set TOPO_FW_EXTRA
# and TOPO_TCP_LOOSE before topo_build. topo_init installs an EXIT trap that
# stops the daemons, kills every process in the namespaces, deletes them
# and removes the scratch directory $WORK.

say() { [ "$QUIET" = 1 ] || printf '%s\n' "$*"; }
step() { [ "$QUIET" = 1 ] || printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { if [ "$QUIET" = 1 ]; then cat >/dev/null; else sed 's/^/   /'; fi; }

# The namespace of firewall N.
fw() { printf '%s-fw%s-%s' "$PFX" "$1" "$id"; }
# conntrackd's control commands on firewall N.
ctl() { local n=$1; shift; ip netns exec "$(fw "$n")" "$BIN" -C "$WORK/fw$n.conf" "$@"; }

topo_init() { # topo_init WORKDIR-NAME
  id=$(printf '%x' $$)$(printf '%x' $((RANDOM % 256)))
  CL=$PFX-cl-$id SW=$PFX-sw-$id FW1=$(fw 1) FW2=$(fw 2) SRV=$PFX-srv-$id
  ALL="$CL $SW $FW1 $FW2 $SRV"
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap topo_cleanup EXIT
}

topo_cleanup() {
  if [ -n "$BIN" ]; then
    for n in 1 2; do
      [ -f "$WORK/fw$n.conf" ] && ctl "$n" -k >/dev/null 2>&1 || true
    done
  fi
  for ns in $ALL; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$WORK"
}

# plug NS:IFNAME into bridge BR of the switch namespace
topo_plug() {
  local ns=$1 ifname=$2 br=$3 a=p$id$RANDOM b=q$id$RANDOM
  ip link add "${a:0:15}" type veth peer name "${b:0:15}"
  ip link set "${a:0:15}" netns "$ns"; ip -n "$ns" link set "${a:0:15}" name "$ifname"
  ip link set "${b:0:15}" netns "$SW"; ip -n "$SW" link set "${b:0:15}" master "$br" up
  ip -n "$ns" link set "$ifname" up
}

topo_build() {
  local ns n a b
  for ns in $ALL; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
  ip -n "$SW" link add brlan type bridge; ip -n "$SW" link set brlan up
  ip -n "$SW" link add brwan type bridge; ip -n "$SW" link set brwan up
  topo_plug "$CL" eth0 brlan;  ip -n "$CL" addr add 10.1.0.2/24 dev eth0; ip -n "$CL" route add default via 10.1.0.1
  topo_plug "$SRV" eth0 brwan; ip -n "$SRV" addr add 10.2.0.2/24 dev eth0; ip -n "$SRV" route add default via 10.2.0.1
  for n in 1 2; do
    ns=$(fw $n)
    topo_plug "$ns" lan0 brlan; ip -n "$ns" addr add 10.1.0.1$n/24 dev lan0
    topo_plug "$ns" wan0 brwan; ip -n "$ns" addr add 10.2.0.1$n/24 dev wan0
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" nft -f - <<NFT
table inet fw {
  chain filter_forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    tcp flags syn ct state new accept
    ${TOPO_FW_EXTRA:-}
  }
}
NFT
    ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_tcp_loose="${TOPO_TCP_LOOSE:-0}"
  done
  a=s$id$RANDOM b=t$id$RANDOM
  ip link add "${a:0:15}" type veth peer name "${b:0:15}"
  ip link set "${a:0:15}" netns "$FW1"; ip -n "$FW1" link set "${a:0:15}" name sync0
  ip link set "${b:0:15}" netns "$FW2"; ip -n "$FW2" link set "${b:0:15}" name sync0
  for n in 1 2; do
    ip -n "$(fw $n)" addr add 10.77.0.$n/24 dev sync0; ip -n "$(fw $n)" link set sync0 up
  done
}

# vip add|del N: the virtual gateways on firewall N, by hand.
vip() {
  ip -n "$(fw "$2")" addr "$1" 10.1.0.1/24 dev lan0
  ip -n "$(fw "$2")" addr "$1" 10.2.0.1/24 dev wan0
}

# topo_conntrackd N MODE TRANSPORT: writes $WORK/fwN.conf and starts the
# daemon in firewall N; returns once its control socket exists.
topo_conntrackd() {
  local n=$1 mode=$2 transport=$3 peer=$(($1 == 1 ? 2 : 1)) link sync
  case "$transport" in
    multicast) link="Multicast {
		IPv4_address 225.0.0.50
		IPv4_interface 10.77.0.$n
		Interface sync0
		Group 3780
	}" ;;
    udp) link="UDP {
		IPv4_address 10.77.0.$n
		IPv4_Destination_Address 10.77.0.$peer
		Port 3781
		Interface sync0
	}" ;;
    tcp) link="TCP {
		IPv4_address 10.77.0.$n
		IPv4_Destination_Address 10.77.0.$peer
		Port 3782
		Interface sync0
	}" ;;
    *) echo "unknown transport $transport" >&2; return 2 ;;
  esac
  case "$mode" in
    ftfw) sync="FTFW { }" ;;
    alarm) sync="ALARM { RefreshTime 5 CacheTimeout 20 }" ;;
    notrack) sync="NOTRACK { }" ;;
    *) echo "unknown mode $mode" >&2; return 2 ;;
  esac
  cat > "$WORK/fw$n.conf" <<CONF
Sync {
	Mode $sync
	$link
}
General {
	Systemd off
	LogFile $WORK/fw$n.log
	LockFile $WORK/fw$n.lock
	UNIX { Path $WORK/fw$n.sock }
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
	Filter {
		Protocol Accept { TCP UDP ICMP }
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address 10.77.0.0/24
			IPv4_address 10.1.0.11
			IPv4_address 10.1.0.12
			IPv4_address 10.2.0.11
			IPv4_address 10.2.0.12
		}
	}
}
CONF
  ip netns exec "$(fw "$n")" "$BIN" -C "$WORK/fw$n.conf" -d >/dev/null
  for _ in $(seq 50); do [ -S "$WORK/fw$n.sock" ] && break; sleep 0.1; done
}

# An echo server on 10.2.0.2:8080 in the server namespace (background).
topo_echo_server() {
  ip netns exec "$SRV" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.2.0.2", 8080)); s.listen(1)
c, _ = s.accept()
buf = b""
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
' &
  # Listening before anyone connects (a fixed pause was too short under load).
  for _ in $(seq 200); do
    ip netns exec "$SRV" ss -Hltn 'sport = :8080' | grep -q . && return 0
    sleep 0.05
  done
  echo "the echo server never listened" >&2
  return 1
}

# topo_client SECONDS OUT [TIMEOUT [TIMES [STOP]]]: in the background, the
# client sends a line every 50 ms and waits for each echo, for SECONDS (or,
# given STOP, until the file STOP exists, SECONDS at most); a recv taking
# longer than TIMEOUT (default 5) seconds breaks the session. It writes
# SURVIVED or BROKEN to OUT and, given TIMES, each echo's arrival (epoch
# seconds) to TIMES. Sets $client to its pid.
topo_client() {
  ip netns exec "$CL" python3 -c '
import os, socket, sys, time
dur, timeout = float(sys.argv[1]), float(sys.argv[2])
times = open(sys.argv[3], "w", buffering=1) if sys.argv[3] else None
stop = sys.argv[4]
s = socket.create_connection(("10.2.0.2", 8080), timeout=5)
s.settimeout(timeout)
n, worst, start = 0, 0.0, time.time()
def running():
    if time.time() - start >= dur:
        return False
    return not (stop and os.path.exists(stop))
try:
    while running():
        t = time.time()
        s.sendall(b"ping %d\n" % n)
        got = b""
        while not got.endswith(b"\n"):
            d = s.recv(100)
            if not d:
                raise ConnectionError("closed by peer")
            got += d
        now = time.time()
        if times:
            times.write("%.3f\n" % now)
        worst = max(worst, now - t)
        n += 1
        time.sleep(0.05)
except Exception as e:
    print("BROKEN after %d echoes: %s" % (n, e)); sys.exit(1)
print("SURVIVED: %d echoes, slowest %.0f ms" % (n, worst * 1000))
' "$1" "${3:-5}" "${4:-}" "${5:-}" > "$2" 2>&1 &
  client=$!
}
