#!/usr/bin/env bash
# Installs what the tests need from Debian when missing: Chromium and a CJK font (without one,
# Chinese renders as boxes in screenshots), and gcc (requirements-prod.txt builds a C extension).
# Needs root; otherwise says what to do.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qiE 'Noto Sans CJK|WenQuanYi' || need+=(fonts-noto-cjk)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 0
fi
echo "installing ${need[*]} …"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
