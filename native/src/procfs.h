// What the kernel knows about a tracee, read from /proc. The kernel's fd table
// is the source of truth: reading it at the moment a descriptor is used makes
// dup/close/CLOEXEC/close_range/SCM_RIGHTS and CLONE_FILES sharing exact
// without stopping on any of those calls.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "events.h"

namespace pcache {

// readlink(/proc/TID/fd/FD); false if the fd is not open. A relay pipe (relay.h) reads as
// the pipe it stands for: every fd snapshot, write target and stdio check sees what a plain
// run would have. fdTargetRaw: the name as the kernel gives it.
bool fdTarget(pid_t tid, int fd, std::string& out);
bool fdTargetRaw(pid_t tid, int fd, std::string& out);
void setPipeAlias(const std::string& relay, const std::string& original);
void dropPipeAlias(const std::string& relay);
bool isPipeAlias(const std::string& target);
// 'file' | 'dir' | 'pipe' | 'tty' | 'null' | 'socket' | 'dev' | 'other', from the target text
// (cheap; used on the hot path of stdio writes).
const char* classifyTarget(const std::string& target);
// Every open fd with kind (and, for regular files, position and flags). Called
// right after an exec, when close-on-exec fds are already gone.
std::vector<FdSnapshot> fdSnapshot(pid_t tid);
// fds 0-2 only, with position and flags for regular files: where a stdin file is read from
// and where writing a stdout/stderr file starts (checked at the exit, cached-run.ts).
std::vector<FdSnapshot> stdioSnapshot(pid_t tid);
// Before an exec: stdioSnapshot, then every fd from 3 up that names a regular file or a
// directory and will survive the exec (not close-on-exec), with position and flags. The
// new program can read or write those without an open the tracer sees (`cmd 3< in`), so
// which files they are is part of its command key.
std::vector<FdSnapshot> execSnapshot(pid_t tid);
bool readCwd(pid_t tid, std::string& out);
int readUmask(pid_t tid);  // -1 if unknown
// Reads fdinfo "pos:" and "flags:"; false if the fd is not open.
bool fdInfo(pid_t tid, int fd, int64_t& pos, int64_t& flags);

}  // namespace pcache
