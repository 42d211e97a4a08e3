#include "path_resolver.h"

#include <sys/stat.h>
#include <unistd.h>

#include <deque>

namespace pcache {

namespace {

constexpr int kMaxLinks = 40;  // the kernel's limit before ELOOP

void pushComponents(std::deque<std::string>& q, const std::string& p, bool front) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    if (j > i) parts.push_back(p.substr(i, j - i));
    i = j + 1;
  }
  if (front) {
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) q.push_front(*it);
  } else {
    for (auto& s : parts) q.push_back(s);
  }
}

void popComponent(std::string& cur) {
  size_t k = cur.rfind('/');
  cur.erase(k == std::string::npos ? 0 : k);
}

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Appends what is left lexically (the rest does not exist, so no symlinks remain).
void appendRest(std::string& cur, std::deque<std::string>& q) {
  for (auto& c : q) {
    if (c == ".") continue;
    if (c == "..") popComponent(cur);
    else cur += "/" + c;
  }
  q.clear();
}

}  // namespace

char fileTypeChar(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'f';
    case S_IFDIR: return 'd';
    case S_IFLNK: return 'l';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
  }
  return 'f';
}

namespace {

// Digits at p[i..], as a number (-1 when there are none or too many); i moves past them.
long digitsAt(const std::string& p, size_t& i) {
  size_t start = i;
  long v = 0;
  while (i < p.size() && p[i] >= '0' && p[i] <= '9' && i - start < 10) v = v * 10 + (p[i++] - '0');
  return i == start ? -1 : v;
}

// For /proc/PID/fd/N and /proc/PID/task/TID/fd/N: N when PID is the tracee's process (or
// its thread), kOtherFdLink for another process; -1 for any other path.
int fdLinkNumber(const std::string& p, pid_t tid, pid_t tgid) {
  if (!startsWith(p, "/proc/")) return -1;
  size_t i = 6;
  long pid = digitsAt(p, i);
  if (pid < 0) return -1;
  if (p.compare(i, 6, "/task/") == 0) {
    i += 6;
    if (digitsAt(p, i) < 0) return -1;
  }
  if (p.compare(i, 4, "/fd/") != 0) return -1;
  i += 4;
  long fd = digitsAt(p, i);
  if (fd < 0 || i != p.size()) return -1;
  return (pid == tgid || pid == tid) ? static_cast<int>(fd) : kOtherFdLink;
}

}  // namespace

ResolvedPath resolvePath(pid_t tid, pid_t tgid, const std::string& base, const std::string& input,
                         bool followLast, PathCache* cache) {
  ResolvedPath r;
  std::deque<std::string> q;
  std::string cur;  // "" is the root
  if (input.empty() || input[0] != '/') {
    cur = base;
    while (!cur.empty() && cur.back() == '/') cur.pop_back();
  }
  if (!input.empty() && input.back() == '/') followLast = true;  // "link/" names the target dir
  pushComponents(q, input, false);
  int linksFollowed = 0;
  char type = 'd';
  bool inProc = startsWith(cur, "/proc/") || cur == "/proc";
  // Continues the walk through symlink `link` to `target`; false (r filled: absent) on ELOOP.
  auto followLink = [&](const std::string& link, const std::string& target) {
    r.links.push_back(link);
    if (++linksFollowed > kMaxLinks) {
      cur = link;
      appendRest(cur, q);
      r.path = cur;
      r.type = '-';
      return false;
    }
    if (!target.empty() && target[0] == '/') cur.clear();
    pushComponents(q, target, true);
    inProc = startsWith(cur, "/proc/") || cur == "/proc";
    return true;
  };
  while (!q.empty()) {
    std::string comp = std::move(q.front());
    q.pop_front();
    bool last = q.empty();
    if (comp == ".") {
      type = 0;  // re-read below
      continue;
    }
    if (comp == "..") {
      popComponent(cur);
      type = 0;
      inProc = startsWith(cur, "/proc/") || cur == "/proc";
      continue;
    }
    std::string next = cur + "/" + comp;
    // /proc/self means the tracee, not us.
    if (next == "/proc/self") next = "/proc/" + std::to_string(tgid);
    else if (next == "/proc/thread-self")
      next = "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid);
    // An intermediate component seen before: no lstat, no readlink.
    if (cache && !last && !inProc) {
      if (const PathCache::Node* n = cache->find(next)) {
        cache->hits++;
        if (n->type == 'd') {
          cur = next;
          type = 'd';
          continue;
        }
        if (!followLink(next, n->target)) return r;
        continue;
      }
      cache->misses++;
    }
    struct stat st;
    if (lstat(next.c_str(), &st) != 0) {
      cur = next;
      appendRest(cur, q);
      r.path = cur.empty() ? "/" : cur;
      r.type = '-';
      return r;
    }
    if (S_ISLNK(st.st_mode) && (!last || followLast)) {
      char buf[4096];
      ssize_t n = readlink(next.c_str(), buf, sizeof buf);
      if (n < 0) {
        cur = next;
        type = 'l';
        continue;
      }
      std::string target(buf, static_cast<size_t>(n));
      if (inProc || startsWith(next, "/proc/")) {
        // Magic links (/proc/PID/fd/N, cwd, exe): the text is the kernel's answer.
        int fd = fdLinkNumber(next, tid, tgid);
        if (fd != -1 && r.fdLink == -1) r.fdLink = fd;
        if (target.empty() || target[0] != '/') {
          r.path = target;  // pipe:[..], socket:[..], anon_inode:..
          r.type = startsWith(target, "pipe:") ? 'p' : startsWith(target, "socket:") ? 's' : 'c';
          return r;
        }
        const char* deleted = " (deleted)";
        if (target.size() > 10 && target.compare(target.size() - 10, 10, deleted) == 0) {
          r.path = target;
          r.type = '-';
          return r;
        }
        cur.clear();
        pushComponents(q, target, true);
        inProc = false;
        continue;
      }
      if (cache && !last && !startsWith(next, "/proc")) cache->put(next, {'l', target});
      if (!followLink(next, target)) return r;
      if (q.empty()) type = 0;
      continue;
    }
    if (!last && !S_ISDIR(st.st_mode)) {  // ENOTDIR: nothing below exists
      cur = next;
      appendRest(cur, q);
      r.path = cur;
      r.type = '-';
      return r;
    }
    if (cache && !last && S_ISDIR(st.st_mode) && !inProc && !startsWith(next, "/proc")) cache->put(next, {'d', ""});
    cur = next;
    inProc = inProc || startsWith(cur, "/proc/");
    type = fileTypeChar(st.st_mode);
    if (last) {
      r.st = st;
      r.hasStat = true;
    }
  }
  r.path = cur.empty() ? "/" : cur;
  if (type == 0) {
    r.hasStat = lstat(r.path.c_str(), &r.st) == 0;
    type = r.hasStat ? fileTypeChar(r.st.st_mode) : '-';
  }
  r.type = type;
  return r;
}

}  // namespace pcache
