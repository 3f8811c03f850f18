#!/usr/bin/env bash
# The demo: bring up a topology's lab on this machine, show that VMs on
# different hosts ping each other across VXLAN, print what ovs-vxctl built,
# tear it all down. Usage: demo.sh BIN TOPOLOGY
set -euo pipefail
bin=$(realpath "$1"); topo=$(realpath "$2")
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
down() { "$bin" lab down -f "$topo" >/dev/null 2>&1 || true; }
trap down EXIT
down

say "ovs-vxctl lab up -f $topo"
"$bin" lab up -f "$topo"

say "ping between every pair of VMs (across the VXLAN underlay)"
mapfile -t vms < <("$bin" lab status -f "$topo" --format json | python3 -c '
import json,sys
for v in json.load(sys.stdin)["vms"]:
    if v.get("addrs"): print(v["host"] + "/" + v["port"], v["addrs"][0].split("/")[0])')
fail=0
for a in "${vms[@]}"; do
  for b in "${vms[@]}"; do
    an=${a% *} bn=${b% *} bip=${b#* }
    [ "$an" = "$bn" ] && continue
    if out=$("$bin" lab exec -f "$topo" "$an" -- ping -c 2 -W 2 "$bip" 2>&1); then
      printf '  %-10s -> %-10s %-12s ok   %s\n' "$an" "$bn" "$bip" "$(grep -o 'rtt.*' <<<"$out")"
    else
      printf '  %-10s -> %-10s %-12s FAILED\n' "$an" "$bn" "$bip"; fail=1
    fi
  done
done

first=$("$bin" lab status -f "$topo" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["hosts"][0]["name"])')
say "ovs-vxctl show (host $first)"
"$bin" lab exec -f "$topo" "$first" -- "$bin" show -f "$topo" --host "$first"
say "ovs-vxctl flows: the compiled br-tun pipeline of $first"
"$bin" lab exec -f "$topo" "$first" -- "$bin" flows -f "$topo" --host "$first"
say "ovs-vxctl fdb: what br-tun of $first learned"
"$bin" lab exec -f "$topo" "$first" -- "$bin" fdb -f "$topo" --host "$first"
say "ovs-vxctl diff-flows: compiled vs installed on $first"
"$bin" lab exec -f "$topo" "$first" -- "$bin" diff-flows -f "$topo" --host "$first" && echo "  (no difference)"

say "ovs-vxctl lab down -f $topo"
"$bin" lab down -f "$topo"
trap - EXIT
exit $fail
