// Builds the seccomp-bpf program that decides which syscalls stop the tracee.
// Built on the tracer thread before fork: the child only installs it.
#pragma once

#include <linux/filter.h>

#include <vector>

namespace pcache {

// The filter every tracee starts with. Writes to fd 1/2 do not stop here: the tracer
// adds buildStdioWriteFilter for the fds whose writes it must capture (tracer.cc).
std::vector<sock_filter> buildSeccompFilter();
// Stops the write family (and kernel-side copies) whose output fd is in `fds`
// (bit 1: fd 1, bit 2: fd 2); lets everything else through.
std::vector<sock_filter> buildStdioWriteFilter(unsigned fds);

}  // namespace pcache
