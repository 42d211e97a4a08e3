// What waking the tracer thread costs the thread that wakes it, without pcache: a thread
// sleeps in waitpid (as the tracer does) or in poll on an eventfd, and the main thread
// wakes it N times, a moment apart so the sleeper is asleep each time. Prints the waker's
// wall and CPU time per wake-up (native/PERFORMANCE.md has the numbers).
//   usage: wake-cost k|e [N]
//     k  pthread_kill with a handler installed without SA_RESTART (waitpid returns EINTR):
//        how resolveExec/resolveExit wake the tracer (native/src/tracer.cc)
//     e  a write to an eventfd the sleeper polls
//   build: gcc -O2 -pthread -o wake-cost bench/wake-cost.c
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_int woken;
static int efd;

static void onSignal(int sig) { (void)sig; }

static void* sleepInWaitpid(void* arg) {
  (void)arg;
  for (;;) {
    int status;
    waitpid(-1, &status, __WALL);
    atomic_fetch_add(&woken, 1);
  }
  return NULL;
}

static void* sleepInPoll(void* arg) {
  (void)arg;
  for (;;) {
    struct pollfd p = {efd, POLLIN, 0};
    poll(&p, 1, -1);
    uint64_t v;
    if (read(efd, &v, sizeof v) < 0) perror("read");
    atomic_fetch_add(&woken, 1);
  }
  return NULL;
}

static double nanos(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 2 || (argv[1][0] != 'k' && argv[1][0] != 'e')) {
    fprintf(stderr, "usage: wake-cost k|e [N]\n");
    return 2;
  }
  int signalMode = argv[1][0] == 'k';
  int n = argc > 2 ? atoi(argv[2]) : 2000;
  struct sigaction sa = {0};
  sa.sa_handler = onSignal;
  sigaction(SIGUSR1, &sa, NULL);
  pid_t child = fork();  // so that waitpid has someone to wait for, and blocks
  if (child == 0) {
    pause();
    _exit(0);
  }
  efd = eventfd(0, 0);
  pthread_t sleeper;
  pthread_create(&sleeper, NULL, signalMode ? sleepInWaitpid : sleepInPoll, NULL);
  usleep(100000);
  double wall = 0, cpu = 0;
  for (int i = 0; i < n; i++) {
    int before = atomic_load(&woken);
    double w0 = nanos(CLOCK_MONOTONIC), c0 = nanos(CLOCK_THREAD_CPUTIME_ID);
    if (signalMode) {
      pthread_kill(sleeper, SIGUSR1);
    } else {
      uint64_t one = 1;
      if (write(efd, &one, sizeof one) < 0) perror("write");
    }
    cpu += nanos(CLOCK_THREAD_CPUTIME_ID) - c0;
    wall += nanos(CLOCK_MONOTONIC) - w0;
    while (atomic_load(&woken) == before) {
    }
    usleep(500);  // the sleeper's CPU goes idle again
  }
  printf("%s: %.1f us wall, %.1f us CPU per wake-up (waker's side, %d wake-ups)\n", signalMode ? "pthread_kill" : "eventfd",
         wall / n / 1000, cpu / n / 1000, n);
  kill(child, SIGKILL);
  return 0;
}
