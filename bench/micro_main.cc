// darvoza-microbench's main: the process set-up every Darvoza program does first, then Google
// Benchmark's flags (--benchmark_filter, --benchmark_min_time, --benchmark_format=json, ...).
#include "benchmark/benchmark.h"
#include "common/tls.h"

int main(int argc, char** argv) {
  darvoza::SetUpTlsForProcess();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
