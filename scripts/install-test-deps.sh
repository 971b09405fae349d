#!/usr/bin/env bash
# Installs the Debian programs the tests use as independent peers. Safe to run again.
set -euo pipefail
needed=()
command -v socat >/dev/null 2>&1 || needed+=(socat)
command -v nc >/dev/null 2>&1 || needed+=(netcat-openbsd)
command -v python3 >/dev/null 2>&1 || needed+=(python3)
command -v ip >/dev/null 2>&1 || needed+=(iproute2)
command -v nft >/dev/null 2>&1 || needed+=(nftables)
if ((${#needed[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${needed[@]}" >/dev/null
  fi
fi
