// MetricsRegistry: a daemon's counters, gauges and histograms, rendered as Prometheus text
// (docs/design.md §9) by prometheus-cpp's core: its registry and text serializer, not its
// CivetWeb exposer (the process's one HTTP server, common/http_server.h, serves the text).
//
// Two ways in:
//  - Handles, for hot paths: Counter()/Gauge()/Histogram() return a series that lives as long
//    as the registry; updating it is an atomic operation (a histogram: its own small lock),
//    never the registry's lock. Callers keep the reference.
//  - Names with labels, e.g. `darvoza_ss_handshake_refusals_total` or
//    `darvoza_ss_certificate_expiry_seconds{kind="auth"}`: Increment() finds the series in a
//    per-thread cache, so only the first increment of a series on a thread takes the lock;
//    SetGauge/Remove/Get take the lock (collectors and tests, not the exchange).
//
// Every family has a HELP line: the text given to the constructor for that family name, or
// kUndocumentedHelp (tests look for it to catch a family nobody described).
//
// Label values must come from a bounded set (identities the daemon authenticated, codes of its
// own): a caller that could choose a label value could grow the series without bound.
//
//   MetricsRegistry metrics({{"darvoza_x_total", "Things done."}});
//   prometheus::Counter& done = metrics.Counter("darvoza_x_total", {{"kind", "a"}});
//   done.Increment();
//   metrics.AddCollector([](MetricsRegistry& m) { m.SetGauge("darvoza_x_queue", 3); });
//   std::string text = metrics.RenderText();
//
// Thread-safe.
#ifndef DARVOZA_COMMON_METRICS_H_
#define DARVOZA_COMMON_METRICS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace darvoza {

using MetricLabels = std::map<std::string, std::string>;

// family name -> HELP text
using MetricHelp = std::map<std::string, std::string, std::less<>>;

inline constexpr absl::string_view kUndocumentedHelp = "Undocumented Darvoza metric.";

// Latency buckets in seconds, from a cached local call to a slow backend near its deadline.
std::vector<double> LatencyBuckets();

class MetricsRegistry {
 public:
  explicit MetricsRegistry(MetricHelp help = {});
  virtual ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The series `family`{labels}, created at 0 when new. The reference stays valid as long as
  // the registry. REQUIRES: `family` is not already a family of another type.
  prometheus::Counter& Counter(absl::string_view family, const MetricLabels& labels = {});
  prometheus::Gauge& Gauge(absl::string_view family, const MetricLabels& labels = {});
  // `buckets`: upper bounds, ascending; a family keeps the buckets of its first series.
  prometheus::Histogram& Histogram(absl::string_view family, const MetricLabels& labels,
                                   const std::vector<double>& buckets = LatencyBuckets());

  // Adds `delta` (>= 0) to counter `name` (family plus optional {labels}; created at 0).
  void Increment(absl::string_view name, double delta = 1);
  // Raises counter `name` to `total`, a count kept elsewhere (a RocksDB ticker, a store's
  // count), for collectors; never lowers it. Nothing else may increment that counter.
  void FollowCounter(absl::string_view name, double total);
  // Sets gauge `name` to `value`.
  void SetGauge(absl::string_view name, double value);
  // Removes a gauge series (e.g. a certificate that is gone). Counters stay.
  void Remove(absl::string_view name);
  // The current value of counter or gauge `name`; 0 when unknown.
  double Get(absl::string_view name) const;

  // `collector` runs (without the registry's lock held) at the start of every RenderText and
  // may call SetGauge/Remove. Collectors live as long as the registry.
  void AddCollector(std::function<void(MetricsRegistry&)> collector);

  // Prometheus text exposition format 0.0.4: # HELP and # TYPE per family, then its series.
  std::string RenderText();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct FamilyEntry {
    Type type;
    void* family;  // prometheus::Family<T>*, owned by registry_
  };
  struct Series {
    Type type;
    void* metric;  // prometheus::Counter* or prometheus::Gauge*, owned by registry_
  };

  void* FamilyLocked(absl::string_view family, Type type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Series* SeriesLocked(absl::string_view name, Type type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Tells apart registries in the per-thread caches, including one that reuses a freed one's
  // address.
  const uint64_t id_;
  const MetricHelp help_;
  const std::shared_ptr<prometheus::Registry> registry_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, FamilyEntry> families_ ABSL_GUARDED_BY(mu_);
  // By full series name (family{labels} as callers wrote it).
  absl::flat_hash_map<std::string, Series> series_ ABSL_GUARDED_BY(mu_);

  absl::Mutex collectors_mu_;
  std::vector<std::function<void(MetricsRegistry&)>> collectors_
      ABSL_GUARDED_BY(collectors_mu_);
};

// Where a daemon serves GET /metrics, from its `metrics_listen` and `ops_listen` settings:
// "off" turns it off; "" (the default) means the ops port's host and the next port (5591 beside
// 5590; port 0, a test's, stays 0), or off when the ops port is off; anything else is used as
// given. Returns "" for off. INVALID_ARGUMENT when "" and ops_listen is not host:port.
absl::StatusOr<std::string> MetricsListenAddress(absl::string_view metrics_listen,
                                                 absl::string_view ops_listen);

// Serves `metrics` on `listen` (host:port) through the process's HTTP server: GET /metrics
// answers the text format (version 0.0.4), any other path 404, any other method 405. No
// authentication: bind it to an address only the scrapers reach. `metrics` is not owned and
// must outlive the server. UNAVAILABLE when it cannot bind.
absl::StatusOr<std::unique_ptr<HttpServer>> StartMetricsServer(const std::string& listen,
                                                               MetricsRegistry* metrics);

}  // namespace darvoza

#endif  // DARVOZA_COMMON_METRICS_H_
