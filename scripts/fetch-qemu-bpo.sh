#!/bin/sh
# Fetches QEMU from Debian bookworm-backports into a private directory, for the
# one test that needs more than one thread per core (`-smp 4,threads=2`): QEMU
# 7.2, bookworm's own, refuses that under TCG on pseries. Nothing is installed
# system-wide except missing runtime libraries (from bookworm, as `make setup`
# installs its packages). Idempotent: a finished fetch leaves `$DIR/done`.
#
#   scripts/fetch-qemu-bpo.sh <dir> <mirror>
#
# apt runs with its own state under <dir> (lists, cache, status), so the
# machine's apt configuration and package lists are not touched. Any failure
# ends the script with a non-zero status and the reason: `make test` stops.
set -eu
DIR=$1
MIRROR=$2
SUITE=bookworm-backports
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )

[ -f "$DIR/done" ] && exit 0
fail() { echo "qemu-bpo: $*" >&2; exit 1; }
[ -r "$KEYRING" ] || fail "$KEYRING is missing (install debian-archive-keyring)"

mkdir -p "$DIR/state/lists/partial" "$DIR/cache/archives/partial" "$DIR/debs"
D=$(cd "$DIR" && pwd)
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" > "$D/sources.list"
: > "$D/state/status"
apt_private() {
	tool=$1; shift
	"$tool" -q -o Dir::State="$D/state" -o Dir::State::Lists="$D/state/lists" \
	  -o Dir::State::status="$D/state/status" -o Dir::Cache="$D/cache" \
	  -o Dir::Etc::SourceList="$D/sources.list" -o Dir::Etc::SourceParts=/dev/null \
	  -o APT::Architecture=amd64 -o APT::Architectures=amd64 \
	  -o APT::Sandbox::User=root "$@"
}
echo "qemu-bpo: apt update ($MIRROR $SUITE, private state in $D)"
apt_private apt-get update >/dev/null || fail "apt-get update of $SUITE failed"
VERSION=$(apt_private apt-cache policy qemu-system-ppc | sed -n 's/^ *Candidate: *//p')
case "$VERSION" in ''|'(none)') fail "no qemu-system-ppc in $SUITE" ;; esac
echo "qemu-bpo: downloading qemu-system-ppc and qemu-system-data $VERSION"
rm -f "$D"/debs/*.deb
(cd "$D/debs" && apt_private apt-get download "qemu-system-ppc=$VERSION" "qemu-system-data=$VERSION" >/dev/null) \
	|| fail "apt-get download failed"
rm -rf "$D/root"
for deb in "$D"/debs/*.deb; do
	dpkg-deb -x "$deb" "$D/root" || fail "dpkg-deb -x $deb failed"
done
BIN=$D/root/usr/bin/qemu-system-ppc64
[ -x "$BIN" ] || fail "$BIN missing after extraction"
[ -f "$D/root/usr/share/qemu/slof.bin" ] || fail "slof.bin missing after extraction"

# Runtime libraries: the package's Depends (all in bookworm); install the
# missing ones with the machine's apt, as `make setup` does.
if ldd "$BIN" | grep -q 'not found'; then
	missing=""
	for p in $(dpkg-deb -f "$D"/debs/qemu-system-ppc_*.deb Depends | tr ',' '\n' | sed 's/(.*)//; s/|.*//' | tr -d ' '); do
		case "$p" in qemu-*|'') continue ;; esac
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
	done
	echo "qemu-bpo: installing runtime libraries:$missing"
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null \
		|| fail "apt-get install$missing failed"
fi
if ldd "$BIN" | grep 'not found' >&2; then fail "$BIN still lacks libraries"; fi
"$BIN" --version | head -n 1 | grep -q '^QEMU emulator version' || fail "$BIN does not run"
echo "$VERSION" > "$D/done"
echo "qemu-bpo: $("$BIN" --version | head -n 1) in $D/root"
