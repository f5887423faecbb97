# killer.sh PID MODE: kill the dask worker processes below PID (this attack's own process tree).
# MODE repeat: every 2 s for 40 s, kill every worker found; MODE start: for 15 s, kill each worker as soon as it appears.
root=$1; mode=$2
workers() { for p in $(pgrep -P $root); do
    cmd=$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null); case "$cmd" in *resource_tracker*) ;; *multiprocessing*|*spawn*|*forkserver*) echo $p;; esac; done; }
n=0
if [ "$mode" = repeat ]; then
  # once the cluster runs (the progress bar is out), plus a little
  for i in $(seq ${WAIT_STEPS:-300}); do { if [ -n "$READY_PATH" ]; then [ -e "$READY_PATH" ]; else grep -q "${READY:-frame}" "$ERRFILE" 2>/dev/null; fi; } && break; sleep 0.2; done; sleep ${KILL_AFTER:-1}
  for i in $(seq 20); do for p in $(workers); do kill -9 $p && n=$((n+1)); done; sleep 2; done
elif [ "$mode" = few ]; then
  for i in $(seq ${WAIT_STEPS:-300}); do { if [ -n "$READY_PATH" ]; then [ -e "$READY_PATH" ]; else grep -q "${READY:-frame}" "$ERRFILE" 2>/dev/null; fi; } && break; sleep 0.2; done
  for i in 1 2 3; do sleep ${GAP:-8}; for p in $(workers); do kill -9 $p && n=$((n+1)); done; done
else
  end=$((SECONDS+${START_WINDOW:-15}))
  while [ $SECONDS -lt $end ]; do for p in $(workers); do kill -9 $p 2>/dev/null && n=$((n+1)); done; sleep 0.05; done
fi
echo "killer: $n worker kills" >&2
