// MetricsRegistry: the security server's counters and gauges, rendered as Prometheus text on
// the ops port (docs/design.md §9).
//
// Names are full Prometheus series names, labels included, e.g.
// `darvoza_ss_handshake_refusals_total` or
// `darvoza_ss_certificate_expiry_seconds{kind="auth"}`. Values that are cheapest computed when
// scraped (seconds until expiry) come from collectors run at the start of each rendering.
//
//   metrics->Increment("darvoza_ss_handshake_refusals_total");
//   metrics->SetGauge("darvoza_ss_globalconf_serial", conf.serial());
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_METRICS_H_
#define DARVOZA_SECURITY_SERVER_METRICS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace darvoza::ss {

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Adds `delta` to counter `name` (created at 0).
  void Increment(absl::string_view name, double delta = 1);
  // Sets gauge `name` to `value`.
  void SetGauge(absl::string_view name, double value);
  // Removes a series (e.g. a certificate that is gone).
  void Remove(absl::string_view name);
  // The current value of `name`; 0 when unknown.
  double Get(absl::string_view name) const;

  // `collector` runs (without the registry's lock held) at the start of every RenderText and
  // may call SetGauge/Remove. Collectors live as long as the registry.
  void AddCollector(std::function<void(MetricsRegistry&)> collector);

  // Prometheus text exposition: one `# TYPE` line per metric family, then the series, sorted.
  std::string RenderText();

 private:
  struct Series {
    double value = 0;
    bool counter = false;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Series, std::less<>> series_ ABSL_GUARDED_BY(mu_);
  absl::Mutex collectors_mu_;
  std::vector<std::function<void(MetricsRegistry&)>> collectors_
      ABSL_GUARDED_BY(collectors_mu_);
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_METRICS_H_
