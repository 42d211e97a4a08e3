// Builds the seccomp-bpf program that decides which syscalls stop the tracee.
// Built on the tracer thread before fork: the child only installs it.
#pragma once

#include <linux/filter.h>

#include <vector>

namespace pcache {

std::vector<sock_filter> buildSeccompFilter();

}  // namespace pcache
