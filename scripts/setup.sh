#!/bin/sh
# One-time (idempotent) set-up on Debian 12 as root: Debian packages when missing,
# then .venv with the pinned Python dependencies. Called by `make run` and `make test`.
set -eu
cd "$(dirname "$0")/.."

# chromium: tests render the HTML report in a real (headless) browser.
PACKAGES="qemu-system-x86 qemu-utils linux-source-6.12 debootstrap e2fsprogs xfsprogs
gcc make bc bison flex libelf-dev libssl-dev cpio kmod ccache git xz-utils
python3 python3-venv openssh-client util-linux
chromium"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages:$missing; run as root, or: sudo apt-get install$missing" >&2
        exit 2
    fi
    echo "setup: installing Debian packages:$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# The venv is rebuilt only when requirements.txt changes.
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating .venv with pinned Python dependencies"
    /usr/bin/python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
fi
