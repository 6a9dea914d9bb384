#!/usr/bin/env bash
# The Debian package, checked the way an operator would meet it:
#   tests/package/check.sh BUILD_DIR SOURCE_DIR
# 1. builds the installed targets and runs `cpack -G DEB` (into a temporary directory);
#    its Depends name libjemalloc2 when the packaged daemon needs libjemalloc.so.2 (readelf);
# 2. lintian: any error (E:) fails; warnings are printed;
# 3. every file under /etc is a conffile;
# 4. extracts the .deb (dpkg-deb -x) and runs the packaged `licentra-signd --version`,
#    `licentra --version` and `licentra-signd --check-config` on the packaged configuration;
#    the packaged alert rules pass `promtool check rules`;
# 5. systemd-analyze verify and systemd-analyze security --offline=true on the packaged unit:
#    an exposure above 1.5 fails.
# Under CI=true a missing tool fails the test; elsewhere the test is skipped (exit 77).
set -euo pipefail

build=$(cd "${1:?usage: check.sh BUILD_DIR SOURCE_DIR}" && pwd)
source_dir=$(cd "${2:?usage: check.sh BUILD_DIR SOURCE_DIR}" && pwd)
max_exposure=1.5

fail() { echo "package check: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

for tool in cmake cpack dpkg-deb lintian readelf systemd-analyze softhsm2-util openssl script promtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "${CI:-}" = "true" ]; then fail "$tool is not installed (run scripts/setup)"; fi
    echo "package check: SKIP: $tool is not installed (run scripts/setup)"
    exit 77
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/licentra-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step "build the installed targets"
cmake --build "$build" --target licentra-signd licentra licentra_dist_files >/dev/null

step "cpack -G DEB"
cpack -G DEB -B "$tmp/out" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack failed"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
deb="$tmp/out/licentra-signer_${version}_amd64.deb"
[ -f "$deb" ] || fail "expected $(basename "$deb"); cpack made: $(ls "$tmp/out")"
echo "$(basename "$deb")"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"

step "lintian"
# Exit status 0 or 1 (tags found); anything else means lintian itself failed.
rc=0
lintian --tag-display-limit 0 --display-info "$deb" >"$tmp/lintian.log" 2>&1 || rc=$?
cat "$tmp/lintian.log"
[ "$rc" -le 1 ] || fail "lintian could not check the package (exit $rc)"
if grep -q '^E: ' "$tmp/lintian.log"; then fail "lintian reports errors"; fi
echo "lintian: no errors"

step "conffiles"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles >"$tmp/conffiles"
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's#^\./etc/\(.*[^/]\)$#/etc/\1#p' | sort >"$tmp/etc-files"
sort "$tmp/conffiles" | diff -u "$tmp/etc-files" - || fail "files under /etc that are not conffiles"
cat "$tmp/conffiles"

step "changelog"
changelog_version=$(gzip -dc "$build/dist/changelog.gz" | sed -n '1s/^licentra-signer (\([^)]*\)).*/\1/p')
[ "$changelog_version" = "$version" ] ||
  fail "dist/debian/changelog starts with $changelog_version, the package is $version"

root="$tmp/root"
dpkg-deb -x "$deb" "$root"

step "Depends covers the packaged daemon's allocator"
# The daemon runs on jemalloc (docs/performance.md, "Allocator") when the packaged binary says
# so: dpkg-shlibdeps must then have named its package.
if readelf -d "$root/usr/sbin/licentra-signd" | grep -q 'NEEDED.*\[libjemalloc\.so\.2\]'; then
  case "$depends" in *libjemalloc2*) ;; *) fail "Depends lacks libjemalloc2: $depends" ;; esac
  echo "libjemalloc.so.2 needed; Depends names libjemalloc2"
else
  echo "the packaged daemon does not link jemalloc"
fi

step "--version"
for bin in usr/sbin/licentra-signd usr/bin/licentra; do
  out=$("$root/$bin" --version)
  echo "$out"
  expected="^$(basename "$bin") ${version//./\\.} \\(git ([0-9a-f]{4,}|unknown)\\)\$"
  [[ "$out" =~ $expected ]] ||
    fail "$bin --version printed '$out'"
done

step "licentra-signd --check-config on the packaged configuration"
# The packaged configuration names files that exist only after provisioning. Stand-ins under
# the temporary root: a SoftHSM token "licentra" (hsm/provision), development TLS files
# (scripts/dev-certs), the PIN where systemd puts the credential, and the state directory.
# A copy of the configuration points its absolute paths into the root; nothing else changes.
"$source_dir/hsm/provision" --dir "$tmp/hsm" >/dev/null
"$source_dir/scripts/dev-certs" "$root/etc/licentra/tls" >/dev/null
install -d -m 0700 "$root/run/credentials/licentra-signd.service" "$root/var/lib/licentra"
install -m 0400 "$tmp/hsm/user.pin" "$root/run/credentials/licentra-signd.service/hsm-pin"
sed -e "s#/etc/licentra/#$root/etc/licentra/#g" -e "s#/var/lib/licentra/#$root/var/lib/licentra/#g" \
  -e "s#/run/credentials/#$root/run/credentials/#g" \
  "$root/etc/licentra/signd.yaml" >"$root/etc/licentra/signd.check.yaml"
if grep -nE '(^|[ :])/(etc|var|run)/' "$root/etc/licentra/signd.check.yaml" | grep -v '^ *[0-9]*: *#'; then
  fail "the packaged configuration names a path the check does not place under its root"
fi
SOFTHSM2_CONF="$tmp/hsm/softhsm2.conf" \
  "$root/usr/sbin/licentra-signd" --config "$root/etc/licentra/signd.check.yaml" --check-config ||
  fail "licentra-signd --check-config refused the packaged configuration"

step "the packaged Prometheus alert rules"
rules="$root/usr/share/doc/licentra-signer/examples/licentra-alerts.yml"
[ -f "$rules" ] || fail "the package has no $(basename "$rules") in its examples"
promtool check rules "$rules" || fail "promtool check rules refused the packaged alert rules"

unit="$root/lib/systemd/system/licentra-signd.service"
step "systemd-analyze verify"
# verify needs ExecStart= to exist: a copy of the packaged unit names the extracted binary
# (the only change); man: links resolve against the extracted man pages.
mkdir -p "$tmp/unit"
sed "s#=/usr/sbin/licentra-signd #=$root/usr/sbin/licentra-signd #" "$unit" >"$tmp/unit/licentra-signd.service"
grep -q "^ExecStart=$root/usr/sbin/licentra-signd " "$tmp/unit/licentra-signd.service" ||
  fail "ExecStart= of the packaged unit is not /usr/sbin/licentra-signd"
MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/unit/licentra-signd.service" ||
  fail "systemd-analyze verify"
echo "ok"

step "systemd-analyze security --offline=true"
systemd-analyze security --offline=true "$unit" >"$tmp/security.log" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for licentra-signd\.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
[ -n "$exposure" ] || { cat "$tmp/security.log"; fail "no exposure level in the output"; }
grep '✗' "$tmp/security.log" || true
echo "exposure level: $exposure (at most $max_exposure)"
awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }' ||
  fail "exposure $exposure is above $max_exposure"

echo "package check: ok ($(basename "$deb"), exposure $exposure)"
