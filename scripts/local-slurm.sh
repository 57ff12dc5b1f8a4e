#!/usr/bin/env bash
# scripts/local-slurm.sh - a real single-node SLURM cluster on this machine, so
# that kdgat's chained pipelines can be submitted without access to a cluster.
# Used by people trying kdgat out and by CI (.ci/run: `start` before the tests,
# `stop` after). Debian 12 (Slurm 22.05), run as root, no systemd needed: every
# daemon is started directly and tracked by its pid file.
#
# Usage:  scripts/local-slurm.sh start    install missing packages, write the
#                                         config, start munged, mariadb,
#                                         slurmdbd, slurmctld and slurmd, wait
#                                         until the node is idle. Running it
#                                         again only reports the running cluster.
#         scripts/local-slurm.sh stop     cancel every job, stop the daemons this
#                                         script started, nothing else.
#         scripts/local-slurm.sh status   which daemons run, sinfo, squeue
#                                         (exit 0 when the cluster is up, 3 when not)
#         scripts/local-slurm.sh restart-ctld [DOWN_S]
#                                         stop slurmctld (SIGTERM: it saves its
#                                         state), leave it down DOWN_S seconds
#                                         (default 0), start it again; jobs are
#                                         kept. For fault tests (bench/reliability.py).
#         scripts/local-slurm.sh restart-slurmd [DOWN_S]
#                                         kill slurmd with SIGKILL (a crash: running
#                                         jobs' slurmstepd live on), leave it down
#                                         DOWN_S seconds, start it again.
#
# The node looks like one GPU node of a real cluster, bigger than this machine
# (SlurmdParameters=config_overrides): jobs asking for 16 CPUs, 128G and a GPU
# are accepted and run, sharing the real CPUs and memory. Nothing is isolated:
# no cgroups (proctrack/linuxproc, task/none); memory over --mem is killed by
# polling (jobacct_gather/linux + OverMemoryKill, every 5 s); the GPUs are
# character devices cloned from /dev/null, which only gives jobs a
# CUDA_VISIBLE_DEVICES. Accounting goes through slurmdbd, so `sacct` works.
#
# Environment (all optional):
#   KDGAT_SLURM_STATE        state directory (default /var/lib/kdgat-slurm; the
#                            mysql user must be able to reach it, so not under /root)
#   KDGAT_SLURM_CPUS         CPUs the node declares (default 48)
#   KDGAT_SLURM_MEM_MB       memory it declares, MB (default 196608 = 192G)
#   KDGAT_SLURM_GPUS         fake GPUs, gres gpu:N (default 2; 0 = no GRES)
#   KDGAT_SLURM_PARTITIONS   partition names, the first is the default (default "main")
#   KDGAT_SLURM_MAX_TIME     partition MaxTime (default 7-00:00:00)
#   KDGAT_SLURM_CRED_EXPIRE  AuthInfo cred_expire, seconds, >= 5 (default 30)
#   KDGAT_SLURM_DB_PORT      loopback port of the private mariadb (default 6829)
#   KDGAT_SLURM_WAIT         seconds to wait for each daemon / the idle node (default 60)
#
# Where things go, and why /etc/slurm is not ours:
#   Everything lives under the state directory: etc/ (slurm.conf, gres.conf,
#   slurmdbd.conf), ctld/ and spool/ (Slurm state: job ids carry on across
#   restarts), mysql/ (a private mariadb datadir, served on 127.0.0.1 only, so
#   a system mariadb and /var/lib/mysql are never touched), log/, run/ (pid
#   files and the fake GPU device files). The daemons get SLURM_CONF pointing
#   at etc/slurm.conf. Client commands (sbatch, sinfo, sacct) read
#   /etc/slurm/slurm.conf unless SLURM_CONF is set, so while the cluster runs
#   that path is a symlink to our config - but only when nothing is there: a
#   slurm.conf this script did not write is left alone, the cluster still
#   starts, and `start` says to `export SLURM_CONF=<state>/etc/slurm.conf`.
#   `stop` removes the symlink again. A Slurm or database port that something
#   else already listens on makes `start` refuse instead of fighting over it.
#   munged is the machine's one: used if it answers, started (and later
#   stopped) by this script if it does not.
#
# Choices in the generated slurm.conf (see write_config):
#   EnforcePartLimits=ALL    requests the node can never satisfy (gpu:3, 400G,
#                            a --time over MaxTime) fail at submit, not pend forever
#   DefMemPerCPU=MEM/CPUS    4096 MB by default; without it a job that gives no
#                            --mem claims the whole node and jobs run one by one
#   batch_sched_delay=0      about 1 s between chained stages instead of about 3 s
#   sched_interval=2         the periodic scheduling pass every 2 s, not 60 s: a
#                            requeued job starts when cred_expire has passed
#                            (measured 31 s), not at the next pass (57 s)
#   MinJobAge=300            finished jobs stay in squeue/scontrol for 5 minutes
#   cred_expire=30           a requeued job may start again after 30 s instead
#                            of 120 s (Slurm ignores values under 5 and uses 120)
#   KillWait=10              SIGTERM -> SIGKILL grace at the time limit / scancel
#   MaxArraySize=1001        Slurm's default, written out
#   KillOnBadExit            not set: it only concerns srun steps, not batch jobs
#
# Reset everything (job ids, accounting history): stop, then rm -rf the state
# directory. The packages stay installed.
set -euo pipefail

STATE=$(realpath -m "${KDGAT_SLURM_STATE:-/var/lib/kdgat-slurm}")
CPUS=${KDGAT_SLURM_CPUS:-48}
MEM_MB=${KDGAT_SLURM_MEM_MB:-196608}
GPUS=${KDGAT_SLURM_GPUS:-2}
PARTITIONS=${KDGAT_SLURM_PARTITIONS:-main}
MAX_TIME=${KDGAT_SLURM_MAX_TIME:-7-00:00:00}
CRED_EXPIRE=${KDGAT_SLURM_CRED_EXPIRE:-30}
DB_PORT=${KDGAT_SLURM_DB_PORT:-6829}
WAIT_S=${KDGAT_SLURM_WAIT:-60}

CLUSTER=kdgat
PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
CTLD_PORT=6817 SLURMD_PORT=6818 DBD_PORT=6819   # Slurm's defaults
ETC=$STATE/etc RUN=$STATE/run LOG=$STATE/log DB_DIR=$STATE/mysql
DB_SOCK=$RUN/mysql/mysqld.sock
DB_PID=$RUN/mariadbd.pid   # from $! (mariadbd's own pid file comes later, in run/mysql/)
SYS_CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)
export SLURM_CONF=$ETC/slurm.conf

say() { printf 'local-slurm: %s\n' "$*"; }
# fail REASON: the one-line reason, last. A failed start first stops what it
# started, so that CI and users are not left with half a cluster.
CLEANUP_ON_FAIL=0
fail() {
  if [ $CLEANUP_ON_FAIL -eq 1 ]; then
    CLEANUP_ON_FAIL=0
    say "start failed: stopping the daemons (logs are kept in $LOG)"
    cmd_stop >/dev/null 2>&1 || true
  fi
  printf 'local-slurm: error: %s\n' "$*" >&2
  trap - EXIT
  exit 1
}

# Tail of each daemon's log, then the one-line reason.
fail_with_logs() {
  local f
  for f in "$LOG"/slurmctld.log "$LOG"/slurmd.log "$LOG"/slurmdbd.log "$LOG"/mariadb.log /var/log/munge/munged.log; do
    [ -s "$f" ] || continue
    printf -- '--- last lines of %s\n' "$f" >&2
    tail -n 8 "$f" >&2
  done
  fail "$*"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
is_uint "$CPUS" && [ "$CPUS" -gt 0 ] || fail "KDGAT_SLURM_CPUS must be a positive integer, not '$CPUS'"
is_uint "$MEM_MB" && [ "$MEM_MB" -ge "$CPUS" ] || fail "KDGAT_SLURM_MEM_MB must be an integer >= the CPU count, not '$MEM_MB'"
is_uint "$GPUS" || fail "KDGAT_SLURM_GPUS must be an integer, not '$GPUS'"
is_uint "$CRED_EXPIRE" && [ "$CRED_EXPIRE" -ge 5 ] || fail "KDGAT_SLURM_CRED_EXPIRE must be >= 5 (Slurm ignores less), not '$CRED_EXPIRE'"
is_uint "$DB_PORT" || fail "KDGAT_SLURM_DB_PORT must be a port number, not '$DB_PORT'"
is_uint "$WAIT_S" || fail "KDGAT_SLURM_WAIT must be a number of seconds, not '$WAIT_S'"
[ -n "$PARTITIONS" ] || fail "KDGAT_SLURM_PARTITIONS is empty"
[[ $MAX_TIME =~ ^(INFINITE|UNLIMITED|[0-9]+|[0-9]+-[0-9]+(:[0-9]+){0,2}|[0-9]+(:[0-9]+){1,2})$ ]] \
  || fail "KDGAT_SLURM_MAX_TIME must be a Slurm time (minutes, D-HH[:MM[:SS]], HH:MM:SS or INFINITE), not '$MAX_TIME'"
for _p in $PARTITIONS; do
  [[ $_p =~ ^[A-Za-z0-9_.-]+$ ]] || fail "KDGAT_SLURM_PARTITIONS: '$_p' is not a partition name"
done

# ---------------------------------------------------------------- processes --

# alive NAME PIDFILE: print the pid if PIDFILE names a live process called NAME
# (the name check guards against a stale pid file whose pid was reused).
alive() {
  local pid
  [ -s "$2" ] || return 1
  pid=$(tr -dc 0-9 <"$2")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && running "$pid" || return 1
  echo "$pid"
}

# running PID: the process exists and is not a zombie (PID 1 of a container
# may take seconds to reap the daemons it inherited)
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# gone PID SECONDS: wait up to SECONDS for PID to exit
gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    running "$1" || return 0
    sleep 0.1
  done
  ! running "$1"
}

# halt NAME PIDFILE: TERM, then KILL after 20 s
halt() {
  local pid
  if pid=$(alive "$1" "$2"); then
    say "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    gone "$pid" 20 || { say "$1 still there after 20 s, killing it"; kill -KILL "$pid" 2>/dev/null || true; gone "$pid" 5 || true; }
  fi
  rm -f "$2"
}

# until_true SECONDS CMD...: retry CMD every 0.2 s until it succeeds (at least once)
until_true() {
  local secs=$1 i
  shift
  for ((i = 0; ; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    ((i < secs * 5)) || return 1
    sleep 0.2
  done
}

port_busy() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Before anything starts: each port a daemon of ours will listen on must be
# free unless that daemon already runs.
check_ports() {
  local name pidfile port
  while read -r name pidfile port; do
    alive "$name" "$pidfile" >/dev/null && continue
    port_busy "$port" && fail "port $port (for $name) is in use by a process this script did not start; stop it, or for the database set KDGAT_SLURM_DB_PORT"
  done <<EOF
mariadbd $DB_PID $DB_PORT
slurmdbd $RUN/slurmdbd.pid $DBD_PORT
slurmctld $RUN/slurmctld.pid $CTLD_PORT
slurmd $RUN/slurmd.pid $SLURMD_PORT
EOF
  return 0
}

# ----------------------------------------------------------------- packages --

install_packages() {
  local p missing=()
  for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || fail "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  local updated=0
  if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
    say "apt-get update"
    apt-get update -q >"$LOG/apt.log" 2>&1 || { tail -n 5 "$LOG/apt.log" >&2; fail "apt-get update failed (see $LOG/apt.log)"; }
    updated=1
  fi
  # Without a policy-rc.d, the packages' maintainer scripts would start the
  # system's munge/mariadb/slurm services through their init scripts. This
  # script starts its own daemons, so keep apt from starting any, for the
  # duration of the install only.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\n# temporary, from kdgat scripts/local-slurm.sh\nexit 101\n' >$policy
    chmod 755 $policy
    own_policy=1
  fi
  local rc=0
  apt_install "${missing[@]}" || rc=$?
  if [ $rc -ne 0 ] && [ $updated -eq 0 ]; then
    say "install failed, retrying after apt-get update"
    apt-get update -q >>"$LOG/apt.log" 2>&1 && { rc=0; apt_install "${missing[@]}" || rc=$?; }
  fi
  [ $own_policy -eq 1 ] && rm -f $policy
  [ $rc -eq 0 ] || { tail -n 5 "$LOG/apt.log" >&2; fail "apt-get install ${missing[*]} failed (see $LOG/apt.log)"; }
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >>"$LOG/apt.log" 2>&1
}

# ------------------------------------------------------------------- config --

write_config() {  # write_config DIR: the three config files, into DIR
  local dir=$1 gres="" part first=1 default
  [ "$GPUS" -gt 0 ] && gres=" Gres=gpu:$GPUS"
  cat >"$dir/slurm.conf" <<EOF
# Written by kdgat scripts/local-slurm.sh for its single-node test cluster.
# Regenerated on every start; edit the script (or its KDGAT_SLURM_* variables).
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=$CRED_EXPIRE
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups: processes are tracked by parentage, memory limits by polling.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
JobAcctGatherParams=OverMemoryKill

# Scheduling: CPUs and memory are consumable, so jobs share the node.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((MEM_MB / CPUS))
EnforcePartLimits=ALL
MaxArraySize=1001
MinJobAge=300
KillWait=10
ReturnToService=2

# Accounting, so that sacct answers (and shows GPUs in AllocTRES).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
JobCompType=jobcomp/none
EOF
  if [ "$GPUS" -gt 0 ]; then
    printf 'GresTypes=gpu\nAccountingStorageTRES=gres/gpu\n' >>"$dir/slurm.conf"
  fi
  cat >>"$dir/slurm.conf" <<EOF

# The node declares more than the machine has; config_overrides makes slurmd
# accept that instead of draining the node.
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB$gres State=UNKNOWN
EOF
  for part in $PARTITIONS; do
    default=NO
    [ $first -eq 1 ] && default=YES
    first=0
    echo "PartitionName=$part Nodes=ALL Default=$default MaxTime=$MAX_TIME State=UP" >>"$dir/slurm.conf"
  done

  # Slurm 22.05 drops a GPU without File= and rejects regular files there, so
  # each fake GPU is a character device (a clone of /dev/null, see make_gpus).
  if [ "$GPUS" -gt 0 ]; then
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/gpu/nvidia[0-%d]\n' "$NODE" "$RUN" $((GPUS - 1)) >"$dir/gres.conf"
  else
    echo "# no GPUs" >"$dir/gres.conf"
  fi

  cat >"$dir/slurmdbd.conf" <<EOF
# Written by kdgat scripts/local-slurm.sh
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$(db_password)
EOF
  chmod 600 "$dir/slurmdbd.conf"
}

db_password() {  # made once per state directory; the database only listens on loopback
  local f=$STATE/db-password
  if [ ! -s "$f" ]; then
    (umask 077 && tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 >"$f")
  fi
  cat "$f"
}

# Point the clients' default config path at ours, if that path is free.
link_client_conf() {
  if [ -L $SYS_CONF ] && [ "$(readlink $SYS_CONF)" = "$ETC/slurm.conf" ]; then
    return 0
  elif [ -e $SYS_CONF ] || [ -L $SYS_CONF ]; then
    say "note: $SYS_CONF was not written by this script and is left alone;"
    say "      for sbatch/sinfo/sacct to reach this cluster: export SLURM_CONF=$ETC/slurm.conf"
  else
    mkdir -p /etc/slurm
    ln -s "$ETC/slurm.conf" $SYS_CONF
  fi
}

unlink_client_conf() {
  if [ -L $SYS_CONF ] && [ "$(readlink $SYS_CONF)" = "$ETC/slurm.conf" ]; then
    rm -f $SYS_CONF
  fi
}

make_gpus() {
  local i f
  [ "$GPUS" -gt 0 ] || return 0
  mkdir -p "$RUN/gpu"
  for ((i = 0; i < GPUS; i++)); do
    f=$RUN/gpu/nvidia$i
    [ -c "$f" ] && continue
    rm -f "$f"
    mknod -m 0666 "$f" c 1 3 || fail "cannot create the fake GPU device $f (mknod needs CAP_MKNOD); try KDGAT_SLURM_GPUS=0"
  done
}

# ------------------------------------------------------------------ daemons --

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  munge_works && return 0
  [ -s /etc/munge/munge.key ] || { say "creating the munge key"; runuser -u munge -- mungekey --create; }
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  alive munged /run/munge/munged.pid >/dev/null || rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged 9>&- || fail_with_logs "munged did not start"
  # Its pid file marks it as ours, for stop (and for the clean-up of a failed start).
  until_true 10 alive munged /run/munge/munged.pid && cp /run/munge/munged.pid "$RUN/munged.pid"
  until_true "$WAIT_S" munge_works || fail_with_logs "munged does not answer"
}

db_up() { mysqladmin --no-defaults --socket="$DB_SOCK" ping; }

start_mariadb() {
  if alive mariadbd "$DB_PID" >/dev/null && db_up >/dev/null 2>&1; then return 0; fi
  mkdir -p "$RUN/mysql"
  chown mysql:mysql "$RUN/mysql"
  if [ ! -d "$DB_DIR/mysql" ]; then
    say "creating the accounting database in $DB_DIR"
    rm -rf "$DB_DIR" && mkdir -p "$DB_DIR" && chown mysql:mysql "$DB_DIR" && chmod 700 "$DB_DIR"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" --skip-test-db \
      --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 \
      || { tail -n 8 "$LOG/mariadb-install.log" >&2; fail "mariadb-install-db failed (see $LOG/mariadb-install.log)"; }
  fi
  say "starting mariadbd (127.0.0.1:$DB_PORT)"
  # mariadbd stays in the foreground: detach it (setsid execs it, so $! is
  # mariadbd's pid) and record the pid at once.
  # The innodb values are the lowest that keep slurmdbd from logging "Database
  # settings not recommended values"; the buffer pool is only touched as used.
  setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" \
    --socket="$DB_SOCK" --pid-file="$RUN/mysql/mariadbd.pid" --port="$DB_PORT" \
    --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin --performance-schema=OFF \
    --innodb-buffer-pool-size=512M --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 \
    --max-allowed-packet=16M </dev/null >>"$LOG/mariadb.log" 2>&1 9>&- &
  echo $! >"$DB_PID"
  until_true "$WAIT_S" db_up || fail_with_logs "mariadb did not come up within ${WAIT_S}s"
  mysql --no-defaults --socket="$DB_SOCK" -u root <<EOF || fail_with_logs "cannot set up the slurm database user"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$(db_password)';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

dbd_up() { sacctmgr -n -P list cluster format=cluster; }

start_slurmdbd() {
  alive slurmdbd "$RUN/slurmdbd.pid" >/dev/null && return 0
  say "starting slurmdbd"
  /usr/sbin/slurmdbd 9>&- || fail_with_logs "slurmdbd did not start"
  if ! until_true "$WAIT_S" dbd_up; then
    local why
    why=$(dbd_up 2>&1 | grep -m1 -i error || true)
    fail_with_logs "slurmdbd does not answer within ${WAIT_S}s${why:+ ($why)}"
  fi
  if ! dbd_up 2>/dev/null | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || fail_with_logs "cannot register cluster $CLUSTER with slurmdbd"
  fi
}

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
  alive slurmctld "$RUN/slurmctld.pid" >/dev/null && return 0
  say "starting slurmctld"
  /usr/sbin/slurmctld 9>&- || fail_with_logs "slurmctld did not start"
  # It forks before it has read everything; a fatal error comes after exit 0.
  local i
  for ((i = 0; i < WAIT_S * 5; i++)); do
    ctld_up && return 0
    if ((i > 5)) && ! alive slurmctld "$RUN/slurmctld.pid" >/dev/null; then
      fail_with_logs "slurmctld exited during start-up"
    fi
    sleep 0.2
  done
  fail_with_logs "slurmctld does not answer within ${WAIT_S}s"
}

start_slurmd() {
  alive slurmd "$RUN/slurmd.pid" >/dev/null && return 0
  say "starting slurmd"
  /usr/sbin/slurmd 9>&- || fail_with_logs "slurmd did not start"
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n 1; }

wait_idle() {
  local start=$SECONDS state="" resumed=0
  while ((SECONDS - start < WAIT_S)); do
    alive slurmctld "$RUN/slurmctld.pid" >/dev/null || fail_with_logs "slurmctld is gone"
    if ((SECONDS - start > 2)) && ! alive slurmd "$RUN/slurmd.pid" >/dev/null; then
      fail_with_logs "slurmd is gone"
    fi
    state=$(node_state || true)
    case $state in
      idle | mixed | allocated) return 0 ;;
      *drain* | down* | *fail*)
        # e.g. left "not responding" by an unclean stop; once slurmd has
        # registered, resuming it is safe.
        if [ $resumed -eq 0 ] && ((SECONDS - start > 1)); then
          scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
          resumed=1
        fi
        ;;
    esac
    sleep 0.3
  done
  scontrol show node "$NODE" >&2 2>/dev/null || true
  fail_with_logs "node $NODE is '${state:-unknown}', not idle, after ${WAIT_S}s"
}

slurm_running() {
  alive slurmctld "$RUN/slurmctld.pid" >/dev/null && alive slurmd "$RUN/slurmd.pid" >/dev/null
}

all_running() {
  slurm_running && alive slurmdbd "$RUN/slurmdbd.pid" >/dev/null \
    && alive mariadbd "$DB_PID" >/dev/null && munge_works
}

# ---------------------------------------------------------------- commands --

cmd_start() {
  local t0=$SECONDS f slurm_same=1 dbd_same=1
  mkdir -p "$STATE" "$ETC" "$RUN" "$LOG" "$STATE/ctld" "$STATE/spool"
  chmod 755 "$STATE"
  CLEANUP_ON_FAIL=1
  trap 'start_exit $?' EXIT
  install_packages

  rm -rf "$ETC.new" && mkdir -p "$ETC.new"
  write_config "$ETC.new"
  for f in slurm.conf gres.conf; do cmp -s "$ETC.new/$f" "$ETC/$f" || slurm_same=0; done
  cmp -s "$ETC.new/slurmdbd.conf" "$ETC/slurmdbd.conf" || dbd_same=0
  if [ $slurm_same -eq 1 ] && [ $dbd_same -eq 1 ] && all_running; then
    rm -rf "$ETC.new"
    link_client_conf
    wait_idle
    CLEANUP_ON_FAIL=0
    trap - EXIT
    say "already running: node $NODE is $(node_state)"
    return 0
  fi
  if [ $slurm_same -eq 0 ] && { alive slurmctld "$RUN/slurmctld.pid" >/dev/null || alive slurmd "$RUN/slurmd.pid" >/dev/null; }; then
    say "configuration changed: restarting slurmctld and slurmd (jobs are kept)"
    stop_slurm keep-jobs
  fi
  if [ $dbd_same -eq 0 ] && alive slurmdbd "$RUN/slurmdbd.pid" >/dev/null; then
    say "database configuration changed: restarting slurmdbd and mariadbd"
    halt slurmdbd "$RUN/slurmdbd.pid"
    stop_mariadb
  fi
  mv -f "$ETC.new"/* "$ETC"/ && rmdir "$ETC.new"

  check_ports
  make_gpus
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurmctld
  start_slurmd
  link_client_conf
  wait_idle
  CLEANUP_ON_FAIL=0
  trap - EXIT
  say "ready in $((SECONDS - t0)) s: node $NODE ($CPUS CPUs, ${MEM_MB} MB, gpu:$GPUS) is $(node_state); partitions: $PARTITIONS"
}

start_exit() {  # EXIT trap of start: a command failed that fail() did not report
  [ "$1" -eq 0 ] || fail "start stopped unexpectedly (exit status $1); see $LOG"
}

stop_slurm() {  # stop_slurm [keep-jobs]
  local ctld slurmd jobs i
  ctld=$(alive slurmctld "$RUN/slurmctld.pid" || true)
  slurmd=$(alive slurmd "$RUN/slurmd.pid" || true)
  # Without munge no client command gets through: go straight to SIGTERM
  # (slurmctld saves its state on SIGTERM too).
  if [ -n "$ctld" ] && ! munge_works; then
    say "munge does not answer: stopping the slurm daemons by signal, jobs are not cancelled"
    ctld=""
  fi
  if [ -n "$ctld" ] && [ "${1:-}" != keep-jobs ]; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      say "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for ((i = 0; i < 150; i++)); do
        [ -z "$(squeue -h -t running,completing,configuring -o %A 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  if [ -n "$ctld" ]; then
    say "stopping slurmctld and slurmd"
    scontrol shutdown >/dev/null 2>&1 || true  # both daemons, state saved
    gone "$ctld" 20 || true
    [ -z "$slurmd" ] || gone "$slurmd" 20 || true
  fi
  halt slurmd "$RUN/slurmd.pid"
  halt slurmctld "$RUN/slurmctld.pid"
}

stop_mariadb() {
  local pid
  if pid=$(alive mariadbd "$DB_PID"); then
    say "stopping mariadbd (pid $pid)"
    mysqladmin --no-defaults --socket="$DB_SOCK" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    gone "$pid" 30 || { kill -KILL "$pid" 2>/dev/null || true; gone "$pid" 5 || true; }
  fi
  rm -f "$DB_PID"
}

cmd_stop() {
  if [ ! -d "$RUN" ]; then
    say "not running (no $RUN)"
    return 0
  fi
  command -v scontrol >/dev/null && stop_slurm
  halt slurmdbd "$RUN/slurmdbd.pid"
  stop_mariadb
  # munged only if this script started it
  if alive munged "$RUN/munged.pid" >/dev/null; then
    halt munged "$RUN/munged.pid"
    rm -f /run/munge/munged.pid
  fi
  rm -f "$RUN/munged.pid"
  rm -rf "$RUN/gpu"
  unlink_client_conf
  say "stopped"
}

cmd_status() {
  local up=0 pid name
  for name in munged mariadbd slurmdbd slurmctld slurmd; do
    if [ $name = munged ]; then
      if munge_works; then
        pid=$(alive munged /run/munge/munged.pid || echo "?")
        if alive munged "$RUN/munged.pid" >/dev/null; then echo "munged: running (pid $pid)"; else echo "munged: running (pid $pid, not started by this script)"; fi
      else
        echo "munged: not running"
      fi
    elif pid=$(alive $name "$RUN/$name.pid"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: not running"
    fi
  done
  if slurm_running && ctld_up; then
    up=1
    echo "SLURM_CONF=$SLURM_CONF"
    sinfo -N -o "%N %P %c %m %G %T" || true
    squeue || true
  fi
  [ $up -eq 1 ] && return 0 || return 3
}

# restart_daemon NAME SIGNAL DOWN_S: for fault tests, on a running cluster only; the node must answer again.
restart_daemon() {
  local name=$1 sig=$2 down=$3 pid
  is_uint "$down" || fail "restart-$name: DOWN_S must be a whole number of seconds, not '$down'"
  slurm_running && ctld_up || fail "the cluster is not running: $0 start"
  pid=$(alive "$name" "$RUN/$name.pid")
  say "sending $sig to $name (pid $pid), then starting it again in $down s"
  kill -"$sig" "$pid" 2>/dev/null || true
  gone "$pid" 20 || fail "$name (pid $pid) is still there 20 s after $sig"
  sleep "$down"
  if [ "$name" = slurmctld ]; then start_slurmctld; else start_slurmd; fi
  wait_idle
  say "$name is back: node $NODE is $(node_state)"
}

cmd_restart_ctld() { restart_daemon slurmctld TERM "${1:-0}"; }
cmd_restart_slurmd() { restart_daemon slurmd KILL "${1:-0}"; }

with_lock() {  # serialise concurrent start/stop calls (the daemons get fd 9 closed: 9>&-)
  mkdir -p "$STATE"
  exec 9>"$STATE/lock"
  flock -w 300 9 || fail "another local-slurm.sh is still running (lock $STATE/lock)"
  "$@"
}

case ${1:-} in
  start | stop)
    [ "$(id -u)" -eq 0 ] || fail "$1 must run as root"
    with_lock "cmd_$1"
    ;;
  status) cmd_status ;;
  restart-ctld | restart-slurmd)
    [ "$(id -u)" -eq 0 ] || fail "$1 must run as root"
    with_lock "cmd_${1//-/_}" "${2:-0}"
    ;;
  *)
    echo "usage: $0 {start|stop|status|restart-ctld [DOWN_S]|restart-slurmd [DOWN_S]}" >&2
    exit 2
    ;;
esac
