// What one tracer stop costs: repeats one syscall N times, to be timed plainly and
// under `pcache trace` (native/PERFORMANCE.md has the numbers).
//   usage: stop-cost w|s|g N
//     w  write(1, 4 KiB)         a stop per write (two when stdout is a regular file)
//     s  stat("/nonexistent/x")  a stop per call
//     g  getppid()               not in the filter: no stop (the baseline)
//   build: gcc -O2 -o stop-cost bench/stop-cost.c
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3 || strlen(argv[1]) != 1 || !strchr("wsg", argv[1][0])) return 2;
  long n = atol(argv[2]);
  char buf[4096];
  memset(buf, 'x', sizeof buf);
  struct stat st;
  for (long i = 0; i < n; i++) {
    if (argv[1][0] == 'w') {
      if (write(1, buf, sizeof buf) != (ssize_t)sizeof buf) return 1;
    } else if (argv[1][0] == 's') {
      stat("/nonexistent/x", &st);
    } else {
      getppid();
    }
  }
  return 0;
}
