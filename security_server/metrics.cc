#include "security_server/metrics.h"

#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "common/faults.h"

namespace darvoza::ss {

MetricHelp SsMetricsHelp() {
  return {
      {"darvoza_ss_exchanges_total",
       "Exchanges finished, by role (consumer/provider), verified service and client, and fault "
       "(none: completed; other: a code that is not this server's own)."},
      {"darvoza_ss_exchange_duration_seconds",
       "Time from a request's arrival to its answer or refusal, by role."},
      {"darvoza_ss_audit_appends_total", "Exchange records the audit log made durable."},
      {"darvoza_ss_audit_append_failures_total",
       "Exchange records the audit log failed to write (the exchange was refused)."},
      {"darvoza_ss_audit_wal_syncs_total",
       "fsyncs of the audit log's write-ahead log (RocksDB WAL_FILE_SYNCED)."},
      {"darvoza_ss_audit_damaged", "1 when the audit log was unreadable at open."},
      {"darvoza_ss_audit_writable",
       "0 while the audit log cannot write (damaged, or its last write failed)."},
      {"darvoza_ss_audit_disk_bytes", "Bytes of the audit log's files."},
      {"darvoza_ss_audit_head_seq", "Sequence number of the newest audit record."},
      {"darvoza_ss_audit_last_seal_seq", "Last audit record covered by a seal."},
      {"darvoza_ss_audit_last_seal_timestamp_seconds", "Unix time of the last seal."},
      {"darvoza_ss_audit_unwitnessed_seals", "Seals without the registry's witness receipt."},
      {"darvoza_ss_audit_unwitnessed_age_seconds",
       "Age of the oldest seal without a witness receipt."},
      {"darvoza_ss_audit_witness_ok", "1 when the last witness attempt succeeded."},
      {"darvoza_ss_audit_witness_head_mismatch",
       "1 when the registry's witness refuses this server's seals (WitnessHeadMismatch)."},
      {"darvoza_ss_backend_calls_total", "Calls this provider made to backends."},
      {"darvoza_ss_certificate_expiry_seconds",
       "Seconds until each of this server's certificates expires (negative: expired)."},
      {"darvoza_ss_certificate_renewals_approved_total", "Certificate renewals approved."},
      {"darvoza_ss_certificate_renewals_submitted_total",
       "Certificate renewal requests sent to the registry."},
      {"darvoza_ss_consumer_calls_done_total", "gRPC client calls finished."},
      {"darvoza_ss_consumer_calls_total", "gRPC client calls received."},
      {"darvoza_ss_consumer_exchanges_ok_total", "Consumer exchanges answered by a service."},
      {"darvoza_ss_consumer_refusals_total", "Consumer exchanges refused, by fault."},
      {"darvoza_ss_consumer_rest_calls_total", "REST client calls received."},
      {"darvoza_ss_consumer_service_errors_total",
       "Consumer exchanges whose service answered with an error."},
      {"darvoza_ss_globalconf_accepted_total", "Global configurations accepted."},
      {"darvoza_ss_globalconf_refused_total",
       "Global configurations refused (bad signature, older serial, ...)."},
      {"darvoza_ss_globalconf_expiry_seconds",
       "Seconds until the held global configuration expires (negative: expired)."},
      {"darvoza_ss_globalconf_serial", "Serial of the held global configuration."},
      {"darvoza_ss_registry_reachable",
       "1 when the last contact with the registry succeeded, 0 otherwise (also before the "
       "first)."},
      {"darvoza_ss_handshake_refusals_total",
       "SS-to-SS TLS handshakes refused (peer not in the configuration)."},
      {"darvoza_ss_provider_handshake_refusals_total",
       "Handshakes this consumer refused to a provider's certificate."},
      {"darvoza_ss_maintenance", "1 in maintenance mode."},
      {"darvoza_ss_serving",
       "1 when the ops port's health is SERVING; 0 with reasons in darvoza ss status."},
      {"darvoza_ss_not_serving_reason",
       "1 for each reason health is NOT_SERVING now (no_configuration, configuration_expired, "
       "audit_log_cannot_write, maintenance)."},
      {"darvoza_ss_provider_calls_total", "SS-to-SS calls received."},
      {"darvoza_ss_signature_batch_size",
       "Envelopes covered by each signing: 1 for an ordinary signature, more for a batch "
       "signature (sum / count is the mean batch size)."},
      {"darvoza_ss_provider_channels", "Channels open to provider security servers."},
      {"darvoza_ss_provider_exchanges_ok_total", "Provider exchanges answered."},
      {"darvoza_ss_provider_refusals_total", "Provider exchanges refused, by fault."},
  };
}

namespace {

// Label values go into a series name between double quotes.
std::string Quoted(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

MetricsRegistry::MetricsRegistry() : ::darvoza::MetricsRegistry(SsMetricsHelp()) {}

void MetricsRegistry::AddCollector(std::function<void(MetricsRegistry&)> collector) {
  ::darvoza::MetricsRegistry::AddCollector(
      [collector = std::move(collector)](::darvoza::MetricsRegistry& m) {
        collector(static_cast<MetricsRegistry&>(m));
      });
}

std::string FaultLabel(absl::string_view fault) {
  if (fault.empty()) return "none";
  return faults::IsKnown(fault) ? std::string(fault) : "other";
}

ExchangeMetrics::ExchangeMetrics(::darvoza::MetricsRegistry* metrics)
    : metrics_(metrics),
      consumer_latency_(
          metrics->Histogram("darvoza_ss_exchange_duration_seconds", {{"role", "consumer"}})),
      provider_latency_(
          metrics->Histogram("darvoza_ss_exchange_duration_seconds", {{"role", "provider"}})) {}

void ExchangeMetrics::Count(ExchangeRole role, absl::string_view service,
                            absl::string_view client, absl::string_view fault,
                            absl::Duration took) {
  const bool consumer = role == ExchangeRole::kConsumer;
  metrics_->Increment(absl::StrCat("darvoza_ss_exchanges_total{role=\"",
                                   consumer ? "consumer" : "provider", "\",service=\"",
                                   Quoted(service), "\",client=\"", Quoted(client),
                                   "\",fault=\"", FaultLabel(fault), "\"}"));
  (consumer ? consumer_latency_ : provider_latency_).Observe(absl::ToDoubleSeconds(took));
}

}  // namespace darvoza::ss
