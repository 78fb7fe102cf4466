#include "bench/proc_cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace darvoza::bench {
namespace {

double ProcessCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: count from its end.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;  // NOLINT(runtime/int): /proc's format.
  // Fields 3.. follow; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

double SelfCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::optional<std::vector<CpuGroup>> ParseCpuGroups(const std::vector<std::string>& specs) {
  std::vector<CpuGroup> groups;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) return std::nullopt;
    CpuGroup group{spec.substr(0, eq), {}};
    std::istringstream pids(spec.substr(eq + 1));
    std::string pid;
    while (std::getline(pids, pid, ',')) {
      if (pid.empty()) continue;
      if (pid.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
      group.pids.push_back(std::stoi(pid));
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

CpuSample SampleCpu(const std::vector<CpuGroup>& groups) {
  CpuSample sample;
  for (const CpuGroup& group : groups) {
    double total = 0;
    for (int pid : group.pids) total += ProcessCpuSeconds(pid);
    sample.push_back(total);
  }
  return sample;
}

std::string CpuJson(const std::vector<CpuGroup>& groups, const CpuSample& before,
                    const CpuSample& after) {
  std::string out = "{";
  for (size_t i = 0; i < groups.size(); ++i) {
    char value[64];
    std::snprintf(value, sizeof(value), "%.3f", after[i] - before[i]);
    if (i > 0) out += ", ";
    out += "\"" + groups[i].name + "\": " + value;
  }
  return out + "}";
}

}  // namespace darvoza::bench
