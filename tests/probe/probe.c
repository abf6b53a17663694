/* Static probe run inside containers by the bats tests (crun's tests/init.c idea), so that
 * assertions do not depend on the image's shell. Usage: probe CMD [ARGS]
 *   hostname         print the UTS hostname
 *   pid              print getpid()
 *   caps             print CapEff from /proc/self/status
 *   cat FILE         print a file
 *   ls DIR           list a directory, one name a line
 *   fds              list open fds other than 0,1,2
 *   write FILE TEXT  create FILE with TEXT
 *   exit N           exit with status N
 *   sleep SECS       sleep
 *   loopback         listen on 127.0.0.1, connect to it, pass a byte; print "loopback ok"
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cat(const char* path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) { perror(path); return 1; }
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, n, stdout);
  close(fd);
  return 0;
}

/* A TCP round trip over 127.0.0.1: fails (ENETUNREACH) while lo is down. */
static int loopback(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr*)&a, &len) != 0) {
    perror("listen on 127.0.0.1");
    return 1;
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect to 127.0.0.1");
    return 1;
  }
  int s = accept(l, NULL, NULL);
  char b = 0;
  if (s < 0 || write(c, "x", 1) != 1 || read(s, &b, 1) != 1 || b != 'x') {
    perror("round trip over 127.0.0.1");
    return 1;
  }
  printf("loopback ok\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: probe CMD [ARGS]\n"); return 2; }
  const char* cmd = argv[1];
  if (!strcmp(cmd, "hostname")) {
    char h[256] = {0};
    gethostname(h, sizeof h - 1);
    printf("%s\n", h);
  } else if (!strcmp(cmd, "pid")) {
    printf("%d\n", (int)getpid());
  } else if (!strcmp(cmd, "caps")) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapBnd:", 7)) fputs(line, stdout);
    if (f) fclose(f);
  } else if (!strcmp(cmd, "cat") && argc > 2) {
    return cat(argv[2]);
  } else if (!strcmp(cmd, "ls") && argc > 2) {
    DIR* d = opendir(argv[2]);
    if (!d) { perror(argv[2]); return 1; }
    struct dirent* e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) printf("%s\n", e->d_name);
    closedir(d);
  } else if (!strcmp(cmd, "fds")) {
    DIR* d = opendir("/proc/self/fd");
    if (!d) { perror("/proc/self/fd"); return 1; }
    struct dirent* e;
    int self = dirfd(d);
    while ((e = readdir(d))) {
      int fd = atoi(e->d_name);
      if (e->d_name[0] == '.' || fd <= 2 || fd == self) continue;
      printf("%d\n", fd);
    }
    closedir(d);
  } else if (!strcmp(cmd, "write") && argc > 3) {
    FILE* f = fopen(argv[2], "w");
    if (!f) { perror(argv[2]); return 1; }
    fputs(argv[3], f);
    fclose(f);
  } else if (!strcmp(cmd, "exit") && argc > 2) {
    return atoi(argv[2]);
  } else if (!strcmp(cmd, "loopback")) {
    return loopback();
  } else if (!strcmp(cmd, "sleep") && argc > 2) {
    sleep(atoi(argv[2]));
  } else {
    fprintf(stderr, "probe: unknown command %s\n", cmd);
    return 2;
  }
  return 0;
}
