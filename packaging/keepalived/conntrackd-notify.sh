#!/usr/bin/env bash
# keepalived notify script for a conntrackd active-backup firewall pair.
#
#   vrrp_instance VI_1 {
#     ...
#     notify "/usr/local/sbin/conntrackd-notify.sh --vip 192.0.2.1 --vip 198.51.100.1"
#   }
#
# keepalived appends TYPE NAME STATE PRIORITY (keepalived.conf(5), "notify")
# and runs the script when the instance (or sync group: configure `notify`
# on one of them, not both) changes state:
#
#   MASTER        conntrackd -c   commit the external cache (the peer's
#                                 flows) to the kernel table; returns only
#                                 when the commit is done
#                 (lift the gate, see below)
#                 conntrackd -f   flush the internal and external caches
#                 conntrackd -R   resync the internal cache with the kernel
#                 conntrackd -B   bulk-send the table to the new backup
#   BACKUP        (close the gate) conntrackd -t (purge the kernel table
#                 after PurgeTimeout), conntrackd -n (ask the new master
#                 for a full resync)
#   FAULT         (close the gate) conntrackd -t
#   STOP/DELETED  (close the gate) nothing else: keepalived is going away
#
# The same sequence as the primary-backup script that conntrackd's own
# documentation suggests, plus the gate.
#
# THE RACE AND THE GATE
# keepalived moves the virtual addresses first and only then forks the
# notify script, without waiting for it (every notify form, including
# notify_master and vrrp_notify_fifo, is asynchronous; keepalived 2.2.7 has
# no option that holds the addresses back until a script has finished). The
# gratuitous ARPs go out with the addresses, so the neighbours send the
# flows' next packets to the new master while `conntrackd -c` has not run
# yet or is still writing the table. Such a mid-stream packet meets no
# conntrack entry:
#   * with nf_conntrack_tcp_loose=1 (the kernel default), or for UDP and
#     ICMP, the kernel creates a fresh entry from it: picked up mid-stream,
#     without the replicated NAT binding, mark, labels or helper. If the
#     ruleset accepts the packet (e.g. "LAN may open connections") the entry
#     is confirmed and the flow runs on it; NATed flows send packets with
#     the wrong addresses or ports, and the far end may reset them. The
#     commit then meets EEXIST; conntrackd deletes the intruder and creates
#     the replicated entry (as 1.4.7 does), but the damage may be done, and
#     a large table takes seconds to commit;
#   * with tcp_loose=0 a TCP packet is INVALID and dropped: only a delay.
# The gate closes the window: while this node is not MASTER, a table of its
# own (`inet conntrackd_gate`) has a prerouting chain at priority raw (-300,
# ahead of conntrack at -200) that drops every packet that would be
# forwarded (`fib daddr type unicast`) and every packet addressed to one of
# the virtual addresses given with --vip. Dropped before conntrack sees it,
# such a packet creates no entry; its sender retransmits. The MASTER branch
# commits first and lifts the gate (deletes the table) only when the commit
# has returned, so the first packet that passes finds the committed entry.
# BACKUP, FAULT and STOP put the gate back before anything else. Local
# traffic (VRRP adverts to 224.0.0.18, the sync link, management traffic to
# the node's own addresses) is not touched. Install the gate at boot, before
# keepalived starts, with `conntrackd-notify.sh [options] --gate-on` (e.g. in
# an ExecStartPre= of keepalived.service), so that the first transition to
# MASTER is covered too. The script needs root (nft, conntrackd's control
# socket): `script_user root` in keepalived's global_defs. The gate costs
# nothing when the commit is quick; a packet it drops is sent again by its
# sender (for TCP after the retransmission timeout).
#
# Ordering: keepalived runs notify scripts concurrently. Each invocation
# records the state it was called for (STATE_DIR/wanted) as soon as it
# starts, and the sequences run one at a time under a lock (STATE_DIR/lock).
# A MASTER sequence lifts the gate (and runs -f -R -B) only if MASTER is
# still the latest state, so a quick MASTER -> BACKUP flip never leaves the
# gate open. If the commit fails or times out (--commit-timeout) the gate is
# lifted anyway (new connections must work) and the failure is logged.
#
# Options (each also read from the environment variable shown):
#   --bin PATH            CONNTRACKD_BIN       conntrackd binary [/usr/sbin/conntrackd]
#   --conf PATH           CONNTRACKD_CONF      its configuration [/etc/conntrackd/conntrackd.conf]
#   --log FILE            CONNTRACKD_NOTIFY_LOG  append the log here [stderr]
#   --state-dir DIR       CONNTRACKD_NOTIFY_STATE_DIR  lock and state files [/run/conntrackd-notify]
#   --vip ADDR            CONNTRACKD_GATE_VIPS (space separated)  also gate packets to ADDR
#   --gate-iface IFACE    CONNTRACKD_GATE_IFACES (space separated)  gate only these
#                         input interfaces [all but lo]
#   --table NAME          CONNTRACKD_GATE_TABLE  [conntrackd_gate]
#   --no-gate             CONNTRACKD_GATE=0    plain sequence, no gate (shows the race)
#   --commit-timeout SEC  CONNTRACKD_COMMIT_TIMEOUT  [60]
#   --commit-delay SEC    CONNTRACKD_COMMIT_DELAY  testing only: sleep before the
#                         commit, as a large table would take [0]
# Then either TYPE NAME STATE [PRIORITY] (from keepalived) or one of
# --gate-on / --gate-off (install / remove the gate and exit).
set -uo pipefail

BIN=${CONNTRACKD_BIN:-/usr/sbin/conntrackd}
CONF=${CONNTRACKD_CONF:-/etc/conntrackd/conntrackd.conf}
LOG=${CONNTRACKD_NOTIFY_LOG:-}
STATE_DIR=${CONNTRACKD_NOTIFY_STATE_DIR:-/run/conntrackd-notify}
read -r -a VIPS <<<"${CONNTRACKD_GATE_VIPS:-}"
read -r -a IFACES <<<"${CONNTRACKD_GATE_IFACES:-}"
TABLE=${CONNTRACKD_GATE_TABLE:-conntrackd_gate}
GATE=${CONNTRACKD_GATE:-1}
COMMIT_TIMEOUT=${CONNTRACKD_COMMIT_TIMEOUT:-60}
COMMIT_DELAY=${CONNTRACKD_COMMIT_DELAY:-0}
ACTION=""

usage() { sed -n '/^# Options/,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --conf) CONF=$2; shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    --state-dir) STATE_DIR=$2; shift 2 ;;
    --vip) VIPS+=("$2"); shift 2 ;;
    --gate-iface) IFACES+=("$2"); shift 2 ;;
    --table) TABLE=$2; shift 2 ;;
    --no-gate) GATE=0; shift ;;
    --commit-timeout) COMMIT_TIMEOUT=$2; shift 2 ;;
    --commit-delay) COMMIT_DELAY=$2; shift 2 ;;
    --gate-on) ACTION=gate-on; shift ;;
    --gate-off) ACTION=gate-off; shift ;;
    --help|-h) usage ;;
    --*) echo "conntrackd-notify: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done

log() {
  local line
  line="$(date +%s.%3N) conntrackd-notify[$$] ${STATE:-$ACTION}: $*"
  if [ -n "$LOG" ]; then printf '%s\n' "$line" >>"$LOG"; else printf '%s\n' "$line" >&2; fi
}

# conntrackd with the configured config; logs the outcome, returns its status.
ctd() {
  local out rc
  out=$("$BIN" -C "$CONF" "$@" 2>&1)
  rc=$?
  log "conntrackd $* -> exit $rc${out:+: $out}"
  return $rc
}

gate_on() {
  [ "$GATE" = 1 ] || return 0
  local v4="" v6="" a ifmatch="" r4="" r6=""
  for a in "${VIPS[@]}"; do
    a=${a%/*}
    case "$a" in *:*) v6+="${v6:+, }$a" ;; *) v4+="${v4:+, }$a" ;; esac
  done
  if [ ${#IFACES[@]} -gt 0 ]; then
    ifmatch="iifname != { $(printf '"%s", ' "${IFACES[@]}") } accept"
  fi
  [ -n "$v4" ] && r4="ip daddr { $v4 } counter drop comment \"to a virtual address\""
  [ -n "$v6" ] && r6="ip6 daddr { $v6 } counter drop comment \"to a virtual address\""
  # Declaring, deleting and redefining the table in one transaction replaces
  # it atomically whether or not it existed.
  if nft -f - <<NFT
table inet $TABLE {}
delete table inet $TABLE
table inet $TABLE {
  chain prerouting {
    type filter hook prerouting priority raw; policy accept;
    iifname "lo" accept
    $ifmatch
    fib daddr type unicast counter drop comment "would be forwarded"
    $r4
    $r6
  }
}
NFT
  then log "gate closed (table inet $TABLE)"
  else log "FAILED to install the gate (table inet $TABLE)"; return 1
  fi
}

gate_off() {
  [ "$GATE" = 1 ] || return 0
  local held
  held=$(nft list table inet "$TABLE" 2>/dev/null |
    sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}')
  if nft delete table inet "$TABLE" 2>/dev/null; then
    log "gate lifted; it had dropped $held packets"
  else
    log "gate lifted (it was not installed)"
  fi
}

case "$ACTION" in
  gate-on) gate_on; exit $? ;;
  gate-off) gate_off; exit 0 ;;
esac
[ $# -ge 3 ] || usage
TYPE=$1 NAME=$2 STATE=$3 PRIORITY=${4:-}

mkdir -p "$STATE_DIR"
# Record the wanted state at once, before waiting for the lock.
printf '%s\n' "$STATE" >"$STATE_DIR/wanted.$$" && mv -f "$STATE_DIR/wanted.$$" "$STATE_DIR/wanted"
log "$TYPE $NAME priority ${PRIORITY:-?}"
case "$STATE" in
  MASTER) ;;
  # Close the gate before waiting for the lock: it is always safe.
  *) gate_on ;;
esac

exec 9>>"$STATE_DIR/lock"
flock 9

case "$STATE" in
  MASTER)
    if [ "$COMMIT_DELAY" != 0 ]; then
      log "testing: sleeping $COMMIT_DELAY s before the commit"
      sleep "$COMMIT_DELAY"
    fi
    log "committing"
    start=$(date +%s%N)
    if timeout "$COMMIT_TIMEOUT" "$BIN" -C "$CONF" -c >/dev/null 2>&1; then
      log "commit done in $((($(date +%s%N) - start) / 1000000)) ms"
    else
      log "commit FAILED or timed out (exit $?) after $((($(date +%s%N) - start) / 1000000)) ms"
    fi
    wanted=$(cat "$STATE_DIR/wanted" 2>/dev/null)
    if [ "$wanted" = MASTER ]; then
      gate_off
      ctd -f
      ctd -R
      ctd -B
    else
      # Superseded: the next run (BACKUP/FAULT) owns the node now.
      log "not lifting the gate: the latest state is $wanted"
    fi
    ;;
  BACKUP)
    ctd -t
    ctd -n
    ;;
  FAULT)
    ctd -t
    ;;
  STOP|DELETED) ;;
  *) log "unknown state $STATE, gate closed" ;;
esac
log "done"
exit 0
