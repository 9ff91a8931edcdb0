#include "proc_holders.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace devplane {

namespace {
bool allDigits(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return false;
  return true;
}
}  // namespace

std::string readFirstLine(const std::string &path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::vector<ProcessHolder> processesHolding(const std::string &procRoot,
                                            const std::function<bool(const std::string &target)> &holds) {
  std::vector<ProcessHolder> out;
  DIR *proc = opendir(procRoot.c_str());
  if (!proc) return out;
  while (dirent *e = readdir(proc)) {
    if (!allDigits(e->d_name)) continue;
    std::string fdDir = procRoot + "/" + e->d_name + "/fd";
    DIR *fds = opendir(fdDir.c_str());
    if (!fds) continue;
    bool found = false;
    while (dirent *f = readdir(fds)) {
      if (f->d_name[0] == '.') continue;
      char target[512];
      ssize_t n = readlink((fdDir + "/" + f->d_name).c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      target[n] = 0;
      if (holds(target)) {
        found = true;
        break;
      }
    }
    closedir(fds);
    if (!found) continue;
    std::string comm = readFirstLine(procRoot + "/" + e->d_name + "/comm");
    out.push_back({std::atoi(e->d_name), comm.empty() ? "?" : comm});
  }
  closedir(proc);
  std::sort(out.begin(), out.end(), [](const ProcessHolder &a, const ProcessHolder &b) { return a.pid < b.pid; });
  return out;
}

}  // namespace devplane
