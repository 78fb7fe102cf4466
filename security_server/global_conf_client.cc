#include "security_server/global_conf_client.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/log.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/files.h"
#include "security_server/metrics.h"
#include "security_server/registry_client.h"

namespace darvoza::ss {
namespace {

std::string ConfPath(const std::string& data_dir) { return data_dir + "/globalconf.bin"; }

}  // namespace

GlobalConfClient::GlobalConfClient(GlobalConfClientOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
      anchor_(options_.anchor) {}

absl::StatusOr<std::unique_ptr<GlobalConfClient>> GlobalConfClient::Create(
    GlobalConfClientOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir is required");
  std::unique_ptr<GlobalConfClient> client(new GlobalConfClient(std::move(options)));
  client->registry_ =
      RegistryClient::Create(client->options_.anchor, client->options_.registry_addresses);
  auto bytes = ReadWholeFile(ConfPath(client->options_.data_dir));
  if (bytes.ok()) {
    v1::SignedGlobalConf signed_conf;
    if (!signed_conf.ParseFromString(*bytes)) {
      log::Event(log::Level::kWarn, "conf.stored_ignored", "the stored configuration does not parse",
                 {{"file", ConfPath(client->options_.data_dir)}});
    } else {
      absl::StatusOr<v1::GlobalConf> conf =
          VerifySignedGlobalConf(signed_conf, client->options_.anchor, client->clock_->Now());
      if (!conf.ok() && FaultCode(conf.status()) == faults::kConfigurationExpired) {
        // Keep an expired copy (Current() then reports expiry, not absence), provided it was
        // genuine while it lived.
        v1::GlobalConf parsed;
        if (parsed.ParseFromString(signed_conf.conf())) {
          conf = VerifySignedGlobalConf(
              signed_conf, client->options_.anchor,
              FromUnixNanosField(parsed.expires_at_unix_nanos()) - absl::Nanoseconds(1));
        }
      }
      if (conf.ok()) {
        absl::MutexLock lock(&client->mu_);
        client->conf_ = std::make_shared<const v1::GlobalConf>(*std::move(conf));
        client->signed_ = std::make_shared<const v1::SignedGlobalConf>(std::move(signed_conf));
      } else {
        log::Event(log::Level::kWarn, "conf.stored_ignored", "",
                   {{"file", ConfPath(client->options_.data_dir)},
                    {"fault", FaultCode(conf.status())}, {"error", conf.status().ToString()}});
      }
    }
  }
  if (client->options_.metrics != nullptr) {
    GlobalConfClient* self = client.get();
    client->options_.metrics->AddCollector([self](MetricsRegistry& m) {
      // Present from the first scrape, so an alert on 0 fires before the first contact too.
      m.SetGauge("darvoza_ss_registry_reachable", self->registry_reachable() ? 1 : 0);
      auto conf = self->LastGood();
      if (conf == nullptr) return;
      m.SetGauge("darvoza_ss_globalconf_serial", static_cast<double>(conf->serial()));
      m.SetGauge("darvoza_ss_globalconf_expiry_seconds",
                 absl::ToDoubleSeconds(FromUnixNanosField(conf->expires_at_unix_nanos()) -
                                       self->clock_->Now()));
    });
  }
  return client;
}

GlobalConfClient::~GlobalConfClient() { Shutdown(); }

void GlobalConfClient::Start() {
  watch_thread_ = std::thread([this] { WatchLoop(); });
  poll_thread_ = std::thread([this] { PollLoop(); });
}

void GlobalConfClient::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    if (watch_context_ != nullptr) watch_context_->TryCancel();
  }
  if (watch_thread_.joinable()) watch_thread_.join();
  if (poll_thread_.joinable()) poll_thread_.join();
}

bool GlobalConfClient::WaitForShutdown(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
  mu_.AwaitWithTimeout(absl::Condition(&done), d);
  return shutdown_;
}

void GlobalConfClient::WatchLoop() {
  size_t next = 0;
  while (true) {
    // Each round asks again: a reloaded anchor may have changed the addresses.
    const auto channels = registry_->channels();
    if (channels.empty()) return;
    grpc::ClientContext ctx;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return;
      watch_context_ = &ctx;
    }
    v1::WatchConfRequest request;
    if (auto conf = LastGood(); conf != nullptr) request.set_known_serial(conf->serial());
    auto stub = v1::GlobalConfService::NewStub(channels[next % channels.size()]);
    auto reader = stub->Watch(&ctx, request);
    v1::SignedGlobalConf signed_conf;
    bool got_any = false;
    while (reader->Read(&signed_conf)) {
      got_any = true;
      MarkContact(absl::OkStatus());
      absl::Status s = Offer(signed_conf);
      if (!s.ok()) {
        log::Event(log::Level::kWarn, "conf.refused", "refused a configuration from the registry",
                   {{"fault", FaultCode(s)}, {"error", s.ToString()}});
      }
    }
    grpc::Status status = reader->Finish();
    {
      absl::MutexLock lock(&mu_);
      watch_context_ = nullptr;
      if (shutdown_) return;
    }
    if (!got_any) {
      MarkContact(FromGrpcStatus(status, ctx));
      ++next;  // try the next registry address
    }
    if (WaitForShutdown(options_.reconnect_delay)) return;
    // A watch that ended reconnects; a Get catches up with anything missed meanwhile.
    if (status.error_code() != grpc::StatusCode::CANCELLED) (void)FetchNow();
  }
}

void GlobalConfClient::PollLoop() {
  while (true) {
    (void)FetchNow();
    (void)Current();  // logs an expiry even when no call asks for the configuration
    if (WaitForShutdown(options_.poll_interval)) return;
  }
}

absl::Status GlobalConfClient::FetchNow() {
  absl::StatusOr<v1::SignedGlobalConf> signed_conf = registry_->GetConf(absl::Seconds(5));
  if (!signed_conf.ok()) {
    if (absl::IsUnavailable(signed_conf.status()) ||
        absl::IsDeadlineExceeded(signed_conf.status())) {
      MarkContact(signed_conf.status());
    }
    return signed_conf.status();
  }
  MarkContact(absl::OkStatus());
  return Offer(*signed_conf);
}

absl::Status GlobalConfClient::Offer(const v1::SignedGlobalConf& signed_conf) {
  absl::MutexLock offer_lock(&offer_mu_);
  std::optional<uint64_t> last;
  {
    absl::MutexLock lock(&mu_);
    if (signed_ != nullptr && signed_->conf() == signed_conf.conf() &&
        signed_->signature() == signed_conf.signature()) {
      return absl::OkStatus();  // the one held now
    }
    if (conf_ != nullptr) last = conf_->serial();
  }
  absl::StatusOr<v1::GlobalConf> conf =
      VerifySignedGlobalConf(signed_conf, anchor(), clock_->Now(), last);
  if (!conf.ok()) {
    if (options_.metrics != nullptr) {
      options_.metrics->Increment("darvoza_ss_globalconf_refused_total");
    }
    return conf.status();
  }
  DARVOZA_RETURN_IF_ERROR(
      WriteFileAtomically(ConfPath(options_.data_dir), signed_conf.SerializeAsString(), 0644));
  auto shared = std::make_shared<const v1::GlobalConf>(*std::move(conf));
  std::vector<ConfListener> listeners;
  {
    absl::MutexLock lock(&mu_);
    conf_ = shared;
    signed_ = std::make_shared<const v1::SignedGlobalConf>(signed_conf);
    listeners = listeners_;
  }
  if (options_.metrics != nullptr) {
    options_.metrics->Increment("darvoza_ss_globalconf_accepted_total");
  }
  log::Event(log::Level::kInfo, "conf.updated", "",
             {{"serial", shared->serial()},
              {"expires", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                           FromUnixNanosField(shared->expires_at_unix_nanos()),
                                           absl::UTCTimeZone())}});
  for (auto& listener : listeners) listener(shared);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const v1::GlobalConf>> GlobalConfClient::Current() const {
  std::shared_ptr<const v1::GlobalConf> conf = LastGood();
  if (conf == nullptr) {
    return Fault(absl::StatusCode::kUnavailable, faults::kInvalidConfiguration,
                 "no global configuration yet: the registry has not been reached");
  }
  absl::Time expires = FromUnixNanosField(conf->expires_at_unix_nanos());
  if (clock_->Now() >= expires) {
    bool first = false;
    {
      absl::MutexLock lock(&mu_);
      first = logged_expired_serial_ != conf->serial();
      logged_expired_serial_ = conf->serial();
    }
    if (first) {
      log::Event(log::Level::kError, "conf.expired",
                 "every exchange is refused until a new configuration arrives",
                 {{"serial", conf->serial()}, {"fault", faults::kConfigurationExpired}});
    }
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kConfigurationExpired,
                 absl::StrCat("global configuration ", conf->serial(), " expired at ",
                              absl::FormatTime(expires), "; the registry is unreachable"));
  }
  return conf;
}

std::shared_ptr<const v1::GlobalConf> GlobalConfClient::LastGood() const {
  absl::MutexLock lock(&mu_);
  return conf_;
}

std::shared_ptr<const v1::SignedGlobalConf> GlobalConfClient::LastGoodSigned() const {
  absl::MutexLock lock(&mu_);
  return signed_;
}

void GlobalConfClient::AddListener(ConfListener listener) {
  absl::MutexLock lock(&mu_);
  listeners_.push_back(std::move(listener));
}

void GlobalConfClient::MarkContact(const absl::Status& result) {
  const bool ok = result.ok();
  {
    absl::MutexLock lock(&mu_);
    reachable_ = ok;
    last_error_ = result;
    if (ok) last_contact_ = clock_->Now();
    if (logged_reachable_ == ok) return;
    logged_reachable_ = ok;
  }
  if (ok) {
    log::Event(log::Level::kInfo, "registry.reachable", "");
  } else {
    log::Event(log::Level::kWarn, "registry.unreachable", "", {{"error", result.ToString()}});
  }
}

absl::Status GlobalConfClient::registry_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

v1::ConfigurationAnchor GlobalConfClient::anchor() const {
  absl::MutexLock lock(&mu_);
  return anchor_;
}

std::vector<std::string> GlobalConfClient::registry_addresses() const {
  return registry_->addresses();
}

absl::Status GlobalConfClient::ReplaceAnchor(const v1::ConfigurationAnchor& anchor,
                                             std::vector<std::string> addresses) {
  absl::MutexLock offer_lock(&offer_mu_);  // no Offer verifies against a half-replaced anchor
  std::shared_ptr<const v1::SignedGlobalConf> held = LastGoodSigned();
  {
    absl::MutexLock lock(&mu_);
    if (anchor.instance() != anchor_.instance()) {
      return absl::InvalidArgumentError(absl::StrCat("the new anchor is for instance ",
                                                     anchor.instance(), ", this server's is ",
                                                     anchor_.instance()));
    }
  }
  if (held != nullptr) {
    v1::GlobalConf parsed;
    parsed.ParseFromString(held->conf());
    // At a time the held configuration was valid: an expired one still tells a wrong anchor.
    absl::Time at = std::min(clock_->Now(), FromUnixNanosField(parsed.expires_at_unix_nanos()) -
                                                absl::Nanoseconds(1));
    absl::Status verified = VerifySignedGlobalConf(*held, anchor, at).status();
    if (!verified.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the new anchor does not verify the configuration held now: ", verified.message()));
    }
  }
  registry_->Reset(anchor, std::move(addresses));
  absl::MutexLock lock(&mu_);
  anchor_ = anchor;
  return absl::OkStatus();
}

bool GlobalConfClient::registry_reachable() const {
  absl::MutexLock lock(&mu_);
  return reachable_;
}

absl::Time GlobalConfClient::last_registry_contact() const {
  absl::MutexLock lock(&mu_);
  return last_contact_;
}

}  // namespace darvoza::ss
