#!/bin/sh
# reloader.sh DIR... — send SIGHUP to the gateway when a mounted ConfigMap or Secret changes.
#
# Each DIR is a ConfigMap/Secret volume mount (not a subPath mount: those never update). The kubelet
# writes a new timestamped directory and then swaps the DIR/..data symlink to it in one rename, so
# the target of ..data changes exactly once per update. This script polls those targets every
# RELOADER_INTERVAL seconds (default 5) and, on a change, sends SIGHUP to the gateway: the gateway
# re-reads routes.yaml and its ${file:...} secrets, validates everything, and swaps the new config
# in (a bad config is logged as config_reload_failed and the old one keeps serving).
#
# The gateway runs in another container, so the pod needs `shareProcessNamespace: true`, and this
# container must run as the gateway's UID (signals need the same UID; no capabilities). The gateway
# is found by name (RELOADER_PROCESS, default "gateway"): a process whose name (/proc/PID/comm) is
# that, or a Python running `.../gateway ...` or `-m gateway ...`. With `--workers N` only the
# supervising parent is signalled (it forwards SIGHUP to every worker): a match whose parent also
# matches is skipped. A process that has no SIGHUP handler yet (still starting) is not signalled:
# the change stays pending and is sent in a later round.
#
# POSIX sh; runs in busybox (readlink, tr, sleep). Only builtins in the per-process loop.

set -u

name=${RELOADER_PROCESS:-gateway}
interval=${RELOADER_INTERVAL:-5}

if [ "$#" -eq 0 ]; then
    echo "usage: $0 DIR... (ConfigMap/Secret volume mounts to watch)" >&2
    exit 2
fi

log() {
    echo "reloader: $*"
}

# The ..data target of every watched directory, on one line.
state() {
    for dir in "$@"; do
        printf '%s -> %s; ' "$dir" "$(readlink "$dir/..data" 2>/dev/null)"
    done
}

# Exit status 0 if process $1 is the gateway (by name, or a Python running it as a script or module).
is_gateway() {
    comm=
    read -r comm 2>/dev/null <"/proc/$1/comm" || return 1
    [ "$comm" = "$name" ] && return 0
    case $comm in
        python*) ;;
        *) return 1 ;;
    esac
    args=$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline") || return 1
    arg1= arg2=
    {
        read -r _ || :
        read -r arg1 || :
        read -r arg2 || :
    } <<EOF
$args
EOF
    [ "${arg1##*/}" = "$name" ] && return 0
    [ "$arg1" = "-m" ] && [ "$arg2" = "$name" ]
}

# A field of /proc/PID/status (called in a command substitution: a process gone meanwhile only ends
# that subshell, with no output).
status_field() {
    while read -r key value; do
        if [ "$key" = "$2:" ]; then
            echo "$value"
            return 0
        fi
    done 2>/dev/null <"/proc/$1/status"
}

# Exit status 0 if process $1 has a SIGHUP handler: the bit of signal 1 (the lowest) in the SigCgt
# mask. Until the gateway has set its handler, a SIGHUP would end it, so it is not sent yet.
catches_sighup() {
    mask=$(status_field "$1" SigCgt)
    case ${mask#"${mask%?}"} in
        1 | 3 | 5 | 7 | 9 | b | d | f | B | D | F) return 0 ;;
        *) return 1 ;;
    esac
}

# The gateway processes whose parent is not a gateway process (the supervisor, not its workers).
gateway_pids() {
    for entry in /proc/[0-9]*; do
        pid=${entry#/proc/}
        [ "$pid" = "$$" ] && continue
        is_gateway "$pid" || continue
        is_gateway "$(status_field "$pid" PPid)" && continue
        printf '%s ' "$pid"
    done
}

# SIGHUP to every gateway found; exit status 1 (try again next round) if there was none, or if one
# is still starting: it may have read the old files, and its handler is not set yet.
signal_gateway() {
    pids=$(gateway_pids)
    if [ -z "$pids" ]; then
        log "no process named '$name' is visible (is shareProcessNamespace: true set?); will retry"
        return 1
    fi
    for pid in $pids; do
        if ! catches_sighup "$pid"; then
            log "pid $pid does not handle SIGHUP yet (starting?); will retry"
            return 1
        fi
    done
    sent=
    for pid in $pids; do
        if kill -HUP "$pid" 2>/dev/null; then
            sent="$sent $pid"
        else
            log "cannot signal pid $pid (not the same UID as the gateway?)"
        fi
    done
    [ -n "$sent" ] || return 1
    log "sent SIGHUP to$sent"
}

sleeper=
trap 'log "stopping"; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT

for dir in "$@"; do
    [ -L "$dir/..data" ] ||
        log "warning: $dir/..data is not a symlink: not a ConfigMap/Secret volume (or a subPath mount)"
done
last=$(state "$@")
log "watching $* every ${interval}s for changes; gateway process name '$name'"
[ -n "$(gateway_pids)" ] || log "no process named '$name' is visible yet"

while :; do
    # sleep in the background so that TERM is handled at once, not after the sleep
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper"
    sleeper=
    current=$(state "$@")
    [ "$current" = "$last" ] && continue
    log "change: $current"
    # on failure `last` stays as it was, so the next round tries again
    signal_gateway && last=$current
done
