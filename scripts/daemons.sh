# Shell helpers for the scripts that start and stop real daemons (gridengine.sh, slurm.sh); sourced.

# wait_for SECONDS COMMAND...: run COMMAND every 0.1 s until it succeeds; fail after SECONDS
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# alive PIDFILE: the process named by PIDFILE runs
alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
