#!/usr/bin/env bats
# `run -it` as a person uses it: a shell on a real terminal (tmux), its window size, a resize
# reaching the container, and Ctrl-C interrupting the container's foreground command.

load helpers

setup() {
  common_setup
  import_busybox
  command -v tmux >/dev/null || skip "tmux is not installed (apt-get install tmux)"
  export TMUX_TMPDIR="$BATS_TEST_TMPDIR"   # a private tmux server per test
  SESSION="shale-tty-$$"
}

teardown() {
  tmux kill-server 2>/dev/null || true
  common_teardown
}

# Waits until the pane shows a line matching $1 (grep -E), up to 10 s.
wait_for() {
  for _ in $(seq 100); do
    tmux capture-pane -p -t "$SESSION" | grep -qE "$1" && return 0
    sleep 0.1
  done
  echo "pane never showed /$1/:" >&2
  tmux capture-pane -p -t "$SESSION" >&2
  return 1
}

@test "run -it: an interactive shell with the window's size, resize and Ctrl-C" {
  tmux new-session -d -s "$SESSION" -x 120 -y 40 \
    "SHALE_ROOT=$SHALE_ROOT $SHALE_BIN run -it --name tty1 busybox sh; echo shale-exited-\$?; sleep 30"
  wait_for '^/ #'
  tmux send-keys -t "$SESSION" 'stty size; tty' Enter
  wait_for '^40 120'
  wait_for '^/dev/pts/0'
  # A resize of the window reaches the container (SIGWINCH -> TIOCSWINSZ on the master).
  tmux resize-window -t "$SESSION" -x 100 -y 30
  sleep 0.3
  tmux send-keys -t "$SESSION" 'stty size' Enter
  wait_for '^30 100'
  # Ctrl-C goes through the pty to the container's foreground job, not to shale.
  tmux send-keys -t "$SESSION" 'sleep 100' Enter
  sleep 0.5
  tmux send-keys -t "$SESSION" C-c
  wait_for '^\^C'
  # The shell survived and its job died of SIGINT (the interactive shell drops the rest of
  # a command line on ^C, so ask for the status on a line of its own).
  tmux send-keys -t "$SESSION" 'echo status-$?' Enter
  wait_for '^status-130'
  [ "$(shale inspect tty1 | jq -r '.[0].State.Running')" = "true" ]
  tmux send-keys -t "$SESSION" 'exit 7' Enter
  wait_for '^shale-exited-7'
  [ "$(shale inspect tty1 | jq -r '.[0].State.ExitCode')" = "7" ]
}
