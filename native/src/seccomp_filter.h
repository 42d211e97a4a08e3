// Builds the seccomp-bpf program that decides which syscalls stop the tracee.
// Built on the tracer thread before fork: the child only installs it.
#pragma once

#include <linux/filter.h>

#include <vector>

namespace pcache {

// The filter every tracee starts with. Reads of fd 0 and writes to fd 1/2 do not stop
// here: the tracer adds buildStdioFilter where it must see them (tracer.cc). With notify,
// the calls of notifiable() (path_event.h) go to a seccomp listener (notifier.h) instead
// of stopping for ptrace.
std::vector<sock_filter> buildSeccompFilter(bool notify);
// Stops the write family (and kernel-side copies) whose output fd is in `fds` (bit 1: fd 1,
// bit 2: fd 2), and with bit 0 the read family (and copies) from fd 0; lets everything
// else through.
std::vector<sock_filter> buildStdioFilter(unsigned fds);

}  // namespace pcache
