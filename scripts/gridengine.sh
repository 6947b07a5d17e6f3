#!/usr/bin/env bash
# Real Son of Grid Engine (Debian's gridengine 8.1.9) + DRMAA 1.0 on this one machine, for hebi's tests,
# benchmark and demo: a `preview.q` with a short h_rt and a `full.q` with the `smp` parallel environment.
# Recipe and traps: see docs/jobs.md ("GridEngine on one machine").
#
# Usage: scripts/gridengine.sh install|start|stop|status|env
#   install  apt packages (root; idempotent)
#   start    qmaster + execd + queues, tuned for 1 s scheduling; idempotent, every wait bounded
#   stop     execd (killing its jobs) and qmaster; waits until both are gone
#   stop-master  only the qmaster (jobs go on running; `start` brings it back)
#   status   exit 0 when the qmaster answers and the queues exist
#   env      the environment a process using DRMAA needs, as `export` lines
# Settings (environment): HEBI_SGE_PREVIEW_H_RT (preview.q h_rt, default 00:10:00), HEBI_SGE_SLOTS (2).
set -euo pipefail

export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}
COMMON=$SGE_ROOT/$SGE_CELL/common
QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
EXECD_PID=/var/spool/gridengine/execd/localhost/execd.pid
DRMAA_LIB=/usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0
PREVIEW_H_RT=${HEBI_SGE_PREVIEW_H_RT:-00:10:00}
SLOTS=${HEBI_SGE_SLOTS:-2}
say() { printf 'gridengine: %s\n' "$*"; }
die() { printf 'gridengine: %s\n' "$*" >&2; exit 1; }

. "$(dirname "$0")/daemons.sh"   # wait_for, alive
need_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (GridEngine's daemons run as sgeadmin, started by root)"; }

installed() { command -v qconf >/dev/null 2>&1 && [ -x /usr/sbin/sge_qmaster ] && [ -x /usr/sbin/sge_execd ] && [ -f "$DRMAA_LIB" ]; }

do_install() {
  if installed; then return 0; fi
  need_root "installing GridEngine"
  export DEBIAN_FRONTEND=noninteractive
  debconf-set-selections <<'EOF'
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginemaster string localhost
EOF
  say "installing gridengine-master gridengine-exec gridengine-client gridengine-drmaa1.0"
  apt-get update -q >/dev/null || true
  apt-get install -y -q gridengine-master gridengine-exec gridengine-client gridengine-drmaa1.0 libjemalloc2 >/dev/null
}

# A `qconf` edit through $EDITOR: the only way to change some objects without a full template file.
edit_with() {  # edit_with SED_SCRIPT qconf-args...
  local script=$1; shift
  local editor; editor=$(mktemp); printf '#!/bin/sh\nsed -i %s "$1"\n' "$script" > "$editor"; chmod +x "$editor"
  EDITOR=$editor "$@" >/dev/null; local rc=$?; rm -f "$editor"; return $rc
}

queues_reporting() {
  local states
  states=$(qstat -f -q preview.q,full.q 2>/dev/null | awk '/^(preview|full)\.q@/{print ($6 == "" ? "ok" : $6)}')
  [ -n "$states" ] && ! grep -q u <<<"$states"
}

do_start() {
  installed || die "not installed: run scripts/gridengine.sh install (as root)"
  need_root "starting GridEngine"
  # qmaster sees a loopback peer as 'localhost' while clients call themselves `hostname`: alias them all.
  { echo localhost; hostname; awk '$1=="127.0.0.1"{for(i=2;i<=NF;i++)print $i}' /etc/hosts; } \
    | awk '!s[$0]++' | tr '\n' ' ' > "$COMMON/host_aliases"
  echo localhost > "$COMMON/act_qmaster"
  chown sgeadmin:sgeadmin "$COMMON/host_aliases" "$COMMON/act_qmaster"
  mkdir -p /var/run/gridengine && chown sgeadmin:sgeadmin /var/run/gridengine

  if ! alive "$QMASTER_PID"; then
    /usr/sbin/sge_qmaster
  fi
  wait_for 60 qstat -f || die "the qmaster did not answer within 60 s (see /var/spool/gridengine/qmaster/messages)"
  qconf -sh 2>/dev/null | grep -qx localhost || qconf -ah localhost >/dev/null
  qconf -ss 2>/dev/null | grep -qx localhost || qconf -as localhost >/dev/null

  # Global config BEFORE the execd starts: root may submit (tests run as root; a later change leaves the
  # first job failing and full.q in E state), and accounting is flushed at once (finished jobs are
  # looked up there the moment they leave qstat).
  local tmp; tmp=$(mktemp -d)
  # (qconf folds long values over lines ending in a backslash: join them before editing)
  qconf -sconf global | awk '{ if (sub(/\\$/, "")) { printf "%s", $0 } else print }' | sed -e 's/  */ /g' > "$tmp/current"
  grep -v '^flush_time=' "$tmp/current" > "$tmp/global" || true
  sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
    -e 's/^reporting_params .*/reporting_params accounting=true reporting=false flush_time=00:00:15 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00/' \
    "$tmp/global"
  if ! cmp -s "$tmp/current" "$tmp/global"; then qconf -Mconf "$tmp/global" >/dev/null; fi
  qconf -ssconf > "$tmp/sched"
  sed -i -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' "$tmp/sched"
  if ! qconf -ssconf | cmp -s - "$tmp/sched"; then qconf -Msconf "$tmp/sched" >/dev/null; fi

  if ! alive "$EXECD_PID"; then
    /usr/sbin/sge_execd
  fi
  wait_for 60 sh -c 'qconf -sel | grep -qx localhost' || die "the execd did not register within 60 s"

  if ! qconf -shgrpl 2>/dev/null | grep -qx @allhosts; then
    printf 'group_name @allhosts\nhostlist localhost\n' > "$tmp/hgrp"; qconf -Ahgrp "$tmp/hgrp" >/dev/null
  fi
  if ! qconf -spl 2>/dev/null | grep -qx smp; then
    printf 'pe_name smp\nslots 8\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args /bin/true\nstop_proc_args /bin/true\nallocation_rule $pe_slots\ncontrol_slaves FALSE\njob_is_first_task TRUE\nurgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n' > "$tmp/pe"
    qconf -Ap "$tmp/pe" >/dev/null
  fi
  # `qconf -Aq` with a partial file fails and the built-in template names a missing PE: edit the template.
  local queues; queues=$(qconf -sql 2>/dev/null || true)
  if ! grep -qx preview.q <<<"$queues"; then
    edit_with "-e 's/^hostlist .*/hostlist @allhosts/' -e 's/^pe_list .*/pe_list NONE/' -e 's/^slots .*/slots $SLOTS/' -e 's|^shell .*|shell /bin/bash|' -e 's/^h_rt .*/h_rt $PREVIEW_H_RT/'" qconf -aq preview.q
  fi
  if ! grep -qx full.q <<<"$queues"; then
    edit_with "-e 's/^hostlist .*/hostlist @allhosts/' -e 's/^pe_list .*/pe_list smp/' -e 's/^slots .*/slots $SLOTS/' -e 's|^shell .*|shell /bin/bash|' -e 's/^h_rt .*/h_rt INFINITY/'" qconf -aq full.q
  fi
  # A busy machine (load above np_load_avg 1.75) would put the queues in alarm state and stop all
  # scheduling: jobs here are limited by slots, not by load.
  for queue in preview.q full.q; do
    if [ "$(qconf -sq $queue | awk '$1=="load_thresholds"{print $2}')" != NONE ]; then
      qconf -rattr queue load_thresholds NONE $queue >/dev/null
    fi
  done
  if [ "$(qconf -sq preview.q | awk '$1=="h_rt"{print $2}')" != "$PREVIEW_H_RT" ]; then
    qconf -mattr queue h_rt "$PREVIEW_H_RT" preview.q >/dev/null
  fi
  rm -rf "$tmp"
  qmod -c preview.q full.q >/dev/null 2>&1 || true   # clear an error state left by an earlier run
  wait_for 30 sh -c 'qstat -f -q full.q | grep -q "^full.q@" && qstat -f -q preview.q | grep -q "^preview.q@"' \
    || die "the queues did not appear within 30 s"
  # After a qmaster restart the running execd takes ~15 s to register again (the queues show state 'u'
  # until then); a job ending in that window can be left 'r' for ever, so be usable before returning.
  wait_for 90 queues_reporting || die "the execd did not report to the qmaster within 90 s"
  say "running (preview.q h_rt $PREVIEW_H_RT, full.q, $SLOTS slots each)"
}

do_stop() {
  installed || return 0
  alive "$QMASTER_PID" || alive "$EXECD_PID" || { say "not running"; return 0; }
  need_root "stopping GridEngine"
  local qm="" ex=""
  alive "$QMASTER_PID" && qm=$(cat "$QMASTER_PID")
  alive "$EXECD_PID" && ex=$(cat "$EXECD_PID")
  # -kej: stop the execd AND kill its jobs (plain -ke leaves them running with nobody to report them).
  if [ -n "$ex" ]; then qconf -kej localhost >/dev/null 2>&1 || kill "$ex" 2>/dev/null || true; fi
  if [ -n "$qm" ]; then qconf -km >/dev/null 2>&1 || kill "$qm" 2>/dev/null || true; fi
  for pid in $ex $qm; do
    if ! wait_for 30 sh -c "! kill -0 $pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  say "stopped"
}

# Only the qmaster: jobs keep running under the execd, as when a real cluster's master has a blip.
do_stop_master() {
  alive "$QMASTER_PID" || { say "qmaster not running"; return 0; }
  need_root "stopping the qmaster"
  local qm; qm=$(cat "$QMASTER_PID")
  qconf -km >/dev/null 2>&1 || kill "$qm" 2>/dev/null || true
  if ! wait_for 30 sh -c "! kill -0 $qm"; then kill -9 "$qm" 2>/dev/null || true; fi
  say "qmaster stopped"
}

do_status() {
  installed || { say "not installed"; return 3; }
  if alive "$QMASTER_PID" && qstat -f >/dev/null 2>&1 && qconf -sql 2>/dev/null | grep -qx full.q; then
    qstat -g c 2>/dev/null || true
    return 0
  fi
  say "not running"; return 3
}

do_env() {
  cat <<EOF
export SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL
export DRMAA_LIBRARY_PATH=$DRMAA_LIB
export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384
EOF
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  stop-master) do_stop_master ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  env) do_env ;;
  *) echo "usage: $0 install|start|stop|stop-master|restart|status|env" >&2; exit 2 ;;
esac
