#!/usr/bin/env bash
# A real OpenSSH server on a loopback port, standing in for a facility's submit host in hebi's tests
# (the `gridengine` and `slurm` backends with `jobs.ssh`): its own config, host key, client key and
# known_hosts file, nothing of the system's sshd (no PAM, no /etc/ssh/sshd_config, no port 22).
# The submit host is this machine, so the schedulers' client commands are those of gridengine.sh and
# slurm.sh.
#
# Usage: scripts/sshd.sh install|start|stop|status|env
#   install  openssh-server and openssh-client (root; through scripts/install-system.sh; idempotent)
#   start    writes the keys and config once, starts sshd, waits (bounded) until it accepts; idempotent
#   stop     sshd AND every connection it serves (so an open ControlMaster sees the host go down)
#   status   exit 0 when sshd runs and accepts connections
#   env      HEBI_SSHD_PORT, HEBI_SSHD_IDENTITY (the client key), HEBI_SSHD_KNOWN_HOSTS, HEBI_SSHD_LOG
# Settings (environment): HEBI_SSHD_PORT (default 22022), HEBI_SSHD_DIR (default /var/lib/hebi-sshd),
# HEBI_SSHD_USERS (who may log in with the client key; default root).
set -euo pipefail

PORT=${HEBI_SSHD_PORT:-22022}
DIR=${HEBI_SSHD_DIR:-/var/lib/hebi-sshd}
USERS=${HEBI_SSHD_USERS:-root}
SSHD=/usr/sbin/sshd
PIDFILE=$DIR/sshd.pid
say() { printf 'sshd: %s\n' "$*"; }
die() { printf 'sshd: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/daemons.sh"   # wait_for, alive
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (sshd changes to the user who logs in)"; }
installed() { [ -x "$SSHD" ] && command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; }
accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

do_install() {
  installed && return 0
  "$(dirname "$0")/install-system.sh" ssh
}

write_files() {
  # sshd refuses keys in folders others may write (StrictModes): everything root's, 0755 at most.
  install -d -m 0755 "$DIR"
  [ -f "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hebi-sshd-host -f "$DIR/host_ed25519"
  [ -f "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hebi-sshd-client -f "$DIR/client_ed25519"
  install -m 0644 "$DIR/client_ed25519.pub" "$DIR/authorized_keys"
  # The client key is read by the tests' API, which runs as root like this script.
  chmod 0600 "$DIR/client_ed25519"
  printf '[127.0.0.1]:%s %s\n' "$PORT" "$(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" > "$DIR/known_hosts"
  cat > "$DIR/sshd_config" <<EOF
# written by hebi scripts/sshd.sh
ListenAddress 127.0.0.1:$PORT
HostKey $DIR/host_ed25519
PidFile $PIDFILE
AuthorizedKeysFile $DIR/authorized_keys
AllowUsers $USERS
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTTY no
# One ControlMaster connection carries many sessions at once (the API runs commands in parallel).
MaxSessions 64
MaxStartups 64:30:128
# VERBOSE logs each login ("Accepted publickey"): the tests count them.
LogLevel VERBOSE
# Debian's bash reads ~/.bashrc for a command sent over SSH unless it is a nested shell: this
# machine's root profile (a developer's, with pyenv) would add a quarter of a second to every command.
SetEnv SHLVL=1
EOF
}

do_start() {
  installed || die "not installed: run scripts/sshd.sh install (as root)"
  need_root "starting sshd"
  write_files
  if ! alive "$PIDFILE"; then
    mkdir -p /run/sshd   # sshd's privilege-separation folder
    "$SSHD" -t -f "$DIR/sshd_config" || die "the config $DIR/sshd_config is not valid"
    "$SSHD" -f "$DIR/sshd_config" -E "$DIR/sshd.log"
  fi
  wait_for 30 accepts || die "sshd did not accept connections on 127.0.0.1:$PORT within 30 s (see $DIR/sshd.log)"
  say "running on 127.0.0.1:$PORT (users: $USERS)"
}

do_stop() {
  alive "$PIDFILE" || { say "not running"; return 0; }
  need_root "stopping sshd"
  local pid children
  pid=$(cat "$PIDFILE")
  # The listener's children serve the open connections: a host that goes down takes them with it.
  children=$(ps -o pid= --ppid "$pid" || true)
  kill "$pid" 2>/dev/null || true
  for child in $children; do kill "$child" 2>/dev/null || true; done
  for each in $pid $children; do
    if ! wait_for 15 sh -c "! kill -0 $each 2>/dev/null"; then kill -9 "$each" 2>/dev/null || true; fi
  done
  rm -f "$PIDFILE"
  say "stopped"
}

do_status() {
  installed || { say "not installed"; return 3; }
  if alive "$PIDFILE" && accepts; then say "running on 127.0.0.1:$PORT"; return 0; fi
  say "not running"; return 3
}

do_env() {
  cat <<EOF
export HEBI_SSHD_PORT=$PORT HEBI_SSHD_IDENTITY=$DIR/client_ed25519 HEBI_SSHD_KNOWN_HOSTS=$DIR/known_hosts HEBI_SSHD_LOG=$DIR/sshd.log
EOF
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  env) do_env ;;
  *) echo "usage: $0 install|start|stop|restart|status|env" >&2; exit 2 ;;
esac
