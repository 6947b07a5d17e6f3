#!/usr/bin/env bash
# Real Slurm (Debian's slurm-wlm 22.05) on this one machine, for hebi's tests, benchmark and demo:
# munge + MariaDB + slurmdbd (so that `sacct` knows finished jobs) + slurmctld + slurmd, one node with a
# `preview` partition (short MaxTime) and a `full` partition, and on demand slurmrestd (Slurm's REST API)
# with JWT authentication. Recipe and traps: docs/jobs.md.
#
# Usage: scripts/slurm.sh install|start|stop|status|start-restd|stop-restd|status-restd|token USER [SECONDS]
#   install      apt packages (root; idempotent)
#   start        writes /etc/slurm/{slurm,slurmdbd}.conf when they are not hebi's, starts every daemon,
#                waits (bounded) until the node is idle; idempotent
#   stop         every daemon it started (slurmrestd too), waiting until each is gone
#   status       exit 0 when slurmctld answers and the node is up (and says whether slurmrestd listens)
#   start-restd  slurmrestd on 127.0.0.1:HEBI_SLURMRESTD_PORT as the unprivileged user slurmrestd (it
#                refuses to run as root or as SlurmUser), JWT only; needs `start` first; idempotent
#   stop-restd   slurmrestd alone; status-restd: exit 0 when it listens
#   token        prints a JWT for USER valid SECONDS (default 3600), as `scontrol token` makes it
# Settings (environment): HEBI_SLURM_PREVIEW_MAXTIME (minutes, default 10), HEBI_SLURMRESTD_PORT (6820).
set -euo pipefail

PREVIEW_MAXTIME=${HEBI_SLURM_PREVIEW_MAXTIME:-10}
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARKER="# written by hebi scripts/slurm.sh"
RESTD_PORT=${HEBI_SLURMRESTD_PORT:-6820}
RESTD_USER=slurmrestd
RESTD_PID=/run/slurmrestd.pid
# HS256 key that slurmctld and slurmdbd check tokens with (scontrol token signs with it)
JWT_KEY=/var/lib/slurm/jwt_hs256.key
CLUSTER=hebi
say() { printf 'slurm: %s\n' "$*"; }
die() { printf 'slurm: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/daemons.sh"   # wait_for, alive
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (Slurm's daemons run as root and as slurm)"; }
installed() { [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/slurmdbd ] && [ -x /usr/sbin/munged ] && [ -x /usr/sbin/mariadbd ] && [ -x /usr/sbin/slurmrestd ] && jwt_plugin; }
jwt_plugin() { compgen -G '/usr/lib/*/slurm-wlm/auth_jwt.so' >/dev/null; }

do_install() {
  if installed; then return 0; fi
  need_root "installing Slurm"
  export DEBIAN_FRONTEND=noninteractive
  say "installing slurm-wlm slurmdbd munge mariadb-server slurmrestd slurm-wlm-jwt-plugin"
  apt-get update -q >/dev/null || true
  apt-get install -y -q slurm-wlm slurmdbd munge mariadb-server slurmrestd slurm-wlm-jwt-plugin >/dev/null
}

write_configs() {
  local node cpus mem
  node=$(hostname -s); cpus=$(nproc)
  mem=$(awk '/MemTotal/{printf "%d", $2/1024*0.9}' /proc/meminfo)
  local want; want=$(cat <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# JWT beside munge, for slurmrestd (there is no auth/none)
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerParameters=batch_sched_delay=0
# a time limit above the partition's MaxTime is refused at submission instead of pending forever
EnforcePartLimits=ALL
MinJobAge=300
KillWait=5
InactiveLimit=0
MaxJobCount=20000
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=preview Nodes=$node MaxTime=$PREVIEW_MAXTIME Default=YES State=UP
PartitionName=full Nodes=$node MaxTime=INFINITE State=UP
EOF
)
  mkdir -p /etc/slurm
  if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
    if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then cp "$CONF" "$CONF.before-hebi"; fi
    printf '%s\n' "$want" > "$CONF"
    CONF_CHANGED=1
  fi
  local dbd; dbd=$(cat <<EOF
$MARKER
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWT_KEY
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=hebi-test-only
StorageLoc=slurm_acct_db
EOF
)
  if [ ! -f "$DBD_CONF" ] || [ "$(cat "$DBD_CONF")" != "$dbd" ]; then
    printf '%s\n' "$dbd" > "$DBD_CONF"
    DBD_CHANGED=1
  fi
  chown slurm:slurm "$DBD_CONF"; chmod 600 "$DBD_CONF"
}

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

do_start() {
  installed || die "not installed: run scripts/slurm.sh install (as root)"
  need_root "starting Slurm"
  CONF_CHANGED=0 DBD_CHANGED=0
  write_configs
  mkdir -p /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm /run/munge /run/mysqld
  chown slurm:slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  chown munge:munge /run/munge; chown mysql:mysql /run/mysqld
  if [ ! -s "$JWT_KEY" ]; then
    (umask 077; head -c 32 /dev/urandom > "$JWT_KEY")
  fi
  chown slurm:slurm "$JWT_KEY"; chmod 600 "$JWT_KEY"

  alive /run/munge/munged.pid || su -s /bin/sh munge -c '/usr/sbin/munged --pid-file=/run/munge/munged.pid'
  wait_for 20 munge -n || die "munged did not start"

  if ! alive /run/mysqld/mysqld.pid; then
    (/usr/sbin/mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
       --pid-file=/run/mysqld/mysqld.pid >/var/log/slurm/mariadb.log 2>&1 &)
  fi
  wait_for 30 mariadb -e 'select 1' || die "MariaDB did not start (see /var/log/slurm/mariadb.log)"
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'hebi-test-only';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

  # A changed slurmdbd.conf (e.g. JWT added) takes a restart: slurmdbd has no reconfigure for its auth.
  if alive /run/slurmdbd.pid && [ "$DBD_CHANGED" = 1 ]; then stop_pid /run/slurmdbd.pid; fi
  alive /run/slurmdbd.pid || /usr/sbin/slurmdbd
  # The first start creates the schema (about 10 s).
  wait_for 60 sacctmgr -n list cluster || die "slurmdbd did not answer within 60 s (see /var/log/slurm/slurmdbd.log)"
  sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null

  # `scontrol reconfigure` does not load authentication plugins (AuthAltTypes), so a changed slurm.conf
  # restarts the controller (running jobs carry on) and then tells slurmd to read the file again.
  local restarted=0
  if alive /run/slurmctld.pid && [ "$CONF_CHANGED" = 1 ]; then stop_pid /run/slurmctld.pid; restarted=1; fi
  alive /run/slurmctld.pid || /usr/sbin/slurmctld
  wait_for 30 scontrol ping || die "slurmctld did not answer within 30 s (see /var/log/slurm/slurmctld.log)"
  if [ "$restarted" = 1 ] && alive /run/slurmd.pid; then scontrol reconfigure >/dev/null 2>&1 || true; fi
  alive /run/slurmd.pid || /usr/sbin/slurmd
  if ! wait_for 30 node_idle; then
    scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
    wait_for 15 node_idle || die "the node did not become idle (see /var/log/slurm/slurmd.log)"
  fi
  say "running (partitions preview MaxTime=${PREVIEW_MAXTIME}min and full)"
}

stop_pid() {  # stop_pid PIDFILE: TERM, wait up to 30 s, then KILL
  local file=$1 pid
  alive "$file" || return 0
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for 30 sh -c "! kill -0 $pid"; then kill -9 "$pid" 2>/dev/null || true; fi
}

do_stop() {
  installed || return 0
  need_root "stopping Slurm"
  stop_pid "$RESTD_PID"
  stop_pid /run/slurmd.pid
  stop_pid /run/slurmctld.pid
  stop_pid /run/slurmdbd.pid
  stop_pid /run/mysqld/mysqld.pid
  stop_pid /run/munge/munged.pid
  say "stopped"
}

# Only the controller: jobs keep running on the node, as when a real cluster's controller has a blip.
do_stop_controller() {
  need_root "stopping slurmctld"
  stop_pid /run/slurmctld.pid
  say "slurmctld stopped"
}

do_status() {
  installed || { say "not installed"; return 3; }
  if alive /run/slurmctld.pid && scontrol ping >/dev/null 2>&1 && node_idle; then
    sinfo 2>/dev/null || true
    if restd_listens; then say "slurmrestd listens on 127.0.0.1:$RESTD_PORT"; else say "slurmrestd is not running"; fi
    return 0
  fi
  say "not running"; return 3
}

# -- slurmrestd -------------------------------------------------------------------------------------

restd_listens() { alive "$RESTD_PID" && (exec 3<>"/dev/tcp/127.0.0.1/$RESTD_PORT") 2>/dev/null; }

do_start_restd() {
  installed || die "not installed: run scripts/slurm.sh install (as root)"
  need_root "starting slurmrestd"
  scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer: run scripts/slurm.sh start first"
  if restd_listens; then return 0; fi
  getent passwd "$RESTD_USER" >/dev/null ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RESTD_USER"
  # slurmrestd refuses root and SlurmUser. setsid (in a session of its own, like the daemons that fork)
  # and setpriv both exec without forking, so $! is slurmrestd itself.
  # SLURM_JWT=daemon: it authenticates each request with the client's token, never with munge.
  setsid setpriv --reuid="$RESTD_USER" --regid="$RESTD_USER" --init-groups \
    env SLURM_JWT=daemon /usr/sbin/slurmrestd -a rest_auth/jwt -s openapi/v0.0.38,openapi/dbv0.0.38 \
    "127.0.0.1:$RESTD_PORT" </dev/null >>/var/log/slurm/slurmrestd.log 2>&1 &
  echo $! > "$RESTD_PID"
  wait_for 15 restd_listens || die "slurmrestd did not listen on 127.0.0.1:$RESTD_PORT (see /var/log/slurm/slurmrestd.log)"
  say "slurmrestd listens on 127.0.0.1:$RESTD_PORT (as $RESTD_USER)"
}

do_stop_restd() {
  need_root "stopping slurmrestd"
  stop_pid "$RESTD_PID"
  rm -f "$RESTD_PID"
  say "slurmrestd stopped"
}

do_token() {  # do_token USER [SECONDS]: the bare token, for a token file
  local user=${1:-} lifespan=${2:-3600} line
  [ -n "$user" ] || die "usage: $0 token USER [SECONDS]"
  need_root "making a token"
  line=$(scontrol token username="$user" lifespan="$lifespan") || die "scontrol token failed: $line"
  printf '%s\n' "${line#SLURM_JWT=}"
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  stop-controller) do_stop_controller ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  start-restd) do_start_restd ;;
  stop-restd) do_stop_restd ;;
  status-restd) restd_listens ;;
  token) shift; do_token "$@" ;;
  *) echo "usage: $0 install|start|stop|stop-controller|restart|status|start-restd|stop-restd|status-restd|token USER [SECONDS]" >&2; exit 2 ;;
esac
