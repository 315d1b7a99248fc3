# Shared by scripts/build-k8s.sh and scripts/build-stack.sh (sourced, not run).
# run_logged WHAT CMD...: runs CMD with its output appended to $LOG, printing a heartbeat through the
# caller's log() every 30 s, and the last lines of $LOG if it fails.
run_logged() {
  local what=$1
  shift
  local start=$SECONDS
  "$@" >>"$LOG" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "  $what: $((SECONDS - start))s elapsed, $(wc -l <"$LOG") log lines (tail: $(tail -n1 "$LOG" | cut -c1-80))"
    fi
  done
  if wait "$pid"; then
    log "  $what: done in $((SECONDS - start))s"
  else
    log "  $what: FAILED after $((SECONDS - start))s; last lines of $LOG:"
    tail -n 25 "$LOG" >&2
    return 1
  fi
}
