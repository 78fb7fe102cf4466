#include "common/metrics.h"

#include <atomic>
#include <sstream>
#include <utility>

#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/host_port.h"

namespace darvoza {
namespace {

std::atomic<uint64_t> next_registry_id{1};

// Splits `family{a="x",b="y"}` into the family and its labels. Names are written by our own
// code, so a malformed one is a broken invariant.
std::pair<std::string, MetricLabels> ParseSeriesName(absl::string_view name) {
  size_t brace = name.find('{');
  if (brace == absl::string_view::npos) return {std::string(name), {}};
  DARVOZA_CHECK(name.back() == '}');
  MetricLabels labels;
  size_t i = brace + 1;
  const size_t end = name.size() - 1;
  while (i < end) {
    size_t eq = name.find('=', i);
    DARVOZA_CHECK(eq != absl::string_view::npos && eq + 1 < end && name[eq + 1] == '"');
    std::string key(name.substr(i, eq - i));
    std::string value;
    size_t j = eq + 2;
    for (; j < end && name[j] != '"'; ++j) {
      if (name[j] == '\\' && j + 1 < end) ++j;
      value.push_back(name[j]);
    }
    DARVOZA_CHECK(j < end);
    labels[std::move(key)] = std::move(value);
    i = j + 1;
    if (i < end && name[i] == ',') ++i;
  }
  return {std::string(name.substr(0, brace)), std::move(labels)};
}

// Per thread: registry id -> series name -> counter. Entries of a destroyed registry are never
// looked up again (ids are not reused).
using CounterCache =
    absl::flat_hash_map<uint64_t, absl::flat_hash_map<std::string, prometheus::Counter*>>;

CounterCache& ThreadCounterCache() {
  thread_local CounterCache cache;
  return cache;
}

}  // namespace

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

MetricsRegistry::MetricsRegistry(MetricHelp help)
    : id_(next_registry_id.fetch_add(1)),
      help_(std::move(help)),
      registry_(std::make_shared<prometheus::Registry>()) {}

MetricsRegistry::~MetricsRegistry() = default;

void* MetricsRegistry::FamilyLocked(absl::string_view family, Type type) {
  auto it = families_.find(family);
  if (it != families_.end()) {
    DARVOZA_CHECK(it->second.type == type);
    return it->second.family;
  }
  auto help_it = help_.find(family);
  std::string help(help_it != help_.end() ? absl::string_view(help_it->second)
                                          : kUndocumentedHelp);
  std::string name(family);
  void* created = nullptr;
  switch (type) {
    case Type::kCounter:
      created = &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
      break;
    case Type::kGauge:
      created = &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
      break;
    case Type::kHistogram:
      created = &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
      break;
  }
  families_.emplace(std::move(name), FamilyEntry{type, created});
  return created;
}

prometheus::Counter& MetricsRegistry::Counter(absl::string_view family,
                                              const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  auto* f = static_cast<prometheus::Family<prometheus::Counter>*>(
      FamilyLocked(family, Type::kCounter));
  return f->Add(labels);
}

prometheus::Gauge& MetricsRegistry::Gauge(absl::string_view family, const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  auto* f =
      static_cast<prometheus::Family<prometheus::Gauge>*>(FamilyLocked(family, Type::kGauge));
  return f->Add(labels);
}

prometheus::Histogram& MetricsRegistry::Histogram(absl::string_view family,
                                                  const MetricLabels& labels,
                                                  const std::vector<double>& buckets) {
  absl::MutexLock lock(&mu_);
  auto* f = static_cast<prometheus::Family<prometheus::Histogram>*>(
      FamilyLocked(family, Type::kHistogram));
  return f->Add(labels, prometheus::Histogram::BucketBoundaries(buckets));
}

MetricsRegistry::Series* MetricsRegistry::SeriesLocked(absl::string_view name, Type type) {
  auto it = series_.find(name);
  if (it != series_.end()) {
    DARVOZA_CHECK(it->second.type == type);
    return &it->second;
  }
  auto [family, labels] = ParseSeriesName(name);
  void* f = FamilyLocked(family, type);
  void* metric =
      type == Type::kCounter
          ? static_cast<void*>(&static_cast<prometheus::Family<prometheus::Counter>*>(f)->Add(labels))
          : static_cast<void*>(&static_cast<prometheus::Family<prometheus::Gauge>*>(f)->Add(labels));
  return &series_.emplace(std::string(name), Series{type, metric}).first->second;
}

void MetricsRegistry::Increment(absl::string_view name, double delta) {
  auto& mine = ThreadCounterCache()[id_];
  auto it = mine.find(name);
  if (it == mine.end()) {
    prometheus::Counter* counter;
    {
      absl::MutexLock lock(&mu_);
      counter = static_cast<prometheus::Counter*>(SeriesLocked(name, Type::kCounter)->metric);
    }
    it = mine.emplace(std::string(name), counter).first;
  }
  it->second->Increment(delta);
}

void MetricsRegistry::FollowCounter(absl::string_view name, double total) {
  absl::MutexLock lock(&mu_);
  auto* counter = static_cast<prometheus::Counter*>(SeriesLocked(name, Type::kCounter)->metric);
  if (total > counter->Value()) counter->Increment(total - counter->Value());
}

void MetricsRegistry::SetGauge(absl::string_view name, double value) {
  absl::MutexLock lock(&mu_);
  static_cast<prometheus::Gauge*>(SeriesLocked(name, Type::kGauge)->metric)->Set(value);
}

void MetricsRegistry::Remove(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  if (it == series_.end() || it->second.type != Type::kGauge) return;
  auto family = families_.find(ParseSeriesName(name).first);
  static_cast<prometheus::Family<prometheus::Gauge>*>(family->second.family)
      ->Remove(static_cast<prometheus::Gauge*>(it->second.metric));
  series_.erase(it);
}

double MetricsRegistry::Get(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(name);
  if (it == series_.end()) return 0;
  return it->second.type == Type::kCounter
             ? static_cast<prometheus::Counter*>(it->second.metric)->Value()
             : static_cast<prometheus::Gauge*>(it->second.metric)->Value();
}

void MetricsRegistry::AddCollector(std::function<void(MetricsRegistry&)> collector) {
  absl::MutexLock lock(&collectors_mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::RenderText() {
  {
    // Collectors call SetGauge, so they run under collectors_mu_ only.
    absl::MutexLock lock(&collectors_mu_);
    for (auto& collector : collectors_) collector(*this);
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

absl::StatusOr<std::string> MetricsListenAddress(absl::string_view metrics_listen,
                                                 absl::string_view ops_listen) {
  if (metrics_listen == "off") return std::string();
  if (!metrics_listen.empty()) return std::string(metrics_listen);
  if (ops_listen.empty()) return std::string();
  absl::StatusOr<HostPort> ops = ParseHostPort(ops_listen);
  if (!ops.ok() || ops->port == 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ops_listen ", ops_listen, " is not host:port with a port below 65535",
        ops.ok() ? "" : absl::StrCat(" (", ops.status().message(), ")"), "; set metrics_listen"));
  }
  return FormatHostPort(ops->host, ops->port == 0 ? 0 : ops->port + 1);
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsServer(const std::string& listen,
                                                               MetricsRegistry* metrics) {
  HttpServerOptions options;
  options.max_body_bytes = 0;  // a scrape sends no body
  options.max_connections = 64;
  options.threads = 1;
  return HttpServer::Start(
      listen, options,
      [metrics](HttpRequest request, HttpReply reply) {
        // The target may carry a query (Prometheus sends none; curl users might).
        absl::string_view path = request.target;
        path = path.substr(0, path.find('?'));
        if (path != "/metrics") {
          reply({404, {{"Content-Type", "text/plain"}}, "only /metrics is served here\n"});
        } else if (request.method != "GET") {
          reply({405, {{"Content-Type", "text/plain"}, {"Allow", "GET"}}, "GET only\n"});
        } else {
          reply({200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                 metrics->RenderText()});
        }
      },
      [](const absl::Status& why) {
        return HttpResponse{400, {{"Content-Type", "text/plain"}},
                            absl::StrCat(why.message(), "\n")};
      });
}

}  // namespace darvoza
