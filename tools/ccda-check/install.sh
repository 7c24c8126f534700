#!/bin/sh
# Installs what the oxehr-ccda tests need to check CCDs: xmllint (XML Schema) and xsltproc
# (the Schematron, compiled to XSLT 1.0 by sch2xslt.xsl beside this file).
# Non-interactive and idempotent; as root it calls apt-get directly, otherwise through sudo.
set -eu
missing=""
command -v xmllint >/dev/null 2>&1 || missing="$missing libxml2-utils"
command -v xsltproc >/dev/null 2>&1 || missing="$missing xsltproc"
if [ -z "$missing" ]; then
    echo "ccda-check: xmllint and xsltproc present"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo -n"
else
    echo "ccda-check: need root or sudo to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (a browser-test install, the machine's own) rather than fail.
LOCK="-o DPkg::Lock::Timeout=600"
# shellcheck disable=SC2086
$SUDO apt-get $LOCK update -qq
# shellcheck disable=SC2086
$SUDO apt-get $LOCK install -y -qq --no-install-recommends $missing
echo "ccda-check: installed$missing"
