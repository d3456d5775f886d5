#!/usr/bin/env bash
# Builds the .deb and the .rpm from target/release and checks them as a user
# of each would: the .deb is installed with dpkg, its files listed, its
# binaries run, its units verified, then purged with nothing left behind; the
# .rpm's file list and scripts are read; the formula and the plist parse.
# Needs: cargo-deb, cargo-generate-rpm, dpkg, rpm, ruby, systemd-analyze, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "packaging check failed: $*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

deb=$(cargo deb -p nexscoped --no-build --no-strip 2>/dev/null | tail -n 1)
[ -f "$deb" ] || fail "cargo deb made no package"
echo "built $deb"
as_root dpkg -i "$deb" >/dev/null
listing=$(dpkg -L nexscope)
for path in /usr/bin/nexscoped /usr/bin/nexscopectl \
    /usr/lib/systemd/user/nexscoped.service /usr/lib/systemd/user/nexscoped.socket \
    /usr/lib/systemd/system/nexscope-relay.service \
    /usr/share/man/man8/nexscoped.8.gz /usr/share/man/man8/nexscope-relay.8.gz \
    /usr/share/man/man1/nexscopectl.1.gz /usr/share/man/man1/nexscopectl-say.1.gz /usr/share/man/man5/nexscope.toml.5.gz \
    /usr/share/bash-completion/completions/nexscopectl /usr/share/zsh/vendor-completions/_nexscopectl \
    /usr/share/fish/vendor_completions.d/nexscopectl.fish; do
  grep -qx "$path" <<<"$listing" || fail "dpkg -L nexscope does not list $path"
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
/usr/bin/nexscoped --version | grep -qx "nexscoped $version" || fail "installed nexscoped --version"
/usr/bin/nexscopectl --version | grep -qx "nexscopectl $version" || fail "installed nexscopectl --version"
[ -L /etc/systemd/user/sockets.target.wants/nexscoped.socket ] || fail "postinst did not enable nexscoped.socket for users"
runtime=$(mktemp -d); chmod 700 "$runtime"
XDG_RUNTIME_DIR=$runtime systemd-analyze verify --user --man=no --recursive-errors=no nexscoped.socket nexscoped.service \
  || fail "installed user units do not verify"
systemd-analyze verify --man=no --recursive-errors=no nexscope-relay.service || fail "installed relay unit does not verify"
man -w nexscopectl >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || fail "man cannot find nexscopectl"
as_root dpkg --purge nexscope >/dev/null
for path in $listing /etc/systemd/user/sockets.target.wants/nexscoped.socket; do
  [ -d "$path" ] && continue
  [ -e "$path" ] && fail "$path is left after purge"
done
rm -rf "$runtime"
echo "deb: installed, listed, run, verified, purged"

cargo generate-rpm -p nexscoped >/dev/null
rpm=$(ls -t target/generate-rpm/nexscope-*.rpm | head -n 1)
files=$(rpm -qpl "$rpm" 2>/dev/null)
for path in /usr/bin/nexscoped /usr/bin/nexscopectl /usr/lib/systemd/user/nexscoped.socket \
    /usr/lib/systemd/system/nexscope-relay.service /usr/share/man/man1/nexscopectl.1 /usr/share/man/man5/nexscope.toml.5 \
    /usr/share/bash-completion/completions/nexscopectl; do
  grep -qx "$path" <<<"$files" || fail "rpm -qpl does not list $path"
done
scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
grep -q "systemctl --global preset nexscoped.socket" <<<"$scripts" || fail "rpm post-install script"
grep -q "systemctl --global disable nexscoped.socket" <<<"$scripts" || fail "rpm pre-uninstall script"
echo "rpm: $rpm lists the files and has its scripts"

ruby -c packaging/homebrew/nexscope.rb >/dev/null || fail "the Homebrew formula does not parse"
grep -q "service do" packaging/homebrew/nexscope.rb || fail "the formula has no service block"
python3 - <<'PY' || fail "the launchd plist"
import plistlib, os
p = plistlib.load(open("units/io.nexscope.nexscoped.plist", "rb"))
assert p["Label"] == "io.nexscope.nexscoped", p
program = p["ProgramArguments"][0]
assert os.path.isabs(program) and os.path.basename(program) == "nexscoped", program
assert p["KeepAlive"] == {"SuccessfulExit": False}, p
print("plist: names", program)
PY
echo "packaging checks passed"
