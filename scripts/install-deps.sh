#!/usr/bin/env bash
# Installs what ovs-vxctl's lab, demo and tests need on Debian 12, as root:
# Open vSwitch (userspace datapath) and its VTEP emulator, iproute2, ethtool and the packet tools.
# It does nothing when everything is already there.
set -euo pipefail
need=()
for pair in ovs-vswitchd:openvswitch-switch ovs-vsctl:openvswitch-common vtep-ctl:openvswitch-vtep ip:iproute2 \
            ethtool:ethtool tcpdump:tcpdump tshark:tshark iperf3:iperf3 ping:iputils-ping \
            sysctl:procps ss:iproute2 python3:python3; do
  bin=${pair%%:*} pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${need[*]}; run as root (apt-get install)" >&2
  exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's package starts no daemon here (no kernel module); the lab starts its own.
