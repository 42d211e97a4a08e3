#include "procfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <unordered_map>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pcache {

namespace {
bool readLink(const char* p, std::string& out) {
  char buf[4096 + 64];
  ssize_t n = readlink(p, buf, sizeof buf);
  if (n < 0) return false;
  out.assign(buf, static_cast<size_t>(n));
  return true;
}

bool readSmallFile(const char* p, std::string& out) {
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  out.clear();
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return true;
}
}  // namespace

namespace {
// Relay pipes (relay.h) by the name of the pipe each stands for. Tracer thread only.
std::unordered_map<std::string, std::string> g_pipeAliases;
}  // namespace

void setPipeAlias(const std::string& relay, const std::string& original) { g_pipeAliases[relay] = original; }
void dropPipeAlias(const std::string& relay) { g_pipeAliases.erase(relay); }
bool isPipeAlias(const std::string& target) { return g_pipeAliases.count(target) > 0; }

bool fdTargetRaw(pid_t tid, int fd, std::string& out) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/fd/%d", tid, fd);
  return readLink(p, out);
}

bool fdTarget(pid_t tid, int fd, std::string& out) {
  if (!fdTargetRaw(tid, fd, out)) return false;
  if (!g_pipeAliases.empty() && out.compare(0, 5, "pipe:") == 0) {
    auto it = g_pipeAliases.find(out);
    if (it != g_pipeAliases.end()) out = it->second;
  }
  return true;
}

const char* classifyTarget(const std::string& t) {
  if (t.compare(0, 5, "pipe:") == 0) return "pipe";
  if (t.compare(0, 7, "socket:") == 0) return "socket";
  if (t.compare(0, 1, "/") != 0) return "other";  // anon_inode:...
  if (t == "/dev/null") return "null";
  if (t.compare(0, 9, "/dev/pts/") == 0 || t.compare(0, 8, "/dev/tty") == 0 || t == "/dev/console" ||
      t == "/dev/ptmx")
    return "tty";
  if (t.compare(0, 5, "/dev/") == 0) return "dev";
  return "file";
}

bool fdInfo(pid_t tid, int fd, int64_t& pos, int64_t& flags) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/fdinfo/%d", tid, fd);
  std::string s;
  if (!readSmallFile(p, s) || s.empty()) return false;
  pos = 0;
  flags = 0;
  const char* c = s.c_str();
  if (const char* q = strstr(c, "pos:")) pos = strtoll(q + 4, nullptr, 10);
  if (const char* q = strstr(c, "flags:")) flags = strtoll(q + 6, nullptr, 8);
  return true;
}

namespace {
// Fills kind from the target text, refined by stat for paths outside /dev.
bool describeFd(pid_t tid, int fd, FdSnapshot& s, bool withInfo) {
  s.fd = fd;
  s.pos = 0;
  s.flags = 0;
  if (!fdTarget(tid, fd, s.target)) return false;
  s.kind = classifyTarget(s.target);
  if (strcmp(s.kind, "file") == 0) {
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd/%d", tid, fd);
    struct stat st;
    if (stat(p, &st) == 0) {
      if (S_ISDIR(st.st_mode)) s.kind = "dir";
      else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) s.kind = "dev";
      else if (S_ISFIFO(st.st_mode)) s.kind = "pipe";
      else if (S_ISSOCK(st.st_mode)) s.kind = "socket";
    }
    if (withInfo && strcmp(s.kind, "file") == 0) fdInfo(tid, fd, s.pos, s.flags);
  }
  // Above 2, which end of a pipe (or whether a socket or terminal can be read) matters too:
  // reads there are not seen (fold.ts, outsideReadables).
  if (withInfo && fd > 2 && strcmp(s.kind, "file") != 0 && strcmp(s.kind, "dir") != 0 && strcmp(s.kind, "null") != 0 &&
      strcmp(s.kind, "dev") != 0)
    fdInfo(tid, fd, s.pos, s.flags);
  return true;
}
}  // namespace

namespace {
// The open fd numbers of a task, ascending.
std::vector<int> openFds(pid_t tid) {
  std::vector<int> fds;
  char dirPath[64];
  snprintf(dirPath, sizeof dirPath, "/proc/%d/fd", tid);
  DIR* d = opendir(dirPath);
  if (!d) return fds;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    fds.push_back(atoi(e->d_name));
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}
}  // namespace

std::vector<FdSnapshot> fdSnapshot(pid_t tid) {
  std::vector<FdSnapshot> out;
  for (int fd : openFds(tid)) {
    FdSnapshot s{fd, "", "other", 0, 0};
    if (describeFd(tid, fd, s, true)) out.push_back(std::move(s));
  }
  return out;
}

std::vector<FdSnapshot> stdioSnapshot(pid_t tid) {
  std::vector<FdSnapshot> out;
  for (int fd = 0; fd <= 2; fd++) {
    FdSnapshot s{fd, "", "other", 0, 0};
    if (describeFd(tid, fd, s, true)) out.push_back(std::move(s));
  }
  return out;
}

std::vector<FdSnapshot> execSnapshot(pid_t tid) {
  std::vector<FdSnapshot> out = stdioSnapshot(tid);
  for (int fd : openFds(tid)) {
    if (fd <= 2) continue;
    FdSnapshot s{fd, "", "other", 0, 0};
    if (!describeFd(tid, fd, s, true)) continue;
    bool dir = strcmp(s.kind, "dir") == 0;
    if (!dir && strcmp(s.kind, "file") != 0) continue;
    if (dir && !fdInfo(tid, fd, s.pos, s.flags)) continue;
    if (s.flags & O_CLOEXEC) continue;
    out.push_back(std::move(s));
  }
  return out;
}

bool readCwd(pid_t tid, std::string& out) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/cwd", tid);
  return readLink(p, out);
}

int readUmask(pid_t tid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/status", tid);
  std::string s;
  if (!readSmallFile(p, s)) return -1;
  const char* q = strstr(s.c_str(), "Umask:");
  if (!q) return -1;
  return static_cast<int>(strtol(q + 6, nullptr, 8));
}

}  // namespace pcache
