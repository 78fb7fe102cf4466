// darvoza-bench-rest: a closed-loop HTTP/1.1 load generator for REST calls (libcurl).
//
// `--concurrency` threads, each with its own keep-alive connection, call `--url` (with the
// given `--header`s; a POST of `--body-bytes` when given, a GET otherwise) for `--seconds`
// after a warm-up; `--cpu` names processes whose CPU over that same window is reported. A call counts when its status is below
// 400. Prints one line of JSON in darvoza-bench-load's shape: calls, errors, calls per second,
// p50/p90/p99 latency in microseconds, and the CPU seconds this process used.
#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/proc_cpu.h"

namespace {

using Clock = std::chrono::steady_clock;

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

struct Worker {
  std::vector<int64_t> latencies_us;
  int64_t errors = 0;
  std::string last_error;
};

void Run(const std::string& url, const std::vector<std::string>& headers,
         const std::string& body, const std::atomic<bool>& recording,
         const std::atomic<bool>& stop, Worker* worker) {
  CURL* curl = curl_easy_init();
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  while (!stop.load()) {
    const auto start = Clock::now();
    const CURLcode code = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    const int64_t us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    if (!recording.load()) continue;
    if (code != CURLE_OK || status >= 400) {
      ++worker->errors;
      worker->last_error = code != CURLE_OK ? curl_easy_strerror(code)
                                            : "HTTP " + std::to_string(status);
      continue;
    }
    worker->latencies_us.push_back(us);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"darvoza-bench-rest: closed-loop HTTP/1.1 load (REST calls)"};
  std::string url;
  std::vector<std::string> headers;
  int concurrency = 1;
  double seconds = 5;
  double warmup = 1;
  app.add_option("--url", url, "URL to call")->required();
  app.add_option("--header", headers, "Name: value (repeatable)");
  app.add_option("--concurrency", concurrency, "calls in flight");
  app.add_option("--seconds", seconds, "measured seconds");
  app.add_option("--warmup", warmup, "seconds before measuring");
  size_t body_bytes = 0;
  std::vector<std::string> cpu_specs;
  app.add_option("--body-bytes", body_bytes, "POST a body of this size instead of a GET");
  app.add_option("--cpu", cpu_specs,
                 "name=pid,pid: report these processes' CPU seconds over the measured window "
                 "(repeatable)");
  CLI11_PARSE(app, argc, argv);
  auto cpu_groups = darvoza::bench::ParseCpuGroups(cpu_specs);
  if (!cpu_groups) {
    std::fprintf(stderr, "--cpu wants name=pid,pid,...\n");
    return 2;
  }
  const std::string body(body_bytes, 'b');
  curl_global_init(CURL_GLOBAL_DEFAULT);

  std::atomic<bool> recording{false};
  std::atomic<bool> stop{false};
  std::vector<Worker> workers(static_cast<size_t>(std::max(1, concurrency)));
  std::vector<std::thread> threads;
  for (Worker& worker : workers) {
    threads.emplace_back(Run, url, headers, std::cref(body), std::cref(recording),
                         std::cref(stop), &worker);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  // The servers' CPU and the calls counted cover the same window.
  const darvoza::bench::CpuSample servers_start = darvoza::bench::SampleCpu(*cpu_groups);
  const double cpu_start = darvoza::bench::SelfCpuSeconds();
  const auto start = Clock::now();
  recording = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  recording = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = darvoza::bench::SelfCpuSeconds() - cpu_start;
  const darvoza::bench::CpuSample servers_end = darvoza::bench::SampleCpu(*cpu_groups);
  stop = true;
  for (std::thread& thread : threads) thread.join();

  std::vector<int64_t> all;
  int64_t errors = 0;
  std::string last_error;
  for (const Worker& worker : workers) {
    all.insert(all.end(), worker.latencies_us.begin(), worker.latencies_us.end());
    errors += worker.errors;
    if (!worker.last_error.empty()) last_error = worker.last_error;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> long long {
    if (all.empty()) return 0;
    return static_cast<long long>(all[static_cast<size_t>(p * (all.size() - 1))]);
  };
  std::printf(
      "{\"calls\": %zu, \"errors\": %lld, \"calls_per_second\": %.1f, \"p50_us\": %lld, "
      "\"p90_us\": %lld, \"p99_us\": %lld, \"client_cpu_seconds\": %.3f, \"seconds\": %.3f, "
      "\"server_cpu_seconds\": %s%s}\n",
      all.size(), static_cast<long long>(errors), all.size() / elapsed, pct(0.5), pct(0.9),
      pct(0.99), cpu, elapsed,
      darvoza::bench::CpuJson(*cpu_groups, servers_start, servers_end).c_str(),
      last_error.empty() ? "" : (", \"last_error\": \"" + last_error + "\"").c_str());
  return all.empty() ? 1 : 0;
}
