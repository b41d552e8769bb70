#!/usr/bin/env bash
# Usage: ensure-system-packages.sh [--optional] CHECK:PACKAGE ...
# CHECK is a command name or an absolute path. Missing packages are installed
# with apt-get when running as root on Debian/Ubuntu; otherwise we name them
# and fail (or only warn with --optional).
set -euo pipefail
optional=0
if [[ "${1:-}" == "--optional" ]]; then optional=1; shift; fi
missing=()
for pair in "$@"; do
  check="${pair%%:*}"; package="${pair#*:}"
  if [[ "$check" == /* ]]; then [[ -e "$check" ]] && continue
  else command -v "$check" >/dev/null 2>&1 && continue; fi
  missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo ">> installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "!! missing system packages: ${missing[*]}" >&2
echo "   install them, e.g.: sudo apt-get install ${missing[*]}" >&2
[[ $optional -eq 1 ]] && exit 0
exit 1
