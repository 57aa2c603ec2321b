#!/usr/bin/env bash
# Install what the real Linux testbed (`edgeroam testbed`, tests marked `root`) needs on a fresh
# Debian machine: iproute2 (ip, tc), util-linux (nsenter), nftables and its Python binding
# (python3-nftables, which is not on PyPI), dnsmasq's binary (dnsmasq-base: no system service
# is installed or started), iperf3 and busybox's DHCP client (udhcpc). Safe to run again: it
# installs only what is missing. Needs root; without root it only reports what is missing and
# exits 1.
#
#   bash scripts/ensure-testbed-deps.sh          install what is missing
#   bash scripts/ensure-testbed-deps.sh --check  report only (exit 1 when something is missing)
set -euo pipefail

log() { echo "ensure-testbed-deps: $*" >&2; }

# package:what-proves-it-is-installed (a command, or a path for the Python binding)
REQUIRED=(
    "iproute2:ip"
    "iproute2:tc"
    "util-linux:nsenter"
    "nftables:nft"
    "python3-nftables:/usr/lib/python3/dist-packages/nftables/nftables.py"
    "dnsmasq-base:dnsmasq"
    "iperf3:iperf3"
    "udhcpc:udhcpc"
)

missing_packages() {
    local item pkg probe
    for item in "${REQUIRED[@]}"; do
        pkg="${item%%:*}"
        probe="${item#*:}"
        if [[ "$probe" == /* ]]; then
            [ -e "$probe" ] || echo "$pkg"
        else
            command -v "$probe" >/dev/null 2>&1 || [ -x "/usr/sbin/$probe" ] || [ -x "/sbin/$probe" ] || echo "$pkg"
        fi
    done | sort -u
}

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    log "missing: ${missing[*]}"
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    log "missing ${missing[*]}; run this script as root to install them"
    exit 1
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# iperf3's package asks whether to run a system-wide daemon; the testbed starts its own.
echo "iperf3 iperf3/start_daemon boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
mapfile -t still < <(missing_packages)
if [ "${#still[@]}" -ne 0 ]; then
    log "still missing after installation: ${still[*]}"
    exit 1
fi
log "done"
