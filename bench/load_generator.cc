// darvoza-bench-load: a closed-loop gRPC load generator for TaxRegistry.GetTaxDebt.
//
// Keeps `--concurrency` calls in flight for `--seconds` (after a warm-up) against one target:
// the backend directly, a client port of a security server (with x-road-client and
// x-road-service), or a proxy chain (plaintext or TLS). Prints one line of JSON: calls, errors,
// calls per second, p50/p90/p99 latency in microseconds, and the CPU seconds this process used.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "bench/proc_cpu.h"
#include "proto/example_agency.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using darvoza::examples::v1::TaxDebtReply;
using darvoza::examples::v1::TaxDebtRequest;
using darvoza::examples::v1::TaxRegistry;

struct Options {
  std::string target;
  std::string client;
  std::string service;
  std::string ca_file;  // TLS to the target (nginx chain entry) when set
  int concurrency = 1;
  double seconds = 5;
  double warmup = 1;
  size_t body_bytes = 0;
  std::vector<std::string> cpu_groups;
};

// A person id padded with digits to `bytes` (the backend echoes it, so the reply is as large):
// bodies of a realistic size each way.
std::string PersonId(size_t bytes) {
  std::string id = "31234567890123";
  while (id.size() < bytes) id.push_back(static_cast<char>('0' + id.size() % 10));
  return id;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One slot of the closed loop: issues a call, records its latency, issues the next.
class Slot {
 public:
  Slot(TaxRegistry::Stub* stub, const Options& options, std::atomic<bool>* recording,
       std::atomic<bool>* stop)
      : stub_(stub), options_(options), recording_(recording), stop_(stop) {
    request_.set_person_id(PersonId(options.body_bytes));
  }

  void Start() { Issue(); }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

  std::vector<int64_t> latencies_us;
  int64_t errors = 0;
  std::string last_error;

 private:
  void Issue() {
    if (stop_->load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      cv_.notify_all();
      return;
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    if (!options_.client.empty()) ctx_->AddMetadata("x-road-client", options_.client);
    if (!options_.service.empty()) ctx_->AddMetadata("x-road-service", options_.service);
    ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    started_ = Clock::now();
    stub_->async()->GetTaxDebt(ctx_.get(), &request_, &reply_, [this](grpc::Status status) {
      const bool record = recording_->load();
      if (record) {
        if (status.ok()) {
          latencies_us.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_)
                  .count());
        } else {
          ++errors;
          last_error = status.error_message();
        }
      }
      Issue();
    });
  }

  TaxRegistry::Stub* const stub_;
  const Options& options_;
  std::atomic<bool>* const recording_;
  std::atomic<bool>* const stop_;
  TaxDebtRequest request_;
  TaxDebtReply reply_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  Clock::time_point started_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"darvoza-bench-load: closed-loop load on TaxRegistry.GetTaxDebt"};
  app.add_option("--target", options.target, "host:port to call")->required();
  app.add_option("--client", options.client, "x-road-client (when calling a security server)");
  app.add_option("--service", options.service, "x-road-service (when calling a security server)");
  app.add_option("--ca", options.ca_file, "PEM CA file: call the target over TLS");
  app.add_option("--concurrency", options.concurrency, "Calls in flight");
  app.add_option("--seconds", options.seconds, "Measured duration");
  app.add_option("--warmup", options.warmup, "Warm-up before measuring");
  app.add_option("--body-bytes", options.body_bytes,
                 "Request size (the person id, padded; the reply echoes it)");
  app.add_option("--cpu", options.cpu_groups,
                 "name=pid,pid: report these processes' CPU seconds over the measured window "
                 "(repeatable)");
  CLI11_PARSE(app, argc, argv);
  auto cpu_groups = darvoza::bench::ParseCpuGroups(options.cpu_groups);
  if (!cpu_groups) {
    std::cerr << "--cpu wants name=pid,pid,...\n";
    return 2;
  }

  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (!options.ca_file.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(options.ca_file);
    credentials = grpc::SslCredentials(ssl);
    args.SetSslTargetNameOverride("bench.invalid");
  }
  auto channel = grpc::CreateCustomChannel(options.target, credentials, args);
  auto stub = TaxRegistry::NewStub(channel);

  std::atomic<bool> recording{false};
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < options.concurrency; ++i) {
    slots.push_back(std::make_unique<Slot>(stub.get(), options, &recording, &stop));
  }
  for (auto& slot : slots) slot->Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup));
  // The servers' CPU and the calls counted cover the same window: calls that complete
  // between the two samples.
  const darvoza::bench::CpuSample servers_start = darvoza::bench::SampleCpu(*cpu_groups);
  const double cpu_start = darvoza::bench::SelfCpuSeconds();
  const auto start = Clock::now();
  recording = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(options.seconds));
  recording = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = darvoza::bench::SelfCpuSeconds() - cpu_start;
  const darvoza::bench::CpuSample servers_end = darvoza::bench::SampleCpu(*cpu_groups);
  stop = true;
  for (auto& slot : slots) slot->Wait();

  std::vector<int64_t> all;
  int64_t errors = 0;
  std::string last_error;
  for (auto& slot : slots) {
    all.insert(all.end(), slot->latencies_us.begin(), slot->latencies_us.end());
    errors += slot->errors;
    if (!slot->last_error.empty()) last_error = slot->last_error;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) -> int64_t {
    if (all.empty()) return 0;
    size_t i = static_cast<size_t>(p * (all.size() - 1));
    return all[i];
  };
  std::printf(
      "{\"calls\": %zu, \"errors\": %lld, \"calls_per_second\": %.1f, \"p50_us\": %lld, "
      "\"p90_us\": %lld, \"p99_us\": %lld, \"client_cpu_seconds\": %.3f, \"seconds\": %.3f, "
      "\"server_cpu_seconds\": %s%s}\n",
      all.size(), static_cast<long long>(errors), all.size() / elapsed,
      static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.9)),
      static_cast<long long>(pct(0.99)), cpu, elapsed,
      darvoza::bench::CpuJson(*cpu_groups, servers_start, servers_end).c_str(),
      last_error.empty() ? "" : (", \"last_error\": \"" + last_error + "\"").c_str());
  return all.empty() ? 1 : 0;
}
