// The floor under a tracer stop on this machine, without pcache: a child calls
// getppid() N times, and a seccomp filter hands each call to the parent, which lets
// it go on at once. Prints the cost per call (native/PERFORMANCE.md has the numbers).
//   usage: stop-roundtrip t|u|s N
//     t  SECCOMP_RET_TRACE: a ptrace stop; the parent waits in waitpid, then PTRACE_CONT
//     u  SECCOMP_RET_USER_NOTIF: the parent receives the notification and answers
//        SECCOMP_USER_NOTIF_FLAG_CONTINUE (the other interception the kernel offers)
//     s  as u, with the listener in synchronous wake-up mode (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
//        Linux 6.6): the child hands its CPU to the parent and gets it back (native/src/notifier.h)
//   build: gcc -O2 -o stop-roundtrip bench/stop-roundtrip.c
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../native/src/seccomp_compat.h"

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// getppid gets `action`, everything else runs. Returns the seccomp() result.
static int installFilter(unsigned action, unsigned flags) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, action),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

// A one-byte message with room for one fd (the listener goes from the child to the parent).
struct FdMessage {
  char byte;
  char control[CMSG_SPACE(sizeof(int))];
  struct iovec iov;
  struct msghdr m;
};

static struct msghdr* fdMessage(struct FdMessage* f) {
  memset(f, 0, sizeof *f);
  f->iov.iov_base = &f->byte;
  f->iov.iov_len = 1;
  f->m.msg_iov = &f->iov;
  f->m.msg_iovlen = 1;
  f->m.msg_control = f->control;
  f->m.msg_controllen = sizeof f->control;
  return &f->m;
}

static void sendFd(int sock, int fd) {
  struct FdMessage f;
  struct msghdr* m = fdMessage(&f);
  struct cmsghdr* c = CMSG_FIRSTHDR(m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, m, 0) != 1) exit(3);
}

static int receiveFd(int sock) {
  struct FdMessage f;
  struct msghdr* m = fdMessage(&f);
  if (recvmsg(sock, m, 0) != 1 || !CMSG_FIRSTHDR(m)) exit(3);
  int fd;
  memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(m)), sizeof fd);
  return fd;
}

int main(int argc, char** argv) {
  if (argc != 3 || (strcmp(argv[1], "t") != 0 && strcmp(argv[1], "u") != 0 && strcmp(argv[1], "s") != 0) || atol(argv[2]) <= 0) {
    fprintf(stderr, "usage: stop-roundtrip t|u|s N\n");
    return 2;
  }
  int ptraced = argv[1][0] == 't';
  long n = atol(argv[2]);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 3;
  pid_t pid = fork();
  if (pid < 0) return 3;
  if (pid == 0) {
    if (ptraced) {
      if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0) _exit(3);
      raise(SIGSTOP);  // the parent sets options, then the filter goes in
      if (installFilter(SECCOMP_RET_TRACE, 0) != 0) _exit(3);
    } else {
      int listener = installFilter(SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER);
      if (listener < 0) _exit(3);
      sendFd(sv[1], listener);
      char go;
      if (read(sv[1], &go, 1) != 1) _exit(3);  // the parent holds the listener now
    }
    double t0 = seconds();
    for (long i = 0; i < n; i++) syscall(__NR_getppid);
    printf("%s: %.2f us per call\n", ptraced ? "ptrace" : argv[1][0] == 's' ? "user_notif (sync)" : "user_notif", (seconds() - t0) / n * 1e6);
    fflush(stdout);
    _exit(0);
  }
  int status;
  if (ptraced) {
    waitpid(pid, &status, 0);
    ptrace(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL);
    ptrace(PTRACE_CONT, pid, 0, 0);
    while (waitpid(pid, &status, 0) == pid && WIFSTOPPED(status)) {
      int seccompStop = (status >> 8) == (SIGTRAP | (PTRACE_EVENT_SECCOMP << 8));
      ptrace(PTRACE_CONT, pid, 0, seccompStop ? 0 : WSTOPSIG(status));
    }
  } else {
    int listener = receiveFd(sv[0]);
    if (argv[1][0] == 's' && ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0) != 0) {
      perror("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
      return 3;
    }
    if (write(sv[0], "g", 1) != 1) return 3;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
      memset(&req, 0, sizeof req);
      if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) break;  // the child is gone
      memset(&resp, 0, sizeof resp);
      resp.id = req.id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
    waitpid(pid, &status, 0);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
