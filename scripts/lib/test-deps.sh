# Sourced by .ci/run and scripts/test: as root on Debian, installs what the
# namespace and interop tests need, and keeps the packaged daemons from
# running (the tests start their own, in namespaces).
install_test_deps() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
  export DEBIAN_FRONTEND=noninteractive
  local need=() pkg svc
  # iptables (iptables-legacy: the NFQUEUE target), python3-pyftpdlib,
  # tftpd-hpa, tftp-hpa and rpcbind: the user-space helper tests.
  for pkg in conntrack conntrackd keepalived nftables iproute2 tcpdump ethtool procps python3 faketime \
    iptables python3-pyftpdlib tftpd-hpa tftp-hpa rpcbind; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Debian's conntrackd, keepalived, tftpd-hpa and rpcbind packages start
  # a daemon on install, in the host's network namespace. Only those are
  # stopped: daemons that tests (of this run or another) start in
  # namespaces of their own are left alone.
  local here pid
  here=$(readlink /proc/self/ns/net)
  for svc in conntrackd keepalived tftpd-hpa rpcbind; do
    systemctl stop "$svc" >/dev/null 2>&1 || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
    for pid in $(pgrep -x "$svc"); do
      if [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$here" ]; then
        kill "$pid" 2>/dev/null || true
      fi
    done
  done
  modprobe nf_conntrack >/dev/null 2>&1 || true
}
