#include "registry/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/grpc_server.h"
#include "common/listen_file.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status_macros.h"
#include "registry/conf_publisher.h"
#include "registry/decision_waiters.h"
#include "registry/keys.h"
#include "registry/registry.h"
#include "registry/services.h"

namespace darvoza::registry {

absl::StatusOr<ListenAddresses> ReadListenFile(const std::string& data_dir) {
  DARVOZA_ASSIGN_OR_RETURN(auto listen, ::darvoza::ReadListenFile(data_dir));
  ListenAddresses a;
  a.public_address = listen["public"];
  a.admin_address = listen["admin"];
  a.ops_address = listen["ops"];
  a.metrics_address = listen["metrics"];
  if (a.public_address.empty() || a.admin_address.empty()) {
    return absl::NotFoundError("listen.json is incomplete");
  }
  return a;
}

RegistryServer::RegistryServer(const RegistryConfig& config, Clock* clock)
    : config_(config), clock_(clock) {}

RegistryServer::~RegistryServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<RegistryServer>> RegistryServer::Start(const RegistryConfig& config,
                                                                      Clock* clock) {
  std::unique_ptr<RegistryServer> server(new RegistryServer(config, clock));
  if (config.auto_approve) {
    log::Event(log::Level::kWarn, "auto_approve",
               "auto_approve = true: EVERY registration and hosting request is approved without "
               "an administrator. Demos and tests only!");
  }
  RegistryOptions options;
  options.data_dir = config.data_dir;
  options.conf_validity = config.conf_validity;
  options.cert_validity = config.cert_validity;
  options.auto_approve = config.auto_approve;
  options.auto_approve_renewals = config.auto_approve_renewals;
  options.max_pending_requests = static_cast<size_t>(config.max_pending_requests);
  options.clock = clock;
  DARVOZA_ASSIGN_OR_RETURN(server->registry_, Registry::Open(options));
  server->publisher_ = std::make_unique<ConfPublisher>();
  ConfPublisher* publisher = server->publisher_.get();
  server->registry_->AddConfListener(
      [publisher](std::shared_ptr<const v1::SignedGlobalConf> conf) { publisher->Publish(conf); });
  server->waiters_ = std::make_unique<DecisionWaiters>();
  DecisionWaiters* waiters = server->waiters_.get();
  server->registry_->AddDecisionListener(
      [waiters](const v1::RequestRecord& record) { waiters->Notify(record); });
  absl::Status started = server->StartServers();
  if (!started.ok()) {
    server->Shutdown();
    return started;
  }
  server->refresher_ = std::thread([s = server.get()] { s->RefreshLoop(); });
  return server;
}

absl::Status RegistryServer::StartServers() {
  DARVOZA_ASSIGN_OR_RETURN(std::string token, ReadAdminToken(AdminTokenPath(config_.data_dir)));
  DARVOZA_ASSIGN_OR_RETURN(auto tls, LoadTlsKeyPair(config_.data_dir));
  registration_service_ =
      std::make_unique<RegistrationServiceImpl>(registry_.get(), waiters_.get(), clock_);
  conf_service_ = std::make_unique<GlobalConfServiceImpl>(registry_.get(), publisher_.get());
  witness_service_ = std::make_unique<WitnessServiceImpl>(registry_.get());
  admin_service_ = std::make_unique<AdminServiceImpl>(registry_.get(), token);
  ops_service_ = std::make_unique<OpsServiceImpl>(registry_.get(), publisher_.get(), clock_);

  // The ops port carries the standard health service, the admin port reflection (grpcurl);
  // the other ports neither.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  {  // Public: server-authenticated TLS.
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({tls.first, tls.second});
    ssl.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    grpc::ServerBuilder builder;
    WithoutHealthOrReflection(builder);
    builder.SetMaxReceiveMessageSize(config_.max_request_bytes);
    builder.RegisterService(registration_service_.get());
    builder.RegisterService(conf_service_.get());
    builder.RegisterService(witness_service_.get());
    DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
                             StartServer(builder, "public", config_.public_listen,
                                         grpc::SslServerCredentials(ssl),
                                         config_.connection_limits));
    public_server_ = std::move(started.server);
    public_listener_ = std::move(started.listener);
    addresses_.public_address = started.address;
  }
  {  // Admin: Unix socket, mode 0600, inside the 0700 data directory; with reflection.
    std::string path = config_.AdminSocketPath();
    DARVOZA_RETURN_IF_ERROR(RemoveStaleUnixSocket(path));
    grpc::ServerBuilder builder;
    builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
    builder.SetMaxReceiveMessageSize(config_.max_request_bytes);
    builder.RegisterService(admin_service_.get());
    DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
                             StartServer(builder, "admin", absl::StrCat("unix:", path),
                                         grpc::InsecureServerCredentials(),
                                         config_.connection_limits));
    admin_server_ = std::move(started.server);
    if (chmod(path.c_str(), 0600) != 0) {
      return absl::InternalError(absl::StrCat("cannot chmod 0600 admin socket ", path));
    }
    addresses_.admin_address = absl::StrCat("unix:", path);
  }
  if (!config_.ops_listen.empty()) {  // Ops: read-only.
    grpc::ServerBuilder builder;
    builder.SetOption(std::make_unique<NoReflectionOption>());  // health stays: ops only
    builder.SetMaxReceiveMessageSize(4096);
    builder.RegisterService(ops_service_.get());
    DARVOZA_ASSIGN_OR_RETURN(StartedServer started,
                             StartServer(builder, "ops", config_.ops_listen,
                                         grpc::InsecureServerCredentials(),
                                         config_.connection_limits));
    ops_server_ = std::move(started.server);
    ops_listener_ = std::move(started.listener);
    addresses_.ops_address = started.address;
    ops_server_->GetHealthCheckService()->SetServingStatus(true);
  }
  DARVOZA_ASSIGN_OR_RETURN(std::string metrics_listen,
                           MetricsListenAddress(config_.metrics_listen, config_.ops_listen));
  if (!metrics_listen.empty()) {  // GET /metrics for Prometheus
    DARVOZA_ASSIGN_OR_RETURN(metrics_server_,
                             StartMetricsServer(metrics_listen, ops_service_->metrics()));
    addresses_.metrics_address = WithBoundPort(metrics_listen, metrics_server_->port());
  }
  DARVOZA_RETURN_IF_ERROR(WriteListenFile(config_.data_dir,
                                          {{"public", addresses_.public_address},
                                           {"admin", addresses_.admin_address},
                                           {"ops", addresses_.ops_address},
                                           {"metrics", addresses_.metrics_address}}));
  wrote_listen_file_ = true;
  return absl::OkStatus();
}

void RegistryServer::RefreshLoop() {
  // Re-sign check period: often enough for short validities, cheap otherwise.
  const absl::Duration period = std::min(absl::Seconds(1), config_.conf_validity / 10);
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), period)) break;
    mu_.Unlock();
    waiters_->ExpireDue(clock_->MonotonicNow());
    absl::StatusOr<bool> refreshed = registry_->RefreshConfIfDue();
    if (!refreshed.ok()) {
      log::Event(log::Level::kError, "conf.resign_failed", "re-signing the configuration failed",
                 {{"error", refreshed.status().ToString()}});
    }
    mu_.Lock();
  }
}

void RegistryServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (refresher_.joinable()) refresher_.join();
  if (publisher_) publisher_->Close();
  if (waiters_) waiters_->Close();
  // No new connections first: a listener hands descriptors to its server.
  public_listener_.reset();
  ops_listener_.reset();
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  if (public_server_) public_server_->Shutdown(deadline);
  if (admin_server_) admin_server_->Shutdown(deadline);
  if (ops_server_) ops_server_->Shutdown(deadline);
  if (metrics_server_) metrics_server_->Shutdown(absl::Seconds(1));
  if (publisher_) publisher_->WaitUntilEmpty(absl::Seconds(5));
  public_server_.reset();
  admin_server_.reset();
  ops_server_.reset();
  if (wrote_listen_file_) unlink(ListenFilePath(config_.data_dir).c_str());
  if (!addresses_.admin_address.empty()) unlink(config_.AdminSocketPath().c_str());
  registry_.reset();
}

}  // namespace darvoza::registry
