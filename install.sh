#!/usr/bin/env bash
# Install icoapi as a systemd service (e.g. on a Revolution Pi).
#
#   sudo ./install.sh            install or update
#   sudo ./install.sh --force    remove the previous installation first
#
# Settings (environment variables):
#   SERVICE_NAME   name of the unit                     (default: icoapi)
#   INSTALL_DIR    where the code and its venv live     (default: /etc/icoapi)
#   SERVICE_PATH   folder of systemd unit files         (default: /etc/systemd/system)
#   SERVICE_USER   user the service runs as             (default: the invoking user)
#   PYTHON         Python >= 3.12 interpreter           (default: found automatically)
#   SKIP_SYSTEMCTL=1  write the files but do not call systemctl (tests, images)
#   SKIP_DEPENDENCIES=1  do not create the venv (tests)
set -euo pipefail

SERVICE_NAME=${SERVICE_NAME:-icoapi}
INSTALL_DIR=${INSTALL_DIR:-/etc/icoapi}
SERVICE_PATH=${SERVICE_PATH:-/etc/systemd/system}
SERVICE_USER=${SERVICE_USER:-${SUDO_USER:-$(id -un)}}
SKIP_SYSTEMCTL=${SKIP_SYSTEMCTL:-0}
SKIP_DEPENDENCIES=${SKIP_DEPENDENCIES:-0}
FORCE=0

for argument in "$@"; do
  case "$argument" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$argument'" >&2; exit 2 ;;
  esac
done

if [[ ! "$SERVICE_NAME" =~ ^[A-Za-z0-9_.@-]+$ ]]; then
  echo "install.sh: SERVICE_NAME '$SERVICE_NAME' is not a valid unit name" >&2
  exit 2
fi

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
UNIT_FILE="$SERVICE_PATH/$SERVICE_NAME.service"

systemctl_run() {
  if [ "$SKIP_SYSTEMCTL" = 1 ]; then
    echo "(skipped) systemctl $*"
  else
    systemctl "$@"
  fi
}

if [ "$FORCE" = 1 ]; then
  echo "Removing previous installation in $INSTALL_DIR"
  systemctl_run stop "$SERVICE_NAME" || true
  rm -rf "$INSTALL_DIR"
  rm -f "$UNIT_FILE"
fi

echo "Installing icoapi into $INSTALL_DIR"
mkdir -p "$INSTALL_DIR" "$SERVICE_PATH"
# Copy the sources, never a local venv, data or caches.
tar -C "$SOURCE_DIR" \
  --exclude=.venv --exclude=.poetry --exclude=.git --exclude='__pycache__' \
  --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache \
  -cf - . | tar -C "$INSTALL_DIR" -xf -

if [ "$SKIP_DEPENDENCIES" != 1 ]; then
  (cd "$INSTALL_DIR" && make install)
fi

cat > "$UNIT_FILE" <<UNIT
[Unit]
Description=ICOtronic API (icoapi)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=$SERVICE_USER
WorkingDirectory=$INSTALL_DIR
ExecStart=$INSTALL_DIR/.venv/bin/python -m icoapi
Restart=always
RestartSec=3
# Settings: $INSTALL_DIR/config/.env or the user's data directory .env.
Environment=PYTHONUNBUFFERED=1

[Install]
WantedBy=multi-user.target
UNIT

echo "Wrote $UNIT_FILE"
systemctl_run daemon-reload
systemctl_run enable "$SERVICE_NAME"
systemctl_run restart "$SERVICE_NAME"
echo "Done. Logs: journalctl -u $SERVICE_NAME -f"
