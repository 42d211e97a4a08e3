#include "tracee_memory.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>

namespace pcache {

namespace {
constexpr uint64_t kPage = 4096;

ssize_t readSome(pid_t tid, uint64_t addr, void* dst, size_t len) {
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(tid, &local, 1, &remote, 1, 0);
}
}  // namespace

bool readBytes(pid_t tid, uint64_t addr, void* dst, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = readSome(tid, addr + done, static_cast<char*>(dst) + done, len - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool writeBytes(pid_t tid, uint64_t addr, const void* src, size_t len) {
  iovec local{const_cast<void*>(src), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_writev(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool readBytes(pid_t tid, uint64_t addr, size_t len, std::string& out) {
  out.resize(len);
  if (len == 0) return true;
  if (!readBytes(tid, addr, &out[0], len)) {
    out.clear();
    return false;
  }
  return true;
}

bool readString(pid_t tid, uint64_t addr, std::string& out, size_t maxLen) {
  out.clear();
  if (addr == 0) return false;
  char buf[kPage];
  while (out.size() < maxLen) {
    size_t chunk = kPage - (addr % kPage);  // never cross a page boundary in one read
    ssize_t n = readSome(tid, addr, buf, chunk);
    if (n <= 0) return false;
    const void* nul = memchr(buf, 0, static_cast<size_t>(n));
    if (nul) {
      out.append(buf, static_cast<const char*>(nul) - buf);
      return true;
    }
    out.append(buf, static_cast<size_t>(n));
    addr += static_cast<uint64_t>(n);
  }
  return false;
}

bool readStringArray(pid_t tid, uint64_t addr, std::vector<std::string>& out, size_t maxItems) {
  out.clear();
  if (addr == 0) return true;  // Linux accepts a NULL argv/envp as empty
  std::vector<uint64_t> ptrs;
  uint64_t chunk[64];
  for (bool end = false; !end;) {
    size_t n = std::min<uint64_t>(64, (kPage - (addr % kPage)) / 8);
    if (n == 0) n = 1;
    ssize_t got = readSome(tid, addr, chunk, n * 8);
    if (got < 8) return false;
    for (size_t i = 0; i < static_cast<size_t>(got) / 8; i++) {
      if (chunk[i] == 0) {
        end = true;
        break;
      }
      ptrs.push_back(chunk[i]);
      if (ptrs.size() > maxItems) return false;
    }
    addr += static_cast<uint64_t>(got / 8 * 8);
  }
  // The strings usually lie close together (a shell builds envp in one block, argv
  // sits on the stack): one remote piece per run of nearby strings, each piece ending
  // where its last string's page ends, all in one process_vm_readv. Pinning a page per
  // string cost more than the bytes between them. A string a piece does not hold to its
  // NUL (a fault cut the read short, or it runs past the piece) is read on its own.
  constexpr uint64_t kGap = 2048;       // join strings less than this far apart
  constexpr uint64_t kSpanMax = 64 << 10;
  out.resize(ptrs.size());
  std::vector<size_t> order(ptrs.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return ptrs[x] < ptrs[y]; });
  struct Span {
    uint64_t start, end;  // remote [start, end)
    size_t first, last;   // into order, inclusive
  };
  std::vector<Span> spans;
  for (size_t k = 0; k < order.size(); k++) {
    uint64_t p = ptrs[order[k]];
    uint64_t pageEnd = (p / kPage + 1) * kPage;
    if (!spans.empty() && p < spans.back().end + kGap && pageEnd - spans.back().start <= kSpanMax) {
      spans.back().end = std::max(spans.back().end, pageEnd);
      spans.back().last = k;
    } else {
      spans.push_back({p, pageEnd, k, k});
    }
  }
  constexpr size_t kIovMax = 1024;  // IOV_MAX
  std::vector<char> buf;
  std::vector<size_t> offset(spans.size());
  size_t total = 0;
  for (size_t j = 0; j < spans.size(); j++) {
    offset[j] = total;
    total += spans[j].end - spans[j].start;
  }
  buf.resize(total);
  std::vector<size_t> valid(spans.size(), 0);  // bytes of each span actually read
  for (size_t base = 0; base < spans.size(); base += kIovMax) {
    size_t count = std::min(kIovMax, spans.size() - base);
    std::vector<iovec> local(count), remote(count);
    for (size_t i = 0; i < count; i++) {
      const Span& sp = spans[base + i];
      local[i] = {&buf[offset[base + i]], sp.end - sp.start};
      remote[i] = {reinterpret_cast<void*>(sp.start), sp.end - sp.start};
    }
    ssize_t got = process_vm_readv(tid, local.data(), count, remote.data(), count, 0);
    size_t left = got > 0 ? static_cast<size_t>(got) : 0;
    for (size_t i = 0; i < count && left > 0; i++) {
      valid[base + i] = std::min(left, local[i].iov_len);
      left -= valid[base + i];
    }
  }
  for (size_t j = 0; j < spans.size(); j++) {
    const Span& sp = spans[j];
    for (size_t k = sp.first; k <= sp.last; k++) {
      size_t idx = order[k];
      uint64_t at = ptrs[idx] - sp.start;
      const char* piece = &buf[offset[j] + at];
      const void* nul = at < valid[j] ? memchr(piece, 0, valid[j] - at) : nullptr;
      std::string& s = out[idx];
      if (nul) {
        s.assign(piece, static_cast<const char*>(nul) - piece);
      } else if (!readString(tid, ptrs[idx], s, 1 << 20)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace pcache
