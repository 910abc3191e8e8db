#!/usr/bin/env bash
# Installs what the tests need from Debian when missing: Chromium and a CJK font (without one,
# Chinese renders as boxes in screenshots), gcc (requirements-prod.txt builds a C extension),
# nginx (the production front, deploy/; tests/test_front.py floods it), a TrueType CJK font for the
# assessment report's PDF (ReportLab embeds TrueType outlines only, not Noto CJK's CFF; figures/report.py)
# poppler-utils (pdftoppm/pdftotext: tests/figures/test_assessment_report.py reads the PDF back) and
# mosquitto (tests/sensing/test_mqtt.py: the machine's broker on 1883 and private ones it restarts).
# Needs root; otherwise says what to do.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
# grep reads to the end (no -q): under pipefail, fc-list killed by SIGPIPE would count as "missing"
fc-list 2>/dev/null | grep -iE 'Noto Sans CJK|WenQuanYi' >/dev/null || need+=(fonts-noto-cjk)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 0
fi
echo "installing ${need[*]} …"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's own service must not start (port 80, /etc/nginx): deploy/front.py runs nginx
# as a child with its own prefix. policy-rc.d tells invoke-rc.d to start nothing during the install.
own_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
fi
apt-get install -y -qq --no-install-recommends "${need[@]}" fontconfig >/dev/null
[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
# A broker installed just now did not start (policy-rc.d above): start it as .ci/run would have.
if [[ " ${need[*]} " == *" mosquitto "* ]] && ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
