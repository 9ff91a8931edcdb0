// Which processes have a device open, for "busy" errors that name them. Found
// through <procRoot>/<pid>/fd, as fuser and lsof find them; processes of other
// users are not readable without privileges and are left out.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace devplane {

struct ProcessHolder {
  int pid;
  std::string command;
};

// Processes with an open file whose link target `holds` accepts, sorted by pid.
std::vector<ProcessHolder> processesHolding(const std::string &procRoot,
                                            const std::function<bool(const std::string &target)> &holds);

// The first line of a small text file, or "" when it cannot be read.
std::string readFirstLine(const std::string &path);

}  // namespace devplane
