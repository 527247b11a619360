#!/usr/bin/env bash
# Builds the Debian package libapache2-mod-rwsgi with cargo-deb:
#   target/debian/libapache2-mod-rwsgi_<version>-1_<arch>.deb
# (the module as /usr/lib/apache2/modules/mod_rwsgi.so, wsgi.load and
# wsgi.conf in /etc/apache2/mods-available, /usr/bin/rwsgi-express).
#
# usage: packaging/debian/build-deb.sh [--no-build]
#   --no-build  package target/release as it is (scripts/build.sh ran)
#
# cargo-deb is installed (`cargo install cargo-deb --locked`, into
# ~/.cargo/bin) when missing. The Depends line gets, besides cargo-deb's
# $auto (libc6, libpython3.11) and [package.metadata.deb]'s entries, the
# apache2-api-<MMN> virtual package of the Apache headers the module was
# compiled against: MODULE_MAGIC_NUMBER_MAJOR of `apxs -q INCLUDEDIR`'s
# ap_mmn.h, which must be one that the installed apache2-bin Provides
# (cargo-deb has no build-time substitution in Depends, so the control
# file is edited and the package rebuilt with dpkg-deb). Prints the path of
# the .deb on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if [ "${1:-}" != "--no-build" ]; then
    bash scripts/build.sh >&2
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "build-deb: installing cargo-deb" >&2
    cargo install cargo-deb --locked >&2
fi

include="$(apxs -q INCLUDEDIR)"
api="$(sed -n 's/^#define MODULE_MAGIC_NUMBER_MAJOR \([0-9][0-9]*\).*/\1/p' "$include/ap_mmn.h")"
[ -n "$api" ] || { echo "build-deb: no MODULE_MAGIC_NUMBER_MAJOR in $include/ap_mmn.h" >&2; exit 1; }
provides="$(dpkg-query -W -f='${Provides}' apache2-bin)"
case ", $provides," in
*", apache2-api-$api,"*) ;;
*)
    echo "build-deb: the headers in $include are for apache2-api-$api, but apache2-bin provides: $provides" >&2
    exit 1
    ;;
esac

deb="$(cargo deb --no-build --strip -p mod_rwsgi | tail -n 1)"
[ -f "$deb" ] || { echo "build-deb: cargo deb made no package (got '$deb')" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dpkg-deb -R "$deb" "$work/pkg"
sed -i "s/^Depends: \(.*\)$/Depends: \1, apache2-api-$api/" "$work/pkg/DEBIAN/control"
grep -q "^Depends: .*apache2-api-$api" "$work/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -Zxz -b "$work/pkg" "$deb" >&2
echo "$deb"
