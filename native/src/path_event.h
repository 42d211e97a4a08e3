// Turns a path syscall at its entry into the fs event the tracer reports: the path(s)
// read from the tracee and resolved as the kernel will (path_resolver.h), the flags,
// and the identity of the file it is about to touch. Shared by the ptrace side
// (tracer.cc, the tracee stopped) and the seccomp notifier (notifier.cc, the tracee
// waiting for its answer): both see the call before the kernel runs it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "events.h"
#include "path_resolver.h"
#include "syscall_table.h"

namespace pcache {

// The directory a dirfd (or AT_FDCWD) stands for in the calling task; false if unknown.
using BaseDirFn = std::function<bool(int64_t dirfd, std::string& out)>;

// Fills e (kind, pid, op, path(s), type(s), flags, mode, links, identity). Returns false
// when the call names nothing that could be observed (EBADF, an unreadable path).
bool buildPathEvent(pid_t tid, pid_t tgid, const SyscallSpec& s, const uint64_t* a, const BaseDirFn& baseDir,
                    PathCache* cache, Event& e);

// True for the calls the notifier may take (seccomp_filter.cc sends them there): fully
// known at entry, no effect on the tree, nothing to hold the caller for.
bool notifiable(const SyscallSpec& s);

}  // namespace pcache
