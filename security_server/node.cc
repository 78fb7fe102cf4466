#include "security_server/node.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>

#include <rocksdb/statistics.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/audit_log.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/grpc_thread.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/files.h"
#include "common/globalconf.h"
#include "common/grpc_server.h"
#include "common/listen_file.h"
#include "common/metrics.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "common/tls.h"
#include "security_server/admin_recorder.h"
#include "security_server/admin_service.h"
#include "security_server/peer_check.h"
#include "security_server/provisioning.h"
#include "security_server/registry_client.h"
#include "security_server/renewal.h"
#include "security_server/state_store.h"

namespace darvoza::ss {
namespace {


// A builder for a port that carries only its own services: no health, no reflection.
void BareServer(grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(kMaxSecurityServerMessageBytes);
  WithoutHealthOrReflection(builder);
}

bool IsLoopback(const std::string& listen) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(listen);
  return parsed.ok() && IsLoopbackHost(parsed->host);
}

}  // namespace

absl::StatusOr<NodeAddresses> ReadListenFile(const std::string& data_dir) {
  DARVOZA_ASSIGN_OR_RETURN(auto listen, ::darvoza::ReadListenFile(data_dir));
  NodeAddresses a;
  a.ss = listen["ss"];
  a.client = listen["client"];
  a.client_tls = listen["client_tls"];
  a.rest = listen["rest"];
  a.rest_tls = listen["rest_tls"];
  a.admin = listen["admin"];
  a.ops = listen["ops"];
  a.metrics = listen["metrics"];
  if (a.ss.empty() || a.admin.empty()) {
    return absl::NotFoundError(absl::StrCat(data_dir, "/listen.json is incomplete"));
  }
  return a;
}

Node::Node(const SsConfig& config, Clock* clock) : config_(config), clock_(clock) {}

Node::~Node() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const SsConfig& config, Clock* clock) {
  return StartForTest(config, clock, nullptr);
}

absl::StatusOr<std::unique_ptr<Node>> Node::StartForTest(const SsConfig& config, Clock* clock,
                                                         rocksdb::Env* audit_env) {
  RestrictTlsToVersion13();  // before any credentials (common/tls.h)
  std::unique_ptr<Node> node(new Node(config, clock != nullptr ? clock : Clock::Real()));
  node->audit_env_ = audit_env;
  DARVOZA_RETURN_IF_ERROR(node->Open());
  DARVOZA_RETURN_IF_ERROR(node->StartServers());
  DARVOZA_RETURN_IF_ERROR(node->WriteListenFile());
  // A new configuration can end no_configuration or configuration_expired at once; registered
  // after StartServers, so the listener sees the ops server.
  node->conf_->AddListener(
      [n = node.get()](std::shared_ptr<const v1::GlobalConf>) { n->RefreshHealth(); });
  node->wrote_listen_file_ = true;
  node->renewal_thread_ = std::thread([n = node.get()] { n->RenewalLoop(); });
  node->health_thread_ = std::thread([n = node.get()] { n->HealthLoop(); });
  return node;
}

absl::Status Node::Open() {
  DARVOZA_ASSIGN_OR_RETURN(self_, ParseSecurityServerId(config_.server_id));
  if (!config_.client_listen.empty() && !IsLoopback(config_.client_listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("client_listen ", config_.client_listen,
                     " is not a loopback address: the plaintext client port is for development "
                     "on one machine only; use client_tls_listen"));
  }
  if (!config_.rest_listen.empty() && !IsLoopback(config_.rest_listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("rest_listen ", config_.rest_listen,
                     " is not a loopback address: the plaintext REST port is for information "
                     "systems on the same machine only"));
  }
  DARVOZA_ASSIGN_OR_RETURN(v1::ConfigurationAnchor anchor,
                           LoadConfigurationAnchor(config_.AnchorPath()));
  DARVOZA_ASSIGN_OR_RETURN(std::string token, ReadAdminToken(config_.data_dir));
  metrics_ = std::make_unique<MetricsRegistry>();
  DARVOZA_ASSIGN_OR_RETURN(keys_, KeyStore::Open(config_.data_dir, anchor.root_ca_cert_der()));
  DARVOZA_RETURN_IF_ERROR(keys_->AuthCert().status());
  DARVOZA_ASSIGN_OR_RETURN(store_, StateStore::Open(config_.data_dir + "/state"));
  DARVOZA_ASSIGN_OR_RETURN(state_, LocalState::Open(store_.get()));
  registry_ = RegistryClient::Create(anchor, config_.registry_addresses);
  witness_ = std::make_unique<RegistryWitness>(registry_.get());

  GlobalConfClientOptions conf_options;
  conf_options.data_dir = config_.data_dir;
  conf_options.anchor = anchor;
  conf_options.registry_addresses = config_.registry_addresses;
  conf_options.poll_interval = config_.conf_poll_interval;
  conf_options.clock = clock_;
  conf_options.metrics = metrics_.get();
  DARVOZA_ASSIGN_OR_RETURN(conf_, GlobalConfClient::Create(std::move(conf_options)));

  audit::AuditLogOptions audit_options;
  audit_options.path = config_.data_dir + "/audit";
  audit_options.server = self_;
  audit_options.clock = clock_;
  audit_options.env = audit_env_;
  if (auto seal = keys_->SealSigner(); seal.ok()) {
    seal_signer_ = seal->signer;
    audit_options.seal_signer = seal_signer_.get();
    audit_options.seal_cert_der = seal->cert->der();
    seal_cert_sha256_ = seal->cert->sha256();
    audit_options.witness = witness_.get();
  }
  audit_options.open_damaged = true;
  // The calls an append answers are finished on gRPC's threads, not the writer's: the writer
  // goes on to the next group commit (docs/design.md §7). Answered still means durable: a
  // waited append's callback is handed over only after its batch is synced.
  audit_options.run_completions = RunOnGrpcThread;
  audit_options.on_witness_status_change = [](const absl::Status& status) {
    if (FaultCode(status) == faults::kWitnessHeadMismatch) {
      // The event the witness exists to catch: the log no longer continues what the registry
      // holds for this server (a restored backup, a rewritten or forked log).
      log::Event(log::Level::kError, "audit.alarm",
                 absl::StrCat("ALARM: the registry's witness refused our seal: ",
                              status.message(),
                              "; new seals stay unwitnessed until this is resolved "
                              "(docs/operator.md, audit log alarms)"),
                 {{"fault", FaultCode(status)}});
    } else if (status.ok()) {
      log::Event(log::Level::kInfo, "witness.ok", "audit seals are witnessed again");
    } else {
      log::Event(log::Level::kWarn, "witness.failed", "audit seal not witnessed",
                 {{"fault", FaultCode(status)}, {"error", status.ToString()}});
    }
  };
  DARVOZA_ASSIGN_OR_RETURN(audit_, audit::AuditLog::Open(audit_options));
  if (auto health = audit_->Health(); health.ok() && !health->damage.ok()) {
    audit_damage_ = health->damage;
    log::Event(log::Level::kError, "audit.alarm",
               absl::StrCat("ALARM: the audit log is damaged (", audit_damage_.message(),
                            "): every exchange and administrative change is refused and "
                            "health is NOT_SERVING; repair it as docs/operator.md describes (a "
                            "damaged audit log)"),
               {{"fault", FaultCode(audit_damage_)}});
  }
  recorder_ = std::make_unique<AuditLogAdminRecorder>(audit_.get());
  client_auth_ = std::make_unique<ClientAuthenticator>(state_.get());

  RenewerOptions renew;
  renew.self = self_;
  renew.address = config_.AdvertisedAddress();
  renew.margin = config_.renewal_margin;
  renew.warning = config_.expiry_warning;
  renew.clock = clock_;
  renew.keys = keys_.get();
  renew.registry = registry_.get();
  renew.conf = conf_.get();
  renew.store = store_.get();
  renew.metrics = metrics_.get();
  renewer_ = std::make_unique<Renewer>(std::move(renew));
  conf_->AddListener([r = renewer_.get()](std::shared_ptr<const v1::GlobalConf> conf) {
    r->OnConf(*conf);
  });
  if (auto conf = conf_->LastGood(); conf != nullptr) renewer_->OnConf(*conf);

  metrics_->AddCollector([this](MetricsRegistry& m) {
    absl::Time now = clock_->Now();
    for (const auto& cert : keys_->Describe()) {
      if (cert.not_after_unix_nanos() == 0) continue;
      std::string labels = cert.kind() == "signing"
                               ? absl::StrCat("{kind=\"signing\",member=\"",
                                              FormatMemberId(cert.member()), "\"}")
                               : absl::StrCat("{kind=\"", cert.kind(), "\"}");
      m.SetGauge(absl::StrCat("darvoza_ss_certificate_expiry_seconds", labels),
                 absl::ToDoubleSeconds(FromUnixNanosField(cert.not_after_unix_nanos()) - now));
    }
    m.SetGauge("darvoza_ss_maintenance", maintenance_.load() ? 1 : 0);
    m.SetGauge("darvoza_ss_audit_damaged", audit_damage_.ok() ? 0 : 1);
    m.SetGauge("darvoza_ss_audit_writable",
               audit_damage_.ok() && audit_->write_status().ok() ? 1 : 0);
    std::vector<std::string> reasons = NotServingReasons();
    m.SetGauge("darvoza_ss_serving", reasons.empty() ? 1 : 0);
    for (absl::string_view key : {"no_configuration", "configuration_expired",
                                  "audit_log_cannot_write", "maintenance"}) {
      bool holds = std::any_of(reasons.begin(), reasons.end(), [key](const std::string& r) {
        return absl::StartsWith(r, absl::StrCat(key, ":"));
      });
      m.SetGauge(absl::StrCat("darvoza_ss_not_serving_reason{reason=\"", key, "\"}"),
                 holds ? 1 : 0);
    }
    m.FollowCounter("darvoza_ss_audit_wal_syncs_total",
                    static_cast<double>(audit_->Ticker(rocksdb::WAL_FILE_SYNCED)));
    auto health = audit_->Health();
    if (!health.ok()) return;  // a closed store after a failed write: the gauges keep their last
    m.SetGauge("darvoza_ss_audit_head_seq", static_cast<double>(health->head_seq));
    m.SetGauge("darvoza_ss_audit_last_seal_seq", static_cast<double>(health->last_seal_seq));
    m.SetGauge("darvoza_ss_audit_last_seal_timestamp_seconds",
               health->last_seal_seq == 0 ? 0 : absl::ToUnixSeconds(health->last_sealed_at));
    m.SetGauge("darvoza_ss_audit_unwitnessed_seals",
               static_cast<double>(health->unwitnessed_seals));
    m.SetGauge("darvoza_ss_audit_unwitnessed_age_seconds",
               absl::ToDoubleSeconds(health->unwitnessed_age));
    m.SetGauge("darvoza_ss_audit_disk_bytes", static_cast<double>(health->disk_bytes));
    m.SetGauge("darvoza_ss_audit_witness_ok", health->witness.ok() ? 1 : 0);
    m.SetGauge("darvoza_ss_audit_witness_head_mismatch",
               FaultCode(health->witness) == faults::kWitnessHeadMismatch ? 1 : 0);
  });
  metrics_->Increment("darvoza_ss_handshake_refusals_total", 0);
  metrics_->Increment("darvoza_ss_audit_appends_total", 0);
  metrics_->Increment("darvoza_ss_audit_append_failures_total", 0);

  services_.self = self_;
  services_.clock = clock_;
  services_.conf = conf_.get();
  services_.keys = keys_.get();
  services_.state = state_.get();
  services_.audit = audit_.get();
  services_.client_auth = client_auth_.get();
  services_.metrics = metrics_.get();
  services_.batch_signatures = config_.batch_signatures;
  DARVOZA_ASSIGN_OR_RETURN(exchange_, CreateExchange(services_));

  AdminServiceDeps deps;
  deps.token = token;
  deps.self = self_;
  deps.state = state_.get();
  deps.registry = registry_.get();
  deps.recorder = recorder_.get();
  deps.status = [this] { return Status(); };
  deps.set_maintenance = [this](bool on) { SetMaintenance(on); };
  admin_service_ = std::make_unique<AdminServiceImpl>(std::move(deps));
  ops_service_ = std::make_unique<OpsServiceImpl>(metrics_.get());
  conf_->Start();
  log::Event(log::Level::kInfo, "registry.addresses", "dialling the registry",
             {{"registry", RegistryChoice()}});
  return absl::OkStatus();
}

std::string Node::RegistryChoice() const {
  std::string used = absl::StrJoin(conf_->registry_addresses(), ", ");
  if (config_.registry_addresses.empty()) return absl::StrCat(used, " (from the anchor)");
  v1::ConfigurationAnchor anchor = conf_->anchor();
  return absl::StrCat(used, " (ss.toml registry_addresses; the anchor says ",
                      absl::StrJoin(anchor.registry_addresses(), ", "), ")");
}

absl::Status Node::ReloadAnchor() {
  auto anchor = LoadConfigurationAnchor(config_.AnchorPath());
  absl::Status s = anchor.status();
  if (s.ok() && anchor->root_ca_cert_der() != conf_->anchor().root_ca_cert_der()) {
    // Our certificates chain to the old root: another root means another federation.
    s = absl::InvalidArgumentError(
        "its root CA is not the one this server's certificates chain to (re-initialise the "
        "server to join another federation)");
  }
  if (s.ok()) s = conf_->ReplaceAnchor(*anchor, config_.registry_addresses);
  if (!s.ok()) {
    log::Event(log::Level::kWarn, "anchor.refused", "SIGHUP: kept the anchor in use",
               {{"anchor", config_.AnchorPath()}, {"error", s.message()}});
    return s;
  }
  registry_->Reset(*anchor, config_.registry_addresses);
  log::Event(log::Level::kInfo, "anchor.reloaded", "SIGHUP: re-read the anchor",
             {{"anchor", config_.AnchorPath()},
              {"instance", anchor->instance()},
              {"signing_certificates", anchor->conf_signing_cert_der_size()},
              {"registry", RegistryChoice()}});
  return absl::OkStatus();
}

absl::Status Node::StartServers() {
  // SS↔SS: mutual TLS, the peer checked in the handshake against the configuration.
  {
    grpc::ServerBuilder builder;
    BareServer(builder);
    if (grpc::Service* service = exchange_->SsToSsService(); service != nullptr) {
      builder.RegisterService(service);
    }
    if (auto* fallback = exchange_->SsToSsFallbackService(); fallback != nullptr) {
      builder.RegisterCallbackGenericService(fallback);
    }
    DARVOZA_ASSIGN_OR_RETURN(
        StartedServer started,
        StartServer(builder, "SS-to-SS", config_.ss_listen,
                    MakeSsToSsServerCredentials(*keys_, conf_.get(), clock_, metrics_.get(),
                                                config_.tls_refresh_seconds),
                    config_.connection_limits));
    ss_server_ = std::move(started.server);
    ss_listener_ = std::move(started.listener);
    addresses_.ss = started.address;
  }
  // Client ports: nothing but the exchange's generic pass-through service.
  if (!config_.client_listen.empty()) {
    grpc::ServerBuilder builder;
    BareServer(builder);
    if (auto* generic = exchange_->ClientGenericService(/*tls_port=*/false); generic != nullptr) {
      builder.RegisterCallbackGenericService(generic);
    }
    DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
                             StartServer(builder, "client", config_.client_listen,
                                         grpc::InsecureServerCredentials(),
                    config_.connection_limits));
    client_server_ = std::move(started.server);
    client_listener_ = std::move(started.listener);
    addresses_.client = started.address;
  }
  if (!config_.client_tls_listen.empty()) {
    grpc::ServerBuilder builder;
    BareServer(builder);
    if (auto* generic = exchange_->ClientGenericService(/*tls_port=*/true); generic != nullptr) {
      builder.RegisterCallbackGenericService(generic);
    }
    DARVOZA_ASSIGN_OR_RETURN(
        StartedServer started,
        StartServer(builder, "client TLS", config_.client_tls_listen,
                    MakeClientTlsServerCredentials(*keys_, config_.tls_refresh_seconds),
                    config_.connection_limits));
    client_tls_server_ = std::move(started.server);
    client_tls_listener_ = std::move(started.listener);
    addresses_.client_tls = started.address;
  }
  // REST: the exchange's PR-REST interface on the process's HTTP server, plaintext and TLS.
  Exchange* exchange = exchange_.get();
  for (const bool tls : {false, true}) {
    const std::string& listen = tls ? config_.rest_tls_listen : config_.rest_listen;
    if (listen.empty()) continue;
    HttpServerOptions options;
    options.max_body_bytes = kMaxPassThroughBodyBytes;
    if (tls) {
      // The files the client TLS port serves, re-read by the server when they change.
      options.tls = HttpServerTlsOptions{keys_->AuthKeyPath(), keys_->AuthCertPath(),
                                         /*request_client_certificate=*/true};
    }
    DARVOZA_ASSIGN_OR_RETURN(
        std::unique_ptr<HttpServer> server,
        HttpServer::Start(
            listen, options,
            [exchange](HttpRequest request, HttpReply reply) {
              exchange->ServeRest(std::move(request), std::move(reply));
            },
            [exchange](const absl::Status& status) { return exchange->RestRefusal(status); }));
    (tls ? addresses_.rest_tls : addresses_.rest) = WithBoundPort(listen, server->port());
    (tls ? rest_tls_server_ : rest_server_) = std::move(server);
  }
  // Admin: Unix socket 0600 (in the 0700 data directory) + token; reflection for grpcurl.
  {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    std::string path = config_.AdminSocketPath();
    DARVOZA_RETURN_IF_ERROR(RemoveStaleUnixSocket(path));
    grpc::ServerBuilder builder;
    builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
    builder.RegisterService(admin_service_.get());
    DARVOZA_ASSIGN_OR_RETURN(
        StartedServer started,
        StartServer(builder, "admin", "unix:" + path, grpc::InsecureServerCredentials(),
                    config_.connection_limits));
    admin_server_ = std::move(started.server);
    if (chmod(path.c_str(), 0600) != 0) {
      return absl::InternalError(absl::StrCat("cannot chmod 0600 ", path));
    }
    addresses_.admin = "unix:" + path;
  }
  // Ops: health (maintenance mode) and metrics; no client authentication; read only.
  if (!config_.ops_listen.empty()) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.SetOption(std::make_unique<NoReflectionOption>());
    builder.RegisterService(ops_service_.get());
    DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
                             StartServer(builder, "ops", config_.ops_listen,
                                         grpc::InsecureServerCredentials(),
                    config_.connection_limits));
    ops_server_ = std::move(started.server);
    ops_listener_ = std::move(started.listener);
    addresses_.ops = started.address;
    RefreshHealth();
  }
  // Metrics: GET /metrics on the process's HTTP server, for Prometheus.
  DARVOZA_ASSIGN_OR_RETURN(std::string metrics_listen,
                           MetricsListenAddress(config_.metrics_listen, config_.ops_listen));
  if (!metrics_listen.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(metrics_server_, StartMetricsServer(metrics_listen, metrics_.get()));
    addresses_.metrics = WithBoundPort(metrics_listen, metrics_server_->port());
  }
  return absl::OkStatus();
}

absl::Status Node::WriteListenFile() {
  return ::darvoza::WriteListenFile(
      config_.data_dir, {{"ss", addresses_.ss}, {"client", addresses_.client},
                         {"client_tls", addresses_.client_tls}, {"rest", addresses_.rest},
                         {"rest_tls", addresses_.rest_tls},
                         {"admin", addresses_.admin},
                         {"ops", addresses_.ops}, {"metrics", addresses_.metrics}});
}

void Node::RenewalLoop() {
  while (true) {
    absl::Status s = renewer_->Step();
    if (!s.ok()) {
      log::Event(log::Level::kWarn, "renewal.failed", "certificate renewal",
                 {{"fault", FaultCode(s)}, {"error", s.ToString()}});
    }
    for (const auto& warning : renewer_->Warnings()) {
      log::Event(log::Level::kWarn, "certificate.expiry", warning);
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), config_.renewal_check_interval);
    if (stopping_) return;
  }
}

absl::Status Node::CheckRenewalForTest() { return renewer_->Step(); }

void Node::SetMaintenance(bool on) {
  maintenance_.store(on);
  RefreshHealth();
}

std::vector<std::string> Node::NotServingReasons() {
  std::vector<std::string> reasons;
  if (auto conf = conf_->LastGood(); conf == nullptr) {
    reasons.push_back(
        "no_configuration: no global configuration received from the registry yet");
  } else if (FromUnixNanosField(conf->expires_at_unix_nanos()) <= clock_->Now()) {
    reasons.push_back(absl::StrCat("configuration_expired: global configuration ",
                                   conf->serial(), " expired at ",
                                   absl::FormatTime(FromUnixNanosField(
                                       conf->expires_at_unix_nanos()))));
  }
  if (!audit_damage_.ok()) {
    reasons.push_back(
        absl::StrCat("audit_log_cannot_write: damaged: ", audit_damage_.message()));
  } else if (absl::Status written = audit_->write_status(); !written.ok()) {
    reasons.push_back(
        absl::StrCat("audit_log_cannot_write: the last write failed: ", written.message()));
  }
  if (maintenance_.load()) reasons.push_back("maintenance: set by the administrator");
  return reasons;
}

void Node::RefreshHealth() {
  if (ops_server_ == nullptr) return;
  if (auto* health = ops_server_->GetHealthCheckService(); health != nullptr) {
    health->SetServingStatus(NotServingReasons().empty());
  }
}

void Node::HealthLoop() {
  while (true) {
    RefreshHealth();
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), kHealthRecheck);
    if (stopping_) return;
  }
}

v1::StatusReport Node::Status() {
  v1::StatusReport report;
  absl::Time now = clock_->Now();
  *report.mutable_server() = self_;
  report.set_instance(conf_->anchor().instance());
  report.set_now_unix_nanos(ToUnixNanosField(now));
  report.set_maintenance(maintenance_.load());
  for (std::string& reason : NotServingReasons()) report.add_not_serving_reasons(std::move(reason));
  report.set_serving(report.not_serving_reasons().empty());
  std::string pending = renewer_->PendingRequestId();
  for (auto& cert : keys_->Describe()) {
    if (cert.pending_renewal()) cert.set_renewal_request_id(pending);
    *report.add_certificates() = std::move(cert);
  }
  if (auto conf = conf_->LastGood(); conf != nullptr) {
    report.set_conf_serial(conf->serial());
    report.set_conf_expires_at_unix_nanos(conf->expires_at_unix_nanos());
    report.set_conf_expired(FromUnixNanosField(conf->expires_at_unix_nanos()) <= now);
    for (const auto& server : conf->security_servers()) {
      if (!SameSecurityServer(server.id(), self_)) continue;
      report.set_listed_in_conf(true);
      for (const auto& s : server.hosted_subsystems()) *report.add_hosted_in_conf() = s;
    }
    if (report.conf_expired()) {
      report.add_warnings(absl::StrCat("global configuration ", conf->serial(),
                                       " has expired: exchanges are refused"));
    }
  } else {
    report.add_warnings("no global configuration yet");
  }
  report.set_registry_reachable(conf_->registry_reachable());
  for (const auto& a : conf_->registry_addresses()) report.add_registry_addresses(a);
  report.set_registry_choice(RegistryChoice());
  if (absl::Status e = conf_->registry_error(); !e.ok()) {
    report.set_registry_error(std::string(e.message()));
  }
  if (conf_->last_registry_contact() != absl::InfinitePast()) {
    report.set_last_registry_contact_unix_nanos(ToUnixNanosField(conf_->last_registry_contact()));
  }
  for (const auto& w : renewer_->Warnings()) report.add_warnings(w);
  FillAuditStatus(report);
  // The audit log takes its seal key at open: a renewed seal certificate is used from the next
  // start of the daemon on.
  if (auto seal = keys_->SealSigner(); seal.ok() && !seal_cert_sha256_.empty() &&
                                       seal->cert->sha256() != seal_cert_sha256_) {
    report.add_warnings(
        "the seal certificate was renewed: restart darvoza-ss before the old one expires so "
        "that the audit log seals with the new one");
  }
  return report;
}

void Node::FillAuditStatus(v1::StatusReport& report) {
  v1::AuditLogStatus* out = report.mutable_audit();
  if (!audit_damage_.ok()) {
    out->set_damaged(true);
    out->set_damage(std::string(audit_damage_.message()));
    report.add_warnings(absl::StrCat(
        "the audit log is damaged (", audit_damage_.message(),
        "): exchanges are refused; see docs/operator.md, a damaged audit log"));
  }
  auto health = audit_->Health();
  if (!health.ok()) {
    report.add_warnings(absl::StrCat("audit log: ", health.status().message()));
    return;
  }
  out->set_head_seq(health->head_seq);
  out->set_last_seal_seq(health->last_seal_seq);
  if (health->last_seal_seq != 0) {
    out->set_last_sealed_at_unix_nanos(ToUnixNanosField(health->last_sealed_at));
  }
  out->set_unwitnessed_seals(health->unwitnessed_seals);
  out->set_unwitnessed_age_nanos(absl::ToInt64Nanoseconds(health->unwitnessed_age));
  out->set_disk_bytes(health->disk_bytes);
  out->set_witness_code(static_cast<int32_t>(health->witness.code()));
  out->set_witness_fault(FaultCode(health->witness));
  out->set_witness_message(std::string(health->witness.message()));
  if (FaultCode(health->witness) == faults::kWitnessHeadMismatch) {
    report.add_warnings(
        "the registry's witness refuses this server's seals (WitnessHeadMismatch): the audit "
        "log does not continue the head the registry holds; see docs/operator.md, audit log "
        "alarms");
  }
}

void Node::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (health_thread_.joinable()) health_thread_.join();  // it touches the ops server
  if (exchange_ != nullptr) exchange_->Shutdown();
  // REST calls in flight get up to 5 s to answer; then the port is gone before the exchange.
  if (rest_server_ != nullptr) rest_server_->Shutdown(absl::Seconds(5));
  if (rest_tls_server_ != nullptr) rest_tls_server_->Shutdown(absl::Seconds(5));
  if (metrics_server_ != nullptr) metrics_server_->Shutdown(absl::Seconds(1));
  // No new connections first: a listener hands descriptors to its server.
  for (auto* listener : {&client_listener_, &client_tls_listener_, &ss_listener_, &ops_listener_}) {
    listener->reset();
  }
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  for (auto* server : {&client_server_, &client_tls_server_, &ss_server_, &admin_server_,
                       &ops_server_}) {
    if (*server != nullptr) (*server)->Shutdown(deadline);
  }
  if (renewal_thread_.joinable()) renewal_thread_.join();
  if (conf_ != nullptr) conf_->Shutdown();
  for (auto* server : {&client_server_, &client_tls_server_, &ss_server_, &admin_server_,
                       &ops_server_}) {
    if (*server != nullptr) (*server)->Wait();
  }
  // Scripts wait for listen.json to go as the sign that the daemon stopped cleanly.
  if (wrote_listen_file_) unlink(ListenFilePath(config_.data_dir).c_str());
}

}  // namespace darvoza::ss
