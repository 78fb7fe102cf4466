// CPU time of other processes (utime + stime from /proc/PID/stat), so that a load generator
// measures the servers' CPU over exactly the window it counts completed calls in.
//
//   auto groups = ParseCpuGroups({"ss=101,102", "backend=103"});
//   CpuSample before = SampleCpu(*groups);  ... load ...  CpuSample after = SampleCpu(*groups);
//   std::string json = CpuJson(*groups, before, after);  // {"ss": 1.234, "backend": 0.5}
#ifndef DARVOZA_BENCH_PROC_CPU_H_
#define DARVOZA_BENCH_PROC_CPU_H_

#include <optional>
#include <string>
#include <vector>

namespace darvoza::bench {

// CPU seconds (user + system) this process has used so far.
double SelfCpuSeconds();

// A named set of processes whose CPU is reported together (nginx: master and workers).
struct CpuGroup {
  std::string name;
  std::vector<int> pids;
};

// Parses "name=pid,pid,...". Empty on a malformed spec.
std::optional<std::vector<CpuGroup>> ParseCpuGroups(const std::vector<std::string>& specs);

// CPU seconds per group, in the groups' order. A process that has exited counts 0.
using CpuSample = std::vector<double>;
CpuSample SampleCpu(const std::vector<CpuGroup>& groups);

// {"name": seconds, ...} of after - before.
std::string CpuJson(const std::vector<CpuGroup>& groups, const CpuSample& before,
                    const CpuSample& after);

}  // namespace darvoza::bench

#endif  // DARVOZA_BENCH_PROC_CPU_H_
