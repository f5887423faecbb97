# attack.sh NAME MODE -- command...: run the command under timeout 60 with /usr/bin/time, the killer on its tree.
name=$1; mode=$2; shift 3
echo "== $name ($mode) $(date -u +%H:%M:%S) load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "\$ $*"
/usr/bin/time -f "time: wall %e s, CPU %U+%S s, rc %x" timeout 60 "$@" > $name.out 2> $name.err &
tpid=$!
sleep 0.5
# the python below timeout below time
py=$(pgrep -P $(pgrep -P $tpid | head -1) | head -1)
[ "$mode" != none ] && ERRFILE=$name.err bash /tmp/attack17/killer.sh $py $mode 2> $name.kill &
wait $tpid
sleep 1
echo "-- stdout:"; cat $name.out; echo "-- stderr:"; cat $name.err | cut -c1-400
cat $name.kill 2>/dev/null; echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
