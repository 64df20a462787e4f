#!/usr/bin/env bash
# Remove what scripts/install.sh installed.
#
#   sudo scripts/uninstall.sh            # stop the service, remove the unit, the venv and the command;
#                                        # the store (/var/lib/heimdal) and config (/etc/heimdal) stay
#   sudo scripts/uninstall.sh --purge    # also the store, config, logs and the heimdal user, after a
#                                        # last backup of the store to /var/backups/heimdal-<time>.db
set -euo pipefail

PREFIX=""
DRY_RUN=0
WITH_SYSTEMD=1
PURGE=0
BACKUP=1
SERVICE_USER="heimdal"

usage() {
    cat <<'USAGE'
Usage: uninstall.sh [options]
  --prefix DIR     the --prefix the installation was made with
  --purge          also delete the store, configuration, logs and the heimdal user
  --no-backup      with --purge: do not back the store up first
  --no-systemd     do not stop, disable or reload systemd units
  --dry-run        print every command instead of running it
  -h, --help       this help
USAGE
}

say() { printf 'heimdal uninstall: %s\n' "$*"; }
die() {
    printf 'heimdal uninstall: error: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --purge) PURGE=1; shift ;;
        --no-backup) BACKUP=0; shift ;;
        --no-systemd) WITH_SYSTEMD=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

if [ -n "$PREFIX" ]; then
    case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
    PREFIX="${PREFIX%/}"
fi
if [ "$(id -u)" != 0 ] && [ "$DRY_RUN" = 0 ] && [ -z "$PREFIX" ]; then
    die "run as root (sudo $0)"
fi

OPT="$PREFIX/opt/heimdal"
VENV="$OPT/venv"
ETC="$PREFIX/etc/heimdal"
STATE="$PREFIX/var/lib/heimdal"
LOGS="$PREFIX/var/log/heimdal"
UNIT="$PREFIX/etc/systemd/system/heimdal.service"
LINK="$PREFIX/usr/local/bin/heimdal-tui"
BACKUPS="$PREFIX/var/backups"

if [ "$WITH_SYSTEMD" = 1 ] && command -v systemctl >/dev/null; then
    if systemctl list-unit-files heimdal.service >/dev/null 2>&1; then
        run systemctl disable --now heimdal.service || true
    fi
fi

if [ "$PURGE" = 1 ] && [ "$BACKUP" = 1 ] && [ -f "$STATE/heimdal.db" ]; then
    if [ -x "$VENV/bin/heimdal-tui" ]; then
        run install -d -m 0700 "$BACKUPS"
        target="$BACKUPS/heimdal-$(date +%Y%m%dT%H%M%S).db"
        say "backing the store up to $target before purging"
        run "$VENV/bin/heimdal-tui" backup "$target" --data-dir "$STATE" \
            || die "the backup failed: nothing was purged (pass --no-backup to purge anyway)"
    else
        die "cannot back up $STATE/heimdal.db (no $VENV/bin/heimdal-tui): copy it yourself, or pass --no-backup"
    fi
fi

if [ -e "$UNIT" ]; then run rm -f "$UNIT"; fi
if [ -L "$LINK" ]; then run rm -f "$LINK"; fi
if [ -d "$OPT" ]; then run rm -rf "$OPT"; fi
if [ "$WITH_SYSTEMD" = 1 ] && command -v systemctl >/dev/null; then
    run systemctl daemon-reload || true
fi

if [ "$PURGE" = 1 ]; then
    for dir in "$STATE" "$ETC" "$LOGS"; do
        if [ -d "$dir" ]; then run rm -rf "$dir"; fi
    done
    if [ -z "$PREFIX" ] && getent passwd "$SERVICE_USER" >/dev/null; then
        run userdel "$SERVICE_USER" || say "warning: could not delete the user $SERVICE_USER"
    fi
    say "purged (store, configuration, logs${PREFIX:+ under $PREFIX})"
else
    say "removed the service and $OPT; kept the store $STATE and the configuration $ETC (--purge removes them)"
fi
