/* shale-init: the process `run --init` puts at pid 1 (tini's job). Bound read-only on
 * /dev/init by shale; usage: /dev/init -- CMD [ARGS...]
 * It starts CMD as its child in a new process group with the terminal handed over, forwards
 * every catchable signal to it, reaps every zombie that the pid namespace reparents to it,
 * and exits with CMD's status (128+N when CMD died of signal N). Static, no allocation. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
  if (first >= argc) {
    fprintf(stderr, "shale-init: usage: shale-init -- CMD [ARGS...]\n");
    return 125;
  }
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  pid_t child = fork();
  if (child < 0) {
    perror("shale-init: fork");
    return 125;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    setpgid(0, 0);
    if (isatty(0)) {
      signal(SIGTTOU, SIG_IGN);
      tcsetpgrp(0, getpid());
      signal(SIGTTOU, SIG_DFL);
    }
    execvp(argv[first], argv + first);
    fprintf(stderr, "shale-init: exec %s: %s\n", argv[first], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  for (;;) {
    int sig;
    if (sigwait(&all, &sig) != 0) continue;
    if (sig == SIGCHLD) {
      int st;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p != child) continue;
        /* Reap what is left, then leave: our exit ends the pid namespace. */
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (WIFEXITED(st)) return WEXITSTATUS(st);
        if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
        return 125;
      }
      continue;
    }
    if (sig == SIGTTIN || sig == SIGTTOU || sig == SIGTSTP) continue;
    kill(child, sig);
  }
}
