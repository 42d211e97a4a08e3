#include "seccomp_filter.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <fcntl.h>

#include "path_event.h"
#include "syscall_table.h"

namespace pcache {

namespace {

constexpr uint32_t kTrace = SECCOMP_RET_TRACE;
constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kNotify = SECCOMP_RET_USER_NOTIF;

uint32_t argLow(int i) { return offsetof(seccomp_data, args) + 8 * i; }

// Emits "if (low 32 bits of arg) matches filter: return TRACE" (falls through otherwise).
void emitFdCheck(std::vector<sock_filter>& p, FdFilter f, int arg) {
  if (f == FdFilter::None) return;
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(arg)));
  switch (f) {
    case FdFilter::Is0:
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
      p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      break;
    case FdFilter::Is1or2:
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 1, 0));
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 1));
      p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      break;
    case FdFilter::Is0to2:
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 2, 1, 0));
      p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      break;
    case FdFilter::None:
      break;
  }
}

// Writes that go where the fd's offset is (pwrite* do not move it and stay in the base
// filter: a process without write stops is judged on them there).
bool isStreamWrite(int nr) { return nr == __NR_write || nr == __NR_writev; }

}  // namespace

std::vector<sock_filter> buildStdioFilter(unsigned fds) {
  std::vector<sock_filter> p;
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  for (const SyscallSpec& s : syscallTable()) {
    // (argument, fd) pairs that stop this call
    std::vector<std::pair<int, unsigned>> stops;
    bool write = s.handling == Handling::WriteStd && isStreamWrite(s.nr);
    bool move = s.handling == Handling::MoveData && s.filter == FdFilter::Is1or2;
    if (write || move)
      for (unsigned fd = 1; fd <= 2; fd++)
        if (fds & (1u << fd)) stops.emplace_back(s.filterArg, fd);
    if ((fds & 1u) && s.handling == Handling::ReadStdin) stops.emplace_back(s.filterArg, 0);
    if ((fds & 1u) && move && s.filter2 == FdFilter::Is0) stops.emplace_back(s.filterArg2, 0);
    if (stops.empty()) continue;
    std::vector<sock_filter> block;
    for (const auto& [arg, fd] : stops) {
      block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(arg)));
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, fd, 0, 1));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
    }
    block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)s.nr, 0, (uint8_t)block.size()));
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
  return p;
}

std::vector<sock_filter> buildSeccompFilter(bool notify) {
  std::vector<sock_filter> p;
  // Another ABI (i386 via int 0x80) bypasses our table: stop so it is seen as unknown.
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  // x32 syscalls carry bit 30.
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x40000000, 0, 1));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, (uint32_t)highestKnownSyscall(), 0, 1));
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));

  for (const SyscallSpec& s : syscallTable()) {
    std::vector<sock_filter> block;
    if (s.handling == Handling::WriteStd && isStreamWrite(s.nr)) continue;  // buildStdioFilter
    if (s.handling == Handling::ReadStdin) continue;                          // buildStdioFilter
    if (s.nr == __NR_fcntl) {
      // only F_DUPFD / F_DUPFD_CLOEXEC with a lowest fd of 0-2
      block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(1)));
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD, 1, 0));
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, F_DUPFD_CLOEXEC, 0, 3));
      block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(2)));
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 2, 1, 0));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)s.nr, 0, (uint8_t)block.size()));
      p.insert(p.end(), block.begin(), block.end());
      continue;
    }
    if (s.handling == Handling::MoveData && s.filter == FdFilter::Is1or2) continue;  // buildStdioFilter
    if (s.handling == Handling::TermSize) {
      // only the requests of terminalRequests(): every other one (isatty's TCGETS, FIONREAD ...) runs on
      block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(1)));
      const std::vector<TerminalRequest>& reqs = terminalRequests();
      for (size_t i = 0; i < reqs.size(); i++)
        block.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, reqs[i].request, static_cast<uint8_t>(reqs.size() - i), 0));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)s.nr, 0, (uint8_t)block.size()));
      p.insert(p.end(), block.begin(), block.end());
      continue;
    }
    if (notify && notifiable(s)) {
      // notifier.h: answered by the notifier. Opens only when read-only: one that may
      // write, create or truncate stays a ptrace stop (its old content may be needed first).
      if (s.skipFlagMask) {
        block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(s.skipFlagArg)));
        block.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, s.skipFlagMask, 0, 1));
        block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
      }
      if (s.handling == Handling::Open) {
        block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(s.flagsArg)));
        block.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, O_ACCMODE | O_CREAT | O_TRUNC, 0, 1));
        block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
      }
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kNotify));
    } else if (s.skipFlagMask) {
      block.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, argLow(s.skipFlagArg)));
      block.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, s.skipFlagMask, 0, 1));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
    } else if (s.filter == FdFilter::None) {
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kTrace));
    } else {
      emitFdCheck(block, s.filter, s.filterArg);
      emitFdCheck(block, s.filter2, s.filterArg2);
      block.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
    }
    // accumulator holds nr here: every block ends in a return.
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)s.nr, 0, (uint8_t)block.size()));
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(BPF_STMT(BPF_RET | BPF_K, kAllow));
  return p;
}

}  // namespace pcache
