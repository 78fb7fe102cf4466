// The security server's metrics (docs/design.md §9): the process's MetricsRegistry
// (common/metrics.h, prometheus-cpp) with the HELP text of every darvoza_ss_* family, and the
// exchange outcome counters and latency histograms the exchange updates on its hot path.
//
//   auto metrics = std::make_unique<MetricsRegistry>();
//   metrics->Increment("darvoza_ss_handshake_refusals_total");
//   ExchangeMetrics exchanges(metrics);
//   exchanges.Count(ExchangeRole::kProvider, service, client, FaultCode(status), took);
//
// Thread-safe.
#ifndef DARVOZA_SECURITY_SERVER_METRICS_H_
#define DARVOZA_SECURITY_SERVER_METRICS_H_

#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"

namespace darvoza::ss {

// The HELP text of every darvoza_ss_* family.
MetricHelp SsMetricsHelp();

// A MetricsRegistry with SsMetricsHelp(), whose collectors see it as what it is.
class MetricsRegistry final : public ::darvoza::MetricsRegistry {
 public:
  MetricsRegistry();
  void AddCollector(std::function<void(MetricsRegistry&)> collector);
};

// The label value of a series whose identity was not verified (or not known) when it was
// counted: every such exchange shares it, so no caller can add series.
inline constexpr absl::string_view kUnverifiedLabel = "-";

// `fault` when it is one of this SS's own fault codes (common/faults.h), "none" for "",
// "other" for anything else (a peer's or backend's text).
std::string FaultLabel(absl::string_view fault);

enum class ExchangeRole { kConsumer, kProvider };

// darvoza_ss_exchanges_total{role,service,client,fault} and
// darvoza_ss_exchange_duration_seconds{role}. The histograms' handles are taken once here.
class ExchangeMetrics {
 public:
  // `metrics` is not owned and must outlive this.
  explicit ExchangeMetrics(::darvoza::MetricsRegistry* metrics);

  // One finished exchange. `service` and `client`: text forms the SS verified (the client
  // authenticated or its signature checked; the service answered or is served here), or
  // kUnverifiedLabel. `fault`: FaultCode of the refusal, "" when the exchange completed.
  // `took`: monotonic time from the request's arrival.
  void Count(ExchangeRole role, absl::string_view service, absl::string_view client,
             absl::string_view fault, absl::Duration took);

 private:
  ::darvoza::MetricsRegistry* const metrics_;
  prometheus::Histogram& consumer_latency_;
  prometheus::Histogram& provider_latency_;
};

}  // namespace darvoza::ss

#endif  // DARVOZA_SECURITY_SERVER_METRICS_H_
