#!/usr/bin/env bash
# Installs the system packages the lab needs, from the distribution's own apt
# sources, if any are missing. Safe to run again: it does nothing when every
# tool is already there.
#
# QEMU 10 comes from <codename>-backports. The backports entry is derived from
# the machine's existing Debian deb822 source (same URIs and Signed-By, suite
# changed), so no host name is ever written here. Where backports does not
# exist, the distribution's own QEMU is installed instead.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEEDED=(
  [qemu-system-arm]=qemu-system-arm
  [qemu-system-aarch64]=qemu-system-arm
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
  [gdb-multiarch]=gdb-multiarch
  # fdtput: the Linux images drop the Pi 3 device tree's Bluetooth node
  [fdtput]=device-tree-compiler
)
# file -> Debian package that provides it (for packages without a command)
declare -A NEEDED_FILES=(
  [/usr/lib/arm-none-eabi/newlib]=libnewlib-arm-none-eabi
  [/usr/share/duktape/duktape.c]=duktape-dev
  # Go 1.23 for images/raspi/go-cold-start; only backports has it (bookworm
  # itself has 1.19), so it is installed with -t <codename>-backports below.
  [/usr/lib/go-1.23/bin/go]=golang-1.23-go
  # mke2fs and debugfs (in /usr/sbin, off a user's PATH): the Linux images'
  # ext4 disk.img
  [/usr/sbin/mke2fs]=e2fsprogs
)

# Debian packages checked by name (dpkg -s)
declare -a NEEDED_PACKAGES=(
  # headless Chromium opens `lab report --html` pages in lab/tests/report_html.rs
  chromium
)

missing=()
for pkg in "${NEEDED_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
for cmd in "${!NEEDED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
for file in "${!NEEDED_FILES[@]}"; do
  [ -e "$file" ] || missing+=("${NEEDED_FILES[$file]}")
done

# The Linux images (images/raspi/) are assembled from Debian arm64 packages
# fetched with `apt-get download`, which needs the arm64 architecture in
# dpkg's list (armhf does not work here: its security index fails to load).
need_arm64=
if [ "$(dpkg --print-architecture)" != arm64 ] &&
  ! dpkg --print-foreign-architectures | grep -qx arm64; then
  need_arm64=1
fi

if [ ${#missing[@]} -eq 0 ] && [ -z "$need_arm64" ]; then
  echo "install-deps: all system dependencies present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
src=/etc/apt/sources.list.d/debian.sources
bpo=/etc/apt/sources.list.d/lab-backports.sources

# Derive a backports stanza from the first stanza that carries the plain
# "<codename>" suite (not -security, not -updates).
if [ -n "$codename" ] && [ -f "$src" ] && [ ! -f "$bpo" ]; then
  stanza=$(awk -v code="$codename" '
    BEGIN { RS = ""; FS = "\n" }
    {
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Suites:/) {
          n = split(substr($i, 8), s, /[ \t]+/)
          for (j = 1; j <= n; j++) if (s[j] == code) { print; exit }
        }
      }
    }' "$src")
  if [ -n "$stanza" ]; then
    echo "$stanza" | awk -v code="$codename" '
      /^Suites:/     { print "Suites: " code "-backports"; next }
      /^#/           { next }
      { print }' | $SUDO tee "$bpo" >/dev/null
    echo "install-deps: enabled ${codename}-backports in $bpo"
  fi
fi

if [ -n "$need_arm64" ]; then
  $SUDO dpkg --add-architecture arm64
  echo "install-deps: added the arm64 architecture (for images/raspi/)"
fi

$SUDO apt-get update -qq

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system dependencies present"
  exit 0
fi

target=()
policy=$(apt-cache policy qemu-system-arm 2>/dev/null || true)
if [ -n "$codename" ] && [[ "$policy" == *"${codename}-backports"* ]]; then
  target=(-t "${codename}-backports")
  # Install every QEMU package from backports together: a plain install of
  # qemu-system-arm would otherwise downgrade (remove) a qemu-utils 10.
  missing+=(qemu-system-arm)
  dpkg -s qemu-utils >/dev/null 2>&1 && missing+=(qemu-utils)
else
  echo "install-deps: no backports suite; using the distribution's QEMU"
  if printf '%s\n' "${missing[@]}" | grep -qx golang-1.23-go; then
    echo "install-deps: golang-1.23-go needs ${codename:-<codename>}-backports; skipping it" >&2
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vx golang-1.23-go)
  fi
fi

# shellcheck disable=SC2068
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  ${target[@]} $(printf '%s\n' "${missing[@]}" | sort -u)
qemu-system-arm --version | head -n1
