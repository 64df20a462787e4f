#!/usr/bin/env bash
# Install Heimdal as a systemd service on Debian or Raspberry Pi OS (64-bit).
#
#   sudo scripts/install.sh                 # the real thing, from this checkout
#   scripts/install.sh --dry-run            # print what would be done, change nothing
#   scripts/install.sh --prefix /tmp/root --no-apt --no-user --no-systemd
#                                           # everything under /tmp/root (a test install)
#
# What it does: installs libpcap (scapy compiles capture filters with it) and python3-venv; creates
# the system user `heimdal`; makes /opt/heimdal/venv (python3 -m venv --copies) and pip-installs
# heimdal-tui from this checkout into it; adds what this CPU needs (polars' compat runtime on x86-64
# CPUs without AVX2); checks that every compiled dependency imports and works, saying which failed;
# writes /etc/heimdal/config.toml (kept when it exists), /var/lib/heimdal (the store),
# /var/log/heimdal, the unit /etc/systemd/system/heimdal.service and /usr/local/bin/heimdal-tui;
# then enables and starts the service and runs `heimdal-tui doctor`. Running it again upgrades in
# place (the configuration and the store are kept).
#
# Capture permission: the unit grants CAP_NET_RAW and CAP_NET_ADMIN with AmbientCapabilities (see
# heimdal.service for why). --setcap also puts them on the venv's python, so members of the heimdal
# group can run `heimdal-tui capture` or the console without root; that python is then executable
# by root and that group only.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$SCRIPT_DIR/.." && pwd)"
PREFIX=""
PYTHON="python3"
DRY_RUN=0
WITH_APT=1
WITH_USER=1
WITH_SYSTEMD=1
WITH_SETCAP=0
START=1
DOCTOR=1
SERVICE_USER="heimdal"
PIP_ARGS=()

usage() {
    cat <<'USAGE'
Usage: install.sh [options]
  --prefix DIR     install everything under DIR instead of / (paths in the unit and config follow)
  --source DIR     the heimdal-tui checkout to install (default: this script's parent)
  --python PY      interpreter the venv is made from (default: python3; 3.11 or newer)
  --pip-arg ARG    pass ARG to pip install (repeatable), e.g. --pip-arg=--find-links=/srv/wheels
  --setcap         also grant the capture capabilities to the venv's python (group heimdal only)
  --no-apt         do not install system packages (libpcap0.8, python3-venv)
  --no-user        do not create the heimdal user; files belong to whoever runs this
  --no-systemd     write the unit file but do not reload, enable or start systemd units
  --no-start       enable the service but do not start it
  --no-doctor      do not run `heimdal-tui doctor` at the end
  --dry-run        print every command instead of running it
  -h, --help       this help
USAGE
}

say() { printf 'heimdal install: %s\n' "$*"; }
die() {
    printf 'heimdal install: error: %s\n' "$*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --source) SOURCE="${2:?--source needs a directory}"; shift 2 ;;
        --source=*) SOURCE="${1#*=}"; shift ;;
        --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
        --python=*) PYTHON="${1#*=}"; shift ;;
        --pip-arg) PIP_ARGS+=("${2:?--pip-arg needs a value}"); shift 2 ;;
        --pip-arg=*) PIP_ARGS+=("${1#*=}"); shift ;;
        --setcap) WITH_SETCAP=1; shift ;;
        --no-apt) WITH_APT=0; shift ;;
        --no-user) WITH_USER=0; shift ;;
        --no-systemd) WITH_SYSTEMD=0; shift ;;
        --no-start) START=0; shift ;;
        --no-doctor) DOCTOR=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

# Commands that change the system go through run: printed instead with --dry-run.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# write_file PATH MODE OWNER:GROUP: stdin becomes PATH (atomically), unless --dry-run.
write_file() {
    local path="$1" mode="$2" owner="$3" tmp
    if [ "$DRY_RUN" = 1 ]; then
        printf '+ write %s (mode %s, owner %s):\n' "$path" "$mode" "$owner"
        sed 's/^/|   /'
        return
    fi
    tmp="$(mktemp "$(dirname "$path")/.heimdal-install.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [ "$(id -u)" = 0 ]; then chown "$owner" "$tmp"; fi
    mv -f "$tmp" "$path"
}

# -- preconditions ----------------------------------------------------------------------------------
[ -f "$SOURCE/pyproject.toml" ] || die "$SOURCE is not a heimdal-tui checkout (no pyproject.toml)"
if [ -n "$PREFIX" ]; then
    case "$PREFIX" in /*) ;; *) PREFIX="$PWD/$PREFIX" ;; esac
    PREFIX="${PREFIX%/}"
fi
if [ "$(id -u)" != 0 ] && [ "$DRY_RUN" = 0 ]; then
    if [ "$WITH_APT" = 1 ] || [ "$WITH_USER" = 1 ] || { [ "$WITH_SYSTEMD" = 1 ] && [ -z "$PREFIX" ]; }; then
        die "run as root (sudo $0), or install under a directory of yours: --prefix DIR --no-apt --no-user --no-systemd"
    fi
fi

MACHINE="$(uname -m)"
case "$MACHINE" in
    x86_64 | aarch64 | arm64) ;;
    armv6l | armv7l) die "this is 32-bit $MACHINE: heimdal needs a 64-bit OS (Raspberry Pi OS 64-bit); polars publishes no 32-bit ARM wheels" ;;
    *) say "warning: $MACHINE is untested (x86_64 and aarch64 are)" ;;
esac
PAGE_SIZE="$(getconf PAGESIZE 2>/dev/null || echo 4096)"
MODEL="$(tr -d '\0' 2>/dev/null </proc/device-tree/model || true)"
say "platform: ${MODEL:-$MACHINE}, $MACHINE, $((PAGE_SIZE / 1024)) KiB pages"
if [ "$PAGE_SIZE" -gt 65536 ]; then
    say "warning: pages larger than 64 KiB: polars' jemalloc supports at most 64 KiB"
fi

OPT="$PREFIX/opt/heimdal"
VENV="$OPT/venv"
ETC="$PREFIX/etc/heimdal"
STATE="$PREFIX/var/lib/heimdal"
LOGS="$PREFIX/var/log/heimdal"
UNIT_DIR="$PREFIX/etc/systemd/system"
BIN_DIR="$PREFIX/usr/local/bin"
CONFIG="$ETC/config.toml"

# -- system packages --------------------------------------------------------------------------------
if [ "$WITH_APT" = 1 ]; then
    missing=()
    for pkg in libpcap0.8 python3-venv; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        run env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON is missing or older than 3.11 (Debian 12 / Raspberry Pi OS bookworm ship 3.11)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$PYTHON cannot make virtual environments: install python3-venv (or drop --no-apt)"

# -- user and directories ---------------------------------------------------------------------------
if [ "$WITH_USER" = 1 ]; then
    if ! getent passwd "$SERVICE_USER" >/dev/null; then
        say "creating the system user $SERVICE_USER"
        run useradd --system --user-group --home-dir /var/lib/heimdal --no-create-home \
            --shell /usr/sbin/nologin --comment "Heimdal network sensor" "$SERVICE_USER"
    fi
    OWNER="$SERVICE_USER"
    GROUP="$SERVICE_USER"
else
    OWNER="$(id -un)"
    GROUP="$(id -gn)"
fi
ROOT_OWNER="$(id -un)"

run install -d -m 0755 "$OPT" "$UNIT_DIR" "$BIN_DIR"
run install -d -m 0750 -o "$OWNER" -g "$GROUP" "$STATE" "$LOGS"
run install -d -m 0750 -o "$ROOT_OWNER" -g "$GROUP" "$ETC"

# -- the virtual environment ------------------------------------------------------------------------
UPGRADE=0
if [ -x "$VENV/bin/python" ]; then
    UPGRADE=1
    say "upgrading heimdal-tui in $VENV"
else
    say "creating $VENV"
    run "$PYTHON" -m venv --copies "$VENV"
fi
say "installing heimdal-tui from $SOURCE (pip)"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PIP_ARGS[@]}")
run "${PIP[@]}" "$SOURCE"
if [ "$UPGRADE" = 1 ]; then
    # The same version number may hold new code: reinstall the project itself (not its dependencies).
    run "${PIP[@]}" --no-deps --force-reinstall "$SOURCE"
fi

if [ "$DRY_RUN" = 0 ]; then
    # Only the standard library is imported here: safe even where a dependency would crash.
    mapfile -t EXTRA < <("$VENV/bin/python" -m heimdal_tui.service.deps --recommend)
    if [ "${#EXTRA[@]}" -gt 0 ]; then
        say "this CPU needs ${EXTRA[*]} (polars' default build needs AVX2, FMA and BMI)"
        run "${PIP[@]}" "${EXTRA[@]}"
    fi
    say "checking that every compiled dependency works on this CPU"
    if ! "$VENV/bin/python" -m heimdal_tui.service.deps; then
        die "some compiled dependencies do not work here (FAIL lines above, with what to do); the venv is left in $VENV"
    fi
fi

if [ "$WITH_SETCAP" = 1 ]; then
    command -v setcap >/dev/null || die "--setcap needs setcap (apt install libcap2-bin)"
    say "granting CAP_NET_RAW and CAP_NET_ADMIN to $VENV/bin/python (group $GROUP only)"
    run chown "$ROOT_OWNER:$GROUP" "$VENV/bin/python"
    run chmod 0750 "$VENV/bin/python"
    run setcap cap_net_raw,cap_net_admin=eip "$VENV/bin/python"
fi

run ln -sfn "$VENV/bin/heimdal-tui" "$BIN_DIR/heimdal-tui"

# -- configuration ----------------------------------------------------------------------------------
if [ -e "$CONFIG" ]; then
    say "keeping the configuration $CONFIG"
else
    write_file "$CONFIG" 0640 "$ROOT_OWNER:$GROUP" <<EOF
# Heimdal sensor configuration. Every setting and its default: heimdal-tui config show
# Check it after editing: heimdal-tui config validate --config $CONFIG
# The service reads it at start and on reload (systemctl reload heimdal).

[store]
data_dir = "$STATE"

[logging]
# stderr goes to the journal: journalctl -u heimdal. For rotated files in $LOGS instead:
#   destination = "file"
#   file = "$LOGS/heimdal.log"
destination = "stderr"
level = "info"

[retention]
# The store's size cap on the SD card, in MiB (the oldest closed data goes first).
max_store_mb = 512.0
EOF
fi
if [ "$DRY_RUN" = 0 ]; then
    "$VENV/bin/heimdal-tui" config validate --config "$CONFIG" >/dev/null \
        || die "$CONFIG is not valid (see above)"
fi

# -- the unit ---------------------------------------------------------------------------------------
UNIT="$UNIT_DIR/heimdal.service"
sed -e "s#/opt/heimdal/#$OPT/#g" \
    -e "s#--data-dir /var/lib/heimdal#--data-dir $STATE#" \
    -e "s#/etc/heimdal/config.toml#$CONFIG#" \
    -e "s#^ReadWritePaths=.*#ReadWritePaths=$STATE $LOGS#" \
    -e "s#^User=.*#User=$OWNER#" \
    -e "s#^Group=.*#Group=$GROUP#" \
    "$SCRIPT_DIR/heimdal.service" | write_file "$UNIT" 0644 "$ROOT_OWNER:$ROOT_OWNER"
if command -v systemd-analyze >/dev/null && [ "$DRY_RUN" = 0 ]; then
    systemd-analyze verify "$UNIT" || say "warning: systemd-analyze verify found problems in $UNIT (above)"
fi

if [ "$WITH_SYSTEMD" = 1 ]; then
    run systemctl daemon-reload
    run systemctl enable heimdal.service
    if [ "$START" = 1 ]; then
        if [ "$DRY_RUN" = 0 ] && ! "$VENV/bin/heimdal-tui" daemon --help >/dev/null 2>&1; then
            say "this heimdal-tui has no daemon command yet: the service is installed and enabled, not started"
        else
            run systemctl restart heimdal.service
        fi
    fi
fi

if [ "$DOCTOR" = 1 ] && [ "$DRY_RUN" = 0 ]; then
    say "heimdal-tui doctor:"
    "$VENV/bin/heimdal-tui" doctor --data-dir "$STATE" --config "$CONFIG" || true
fi
say "done: $VENV, config $CONFIG, state $STATE, unit $UNIT"
