#!/usr/bin/env bash
# Install or update icoapi as a systemd service (e.g. on a Revolution Pi).
#
#   sudo ./install.sh                   install or update
#   sudo ./install.sh --wheelhouse DIR  install offline from the wheels in DIR
#   sudo ./install.sh --force           also remove every older version afterwards
#
# An update builds the new version beside the running one (INSTALL_DIR/releases),
# switches INSTALL_DIR/current to it and restarts the service; if the build or
# the start fails, the previous version stays (or is put back) in place. Settings
# in INSTALL_DIR/config/.env and the data directory are never changed.
#
# Settings (environment variables):
#   SERVICE_NAME   name of the unit                         (default: icoapi)
#   INSTALL_DIR    code, venvs and config/.env              (default: /etc/icoapi)
#   SERVICE_PATH   folder of systemd unit files             (default: /etc/systemd/system)
#   SERVICE_USER   existing account the service runs as     (default: the unit's current
#                  user on an update, else the user who ran sudo)
#   DATA_DIR       data directory the service may write     (default: ICOAPI_DATA_DIR of the
#                  unit or config/.env, else ~SERVICE_USER/.local/share/ICOdaq)
#   PYTHON         Python interpreter (>= 3.12, < 3.14)     (default: found automatically)
#   KEEP_RELEASES  versions kept for going back             (default: 2)
#   SKIP_SYSTEMCTL=1     write the files but do not call systemctl (tests, images)
#   SKIP_DEPENDENCIES=1  do not create the venv (tests)
set -euo pipefail

SERVICE_NAME=${SERVICE_NAME:-icoapi}
INSTALL_DIR=${INSTALL_DIR:-/etc/icoapi}
SERVICE_PATH=${SERVICE_PATH:-/etc/systemd/system}
SKIP_SYSTEMCTL=${SKIP_SYSTEMCTL:-0}
SKIP_DEPENDENCIES=${SKIP_DEPENDENCIES:-0}
KEEP_RELEASES=${KEEP_RELEASES:-2}
WATCHDOG_SEC=30
# Room for the venv (about 450 MB) and the copy of the sources.
REQUIRED_FREE_KB=$((700 * 1024))
FORCE=0
WHEELHOUSE=""

fail() {
  printf 'install.sh: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --wheelhouse)
      [ $# -ge 2 ] || { echo "install.sh: --wheelhouse needs a folder" >&2; exit 2; }
      WHEELHOUSE=$2
      shift
      ;;
    --wheelhouse=*) WHEELHOUSE=${1#--wheelhouse=} ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

if [[ ! "$SERVICE_NAME" =~ ^[A-Za-z0-9_.@-]+$ ]]; then
  echo "install.sh: SERVICE_NAME '$SERVICE_NAME' is not a valid unit name" >&2
  exit 2
fi
if [[ ! "$KEEP_RELEASES" =~ ^[1-9][0-9]*$ ]]; then
  echo "install.sh: KEEP_RELEASES must be a number >= 1" >&2
  exit 2
fi
case "$INSTALL_DIR" in
  /*) ;;
  *) echo "install.sh: INSTALL_DIR must be an absolute path" >&2; exit 2 ;;
esac
INSTALL_DIR=${INSTALL_DIR%/}
if [ -z "$INSTALL_DIR" ]; then
  echo "install.sh: INSTALL_DIR must not be /" >&2
  exit 2
fi

# The source tree is where this script really lives: the installed copy
# (INSTALL_DIR/install.sh) is a link into INSTALL_DIR/current.
SOURCE_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
UNIT_FILE="$SERVICE_PATH/$SERVICE_NAME.service"
RELEASES="$INSTALL_DIR/releases"
CURRENT="$INSTALL_DIR/current"

systemctl_run() {
  if [ "$SKIP_SYSTEMCTL" = 1 ]; then
    echo "(skipped) systemctl $*"
  else
    systemctl "$@"
  fi
}

unit_value() {  # unit_value KEY [FILE]: the value of the first KEY= line of the unit
  local file=${2:-$UNIT_FILE}
  [ -f "$file" ] || return 0
  sed -n "s/^$1=//p" "$file" | head -n 1
}

env_file_value() {  # env_file_value KEY: the value of KEY in INSTALL_DIR/config/.env
  local file="$INSTALL_DIR/config/.env" value
  [ -f "$file" ] || return 0
  value=$(sed -n "s/^[[:space:]]*\(export[[:space:]]\{1,\}\)\{0,1\}$1[[:space:]]*=[[:space:]]*//p" "$file" | tail -n 1)
  value=${value%\"}; value=${value#\"}; value=${value%\'}; value=${value#\'}
  printf '%s' "$value"
}

# --- Prerequisites: all checked before anything changes ------------------------------

echo "Checking prerequisites"
for item in pyproject.toml poetry.lock README.md icoapi/__init__.py config \
            scripts/find-python scripts/deploy/requirements-from-lock.py; do
  [ -e "$SOURCE_DIR/$item" ] || fail "$SOURCE_DIR is not a complete icoapi source tree ($item is missing)" \
    "Run install.sh from a checkout of the project or from $INSTALL_DIR."
done
case "$SOURCE_DIR/" in
  "$RELEASES"/*/*/) fail "install.sh must be run from a source tree or a release, not from $SOURCE_DIR" ;;
esac

if [ "$SKIP_SYSTEMCTL" != 1 ]; then
  [ "$(id -u)" = 0 ] || fail "needs root to install a system service" "Run: sudo ./install.sh"
  command -v systemctl >/dev/null || fail "systemctl not found: this script installs a systemd service" \
    "Without systemd, run the service with the Docker image (see README, Deployment)."
fi
for tool in tar getent sed df; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing" "Install it (Debian: apt-get install coreutils tar sed libc-bin)."
done

# The service user: told (SERVICE_USER), else kept from the unit, else the sudo user.
OLD_USER=$(unit_value User)
if [ -n "${SERVICE_USER:-}" ]; then
  if [ -n "$OLD_USER" ] && [ "$OLD_USER" != "$SERVICE_USER" ]; then
    echo "Changing the service user from $OLD_USER to $SERVICE_USER (SERVICE_USER)"
  fi
elif [ -n "$OLD_USER" ]; then
  SERVICE_USER=$OLD_USER
elif [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  SERVICE_USER=$SUDO_USER
else
  fail "which account should the service run as?" \
    "Name an existing user: sudo SERVICE_USER=pi ./install.sh" \
    "(or create one: sudo useradd --system --create-home icoapi). root only if named explicitly."
fi
if ! PASSWD_ENTRY=$(getent passwd "$SERVICE_USER"); then
  fail "the user '$SERVICE_USER' does not exist" \
    "Create it first (sudo useradd --system --create-home $SERVICE_USER) or choose another SERVICE_USER."
fi
SERVICE_HOME=$(printf '%s' "$PASSWD_ENTRY" | cut -d: -f6)
SERVICE_GROUP=$(id -gn "$SERVICE_USER")
[ "$SERVICE_USER" != root ] || echo "Warning: the service will run as root (SERVICE_USER=root)" >&2

# The data directory: the only place the sandboxed service may write.
DATA_DIR_IN_UNIT=""
if [ -n "${DATA_DIR:-}" ]; then
  DATA_DIR_IN_UNIT=$DATA_DIR
else
  [ ! -f "$UNIT_FILE" ] || DATA_DIR_IN_UNIT=$(sed -n 's/^Environment=ICOAPI_DATA_DIR=//p' "$UNIT_FILE" | head -n 1)
  DATA_DIR=$DATA_DIR_IN_UNIT
  [ -n "$DATA_DIR" ] || DATA_DIR=$(env_file_value ICOAPI_DATA_DIR)
  if [ -z "$DATA_DIR" ]; then
    folder=$(env_file_value VITE_APPLICATION_FOLDER)
    DATA_DIR="$SERVICE_HOME/.local/share/${folder:-ICOdaq}"
  fi
fi
case "$DATA_DIR" in
  *[[:space:]]*) fail "the data directory '$DATA_DIR' contains white space" "Set DATA_DIR to a path without spaces." ;;
  /*) ;;
  *) fail "the data directory '$DATA_DIR' is not an absolute path" "Set DATA_DIR=/absolute/path." ;;
esac
if [ -f "$INSTALL_DIR/config/.env" ] && [ "$(id -u)" = 0 ] && [ "$SERVICE_USER" != root ] \
   && command -v runuser >/dev/null && ! runuser -u "$SERVICE_USER" -- test -r "$INSTALL_DIR/config/.env"; then
  echo "Warning: $SERVICE_USER cannot read $INSTALL_DIR/config/.env; the service will ignore it." >&2
  echo "  Fix: sudo chgrp $(id -gn "$SERVICE_USER") $INSTALL_DIR/config/.env && sudo chmod 640 $INSTALL_DIR/config/.env" >&2
fi

# Python: >= 3.12 (icotronic 8) and what pyproject.toml allows, with venv support.
PYTHON_BIN=$(PYTHON=${PYTHON:-} "$SOURCE_DIR/scripts/find-python" 2>/dev/null) || PYTHON_BIN=""
if [ -z "$PYTHON_BIN" ]; then
  fail "no Python >= 3.12 found (icotronic needs 3.12 or newer)" \
    "Debian trixie (RevPi OS trixie): sudo apt-get install python3 python3-venv (Python 3.13)" \
    "Debian bookworm (RevPi OS bookworm) has only 3.11; install 3.12 where the service can read it, e.g." \
    "  curl -LsSf https://astral.sh/uv/install.sh | sh   (or: pipx install uv)" \
    "  sudo UV_PYTHON_INSTALL_DIR=/opt/python uv python install 3.12" \
    "  sudo PYTHON=\$(UV_PYTHON_INSTALL_DIR=/opt/python uv python find 3.12) ./install.sh" \
    "A pyenv interpreter works the same way: sudo PYTHON=~/.pyenv/versions/3.12.x/bin/python3 ./install.sh"
fi
"$PYTHON_BIN" - "$SOURCE_DIR/pyproject.toml" <<'PY' || fail "$PYTHON_BIN is not a Python this version of icoapi supports" "Choose another interpreter with PYTHON=/path/to/python3.12 (or 3.13)."
import sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))["project"]["requires-python"]
version = sys.version_info[:2]
for clause in spec.replace(" ", "").split(","):
    for op in (">=", "<=", "<", ">", "=="):
        if clause.startswith(op):
            bound = tuple(int(part) for part in clause[len(op):].split(".")[:2])
            ok = {">=": version >= bound, "<=": version <= bound, "<": version < bound,
                  ">": version > bound, "==": version == bound}[op]
            if not ok:
                print(f"Python {version[0]}.{version[1]} does not satisfy requires-python {spec}",
                      file=sys.stderr)
                sys.exit(1)
            break
PY
"$PYTHON_BIN" -c 'import ensurepip, venv' 2>/dev/null || fail "$PYTHON_BIN cannot create virtual environments" \
  "Debian: sudo apt-get install python3-venv (or python3.X-venv for your version)."
if [ "$SKIP_DEPENDENCIES" != 1 ] && [ "$(id -u)" = 0 ] && [ "$SERVICE_USER" != root ] && command -v runuser >/dev/null; then
  runuser -u "$SERVICE_USER" -- "$PYTHON_BIN" -c 'pass' 2>/dev/null || fail \
    "the user '$SERVICE_USER' cannot run $PYTHON_BIN (the service's venv uses it)" \
    "Install the interpreter where every user can read it (e.g. UV_PYTHON_INSTALL_DIR=/opt/python), not under /root."
fi

# Where the packages come from: the wheelhouse, or the network (checked in the build).
PIP_SOURCE=()
if [ -n "$WHEELHOUSE" ]; then
  [ -d "$WHEELHOUSE" ] || fail "the wheelhouse '$WHEELHOUSE' is not a folder"
  WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd -P)
  compgen -G "$WHEELHOUSE/*.whl" >/dev/null || fail "the wheelhouse $WHEELHOUSE holds no wheels (*.whl)" \
    "Fill it on a machine with internet access (README, Deployment: offline install)."
  PIP_SOURCE=(--no-index --find-links "$WHEELHOUSE")
fi

mkdir_probe=$INSTALL_DIR
while [ ! -d "$mkdir_probe" ]; do mkdir_probe=$(dirname "$mkdir_probe"); done
free_kb=$(df -Pk "$mkdir_probe" | awk 'NR == 2 { print $4 }')
if [ "$SKIP_DEPENDENCIES" != 1 ] && [ "${free_kb:-0}" -lt "$REQUIRED_FREE_KB" ]; then
  fail "only $((free_kb / 1024)) MB free in $mkdir_probe; the new version needs about $((REQUIRED_FREE_KB / 1024)) MB" \
    "Free some space (the previous versions in $RELEASES can go: sudo ./install.sh --force)."
fi
echo "  Python $("$PYTHON_BIN" -c 'import platform; print(platform.python_version())') ($PYTHON_BIN)," \
  "user $SERVICE_USER, data $DATA_DIR"

# --- Build the new version beside the running one ------------------------------------

RELEASE_ID="$(date -u +%Y%m%dT%H%M%SZ)-$$"
RELEASE="$RELEASES/$RELEASE_ID"
LOG_FILE=$(mktemp "${TMPDIR:-/tmp}/icoapi-install.XXXXXX.log")
BUILD_DONE=0
SWITCHED=0
PREVIOUS_TARGET=""
UNIT_BACKUP=""
NEW_UNIT=""

cleanup() {
  local status=$?
  if [ "$BUILD_DONE" != 1 ] && [ -d "$RELEASE" ]; then
    rm -rf "$RELEASE"
  fi
  [ -z "$UNIT_BACKUP" ] || rm -f "$UNIT_BACKUP"
  [ -z "$NEW_UNIT" ] || rm -f "$NEW_UNIT"
  if [ "$status" = 0 ]; then
    rm -f "$LOG_FILE"
  elif [ "$SWITCHED" = 0 ]; then
    echo "install.sh: nothing was changed; the installed version (if any) keeps running." >&2
  fi
}
trap cleanup EXIT

build_step() {  # build_step DESCRIPTION COMMAND...: run, log, and on failure show why
  echo "  $1"
  shift
  if ! "$@" >>"$LOG_FILE" 2>&1; then
    echo "install.sh: failed: $*" >&2
    echo "---- last lines of $LOG_FILE ----" >&2
    tail -n 25 "$LOG_FILE" >&2
    echo "----" >&2
    if [ ${#PIP_SOURCE[@]} -eq 0 ] && grep -qiE 'connection|resolve|network is unreachable|timed out|No matching distribution' "$LOG_FILE"; then
      echo "install.sh: the package index looks unreachable. Connect the unit to the network," \
        "or install offline: sudo ./install.sh --wheelhouse DIR (README, Deployment)." >&2
    fi
    exit 1
  fi
}

write_requirements() {  # the runtime packages pinned in poetry.lock, with their hashes
  "$PYTHON_BIN" "$RELEASE/scripts/deploy/requirements-from-lock.py" "$RELEASE" >"$RELEASE/requirements.txt"
}

import_service() {  # outside any source tree, so the venv's own icoapi is imported
  (cd / && "$RELEASE/.venv/bin/python" -c 'import icoapi.api, icoapi; print("icoapi", icoapi.__version__)')
}

echo "Building the new version in $RELEASE"
mkdir -p "$RELEASES"
mkdir "$RELEASE"
# The sources only: never a venv, caches, the site's settings or another release.
tar -C "$SOURCE_DIR" \
  --exclude=.venv --exclude=.poetry --exclude=.git --exclude=__pycache__ \
  --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache --exclude=node_modules \
  --anchored --exclude=./releases --exclude=./current --exclude=./config/.env --exclude=./.env \
  --exclude=./tests --exclude=./bench --exclude=./.icoapi-release --exclude=./.ci \
  --exclude=./.github --exclude=./.gitignore --exclude=./.dockerignore \
  -cf - . | tar -C "$RELEASE" -xf -

if [ "$SKIP_DEPENDENCIES" != 1 ]; then
  PIP=("$RELEASE/.venv/bin/python" -m pip --disable-pip-version-check --no-input)
  build_step "creating the venv" "$PYTHON_BIN" -m venv "$RELEASE/.venv"
  build_step "listing the locked runtime requirements" write_requirements
  if [ ${#PIP_SOURCE[@]} -eq 0 ]; then
    build_step "checking that the package index answers" \
      "${PIP[@]}" download --no-deps --timeout 15 --retries 1 --dest "$RELEASE/.probe" "poetry-core>=2"
    rm -rf "$RELEASE/.probe"
  fi
  build_step "installing the runtime dependencies (requirements.txt, hashes checked)" \
    "${PIP[@]}" install "${PIP_SOURCE[@]}" --require-hashes --no-deps -r "$RELEASE/requirements.txt"
  build_step "installing icoapi itself" \
    "${PIP[@]}" install "${PIP_SOURCE[@]}" --no-deps --editable "$RELEASE"
  build_step "checking the dependencies" "${PIP[@]}" check
  build_step "compiling the sources" "$RELEASE/.venv/bin/python" -m compileall -q "$RELEASE/icoapi"
  build_step "importing the service" import_service
fi
printf 'source=%s\npython=%s\nbuilt=%s\n' "$SOURCE_DIR" "$PYTHON_BIN" "$RELEASE_ID" > "$RELEASE/.icoapi-release"
# The code belongs to root and is read-only for the service.
if [ "$(id -u)" = 0 ]; then
  chown -R root:root "$RELEASE"
fi
chmod -R u+rwX,go+rX,go-w "$RELEASE"
BUILD_DONE=1

# --- The unit ---------------------------------------------------------------------------

PROTECT_HOME=yes
for path in "$DATA_DIR" "$PYTHON_BIN"; do
  case "$path" in /home/*|/root/*|/run/user/*) PROTECT_HOME=read-only ;; esac
done
DATA_ENVIRONMENT=""
[ -z "$DATA_DIR_IN_UNIT" ] || DATA_ENVIRONMENT="Environment=ICOAPI_DATA_DIR=$DATA_DIR_IN_UNIT"

NEW_UNIT=$(mktemp "${TMPDIR:-/tmp}/icoapi-unit.XXXXXX")
cat > "$NEW_UNIT" <<UNIT
# Written by install.sh; local changes belong into a drop-in: systemctl edit $SERVICE_NAME
[Unit]
Description=ICOtronic API (icoapi)
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=5

[Service]
# The service reports READY=1 once it serves and WATCHDOG=1 from its event loop.
Type=notify
NotifyAccess=main
WatchdogSec=$WATCHDOG_SEC
Restart=on-failure
RestartSec=3
TimeoutStartSec=120
# SIGTERM ends a running measurement first (the file is closed cleanly).
TimeoutStopSec=60
User=$SERVICE_USER
Group=$SERVICE_GROUP
WorkingDirectory=$INSTALL_DIR
ExecStart=$INSTALL_DIR/current/.venv/bin/python -m icoapi
# Settings: $INSTALL_DIR/config/.env (never changed by install.sh).
Environment=PYTHONUNBUFFERED=1
Environment=PYTHONDONTWRITEBYTECODE=1
Environment=MPLCONFIGDIR=/tmp/matplotlib
$DATA_ENVIRONMENT
LimitNOFILE=65536

# Sandbox: the code is read-only, only the data directory is writable.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$DATA_DIR
ProtectHome=$PROTECT_HOME
PrivateTmp=yes
# SocketCAN is a network interface (AF_CAN) in the host's network namespace;
# AF_NETLINK finds interfaces, AF_UNIX carries sd_notify and the journal.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_CAN
CapabilityBoundingSet=
AmbientCapabilities=
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
UNIT

# --- Switch, start, and go back if the new version does not come up --------------------

if [ -L "$CURRENT" ]; then
  PREVIOUS_TARGET=$(readlink "$CURRENT")
fi
if [ -f "$UNIT_FILE" ]; then
  UNIT_BACKUP=$(mktemp "${TMPDIR:-/tmp}/icoapi-unit-backup.XXXXXX")
  cp -p "$UNIT_FILE" "$UNIT_BACKUP"
fi

point_current_at() {  # atomically: a new link renamed over the old one
  ln -sfn "$1" "$INSTALL_DIR/.current.new"
  mv -Tf "$INSTALL_DIR/.current.new" "$CURRENT"
}

roll_back() {
  echo "install.sh: the new version did not start; going back to the previous one" >&2
  if [ -n "$PREVIOUS_TARGET" ]; then
    point_current_at "$PREVIOUS_TARGET"
  else
    rm -f "$CURRENT"
  fi
  if [ -n "$UNIT_BACKUP" ]; then
    cp -p "$UNIT_BACKUP" "$UNIT_FILE"
  else
    rm -f "$UNIT_FILE"
  fi
  systemctl_run daemon-reload || true
  if [ -n "$UNIT_BACKUP" ]; then
    systemctl_run restart "$SERVICE_NAME" || true
  fi
  rm -rf "$RELEASE"
  echo "install.sh: rolled back. Why the new version failed: journalctl -u $SERVICE_NAME -n 50" >&2
  exit 1
}

# The data directory belongs to the service user; existing data stays as it is.
if [ ! -d "$DATA_DIR" ]; then
  if [ "$(id -u)" = 0 ] && [ "$SERVICE_USER" != root ] && command -v runuser >/dev/null \
     && runuser -u "$SERVICE_USER" -- mkdir -p "$DATA_DIR" 2>/dev/null; then
    :
  else
    mkdir -p "$DATA_DIR"
    [ "$(id -u)" != 0 ] || chown "$SERVICE_USER:$SERVICE_GROUP" "$DATA_DIR"
  fi
  echo "Created the data directory $DATA_DIR"
fi
mkdir -p "$INSTALL_DIR/config" "$SERVICE_PATH"

echo "Switching $CURRENT to releases/$RELEASE_ID"
SWITCHED=1
point_current_at "releases/$RELEASE_ID"
mv -f "$NEW_UNIT" "$UNIT_FILE"
chmod 644 "$UNIT_FILE"
echo "Wrote $UNIT_FILE"
systemctl_run daemon-reload || roll_back
systemctl_run enable "$SERVICE_NAME" || roll_back
# Type=notify: restart returns once the new version reported READY=1, or fails.
systemctl_run restart "$SERVICE_NAME" || roll_back
if [ "$SKIP_SYSTEMCTL" != 1 ]; then
  systemctl is-active --quiet "$SERVICE_NAME" || roll_back
fi

# --- Tidy up: earlier layouts and old versions ---------------------------------------

# Before releases/, the code lay directly in INSTALL_DIR: keep it as an old version.
legacy=()
for entry in "$INSTALL_DIR"/* "$INSTALL_DIR"/.[!.]*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  case "${entry##*/}" in
    config|releases|current|install.sh|.current.new) ;;
    *) legacy+=("$entry") ;;
  esac
done
if [ -f "$INSTALL_DIR/install.sh" ] && [ ! -L "$INSTALL_DIR/install.sh" ]; then
  legacy+=("$INSTALL_DIR/install.sh")
fi
if [ ${#legacy[@]} -gt 0 ]; then
  mkdir -p "$RELEASES/legacy-$RELEASE_ID"
  mv "${legacy[@]}" "$RELEASES/legacy-$RELEASE_ID/"
  echo "Moved the files of the earlier layout to $RELEASES/legacy-$RELEASE_ID"
fi
ln -sfn current/install.sh "$INSTALL_DIR/.install.sh.new"
mv -Tf "$INSTALL_DIR/.install.sh.new" "$INSTALL_DIR/install.sh"

keep=$KEEP_RELEASES
[ "$FORCE" != 1 ] || keep=1
kept=0
while IFS= read -r old; do
  [ -n "$old" ] || continue
  if [ "$old" = "$RELEASE_ID" ]; then
    kept=$((kept + 1))
    continue
  fi
  if [ "$kept" -lt "$keep" ] && { [ -f "$RELEASES/$old/.icoapi-release" ] || [[ "$old" == legacy-* ]]; }; then
    kept=$((kept + 1))
    continue
  fi
  rm -rf "${RELEASES:?}/$old"
  echo "Removed the old version releases/$old"
done < <(cd "$RELEASES" && find . -mindepth 1 -maxdepth 1 -type d -printf '%T@ %f\n' | sort -rn | cut -d' ' -f2-)

echo "Done: $SERVICE_NAME runs releases/$RELEASE_ID. Logs: journalctl -u $SERVICE_NAME -f"
