#include "security_server/registry_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
#include "common/crypto/x509.h"
#include "common/globalconf.h"
#include "common/grpc_status.h"
#include "common/registry_channel.h"

namespace darvoza::ss {
namespace {

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return absl::ToChronoTime(absl::Now() + timeout);
}

}  // namespace

std::unique_ptr<RegistryClient> RegistryClient::Create(const v1::ConfigurationAnchor& anchor,
                                                       std::vector<std::string> addresses) {
  std::unique_ptr<RegistryClient> client(new RegistryClient());
  client->Reset(anchor, std::move(addresses));
  return client;
}

void RegistryClient::Reset(const v1::ConfigurationAnchor& anchor,
                           std::vector<std::string> addresses) {
  if (addresses.empty()) {
    addresses.assign(anchor.registry_addresses().begin(), anchor.registry_addresses().end());
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (const auto& a : addresses) channels.push_back(MakeRegistryChannel(anchor, a));
  absl::MutexLock lock(&mu_);
  addresses_ = std::move(addresses);
  channels_ = std::move(channels);
}

std::vector<std::string> RegistryClient::addresses() const {
  absl::MutexLock lock(&mu_);
  return addresses_;
}

std::vector<std::shared_ptr<grpc::Channel>> RegistryClient::channels() const {
  absl::MutexLock lock(&mu_);
  return channels_;
}

namespace {

// Runs `call` on each channel until one answers with something other than UNAVAILABLE or
// DEADLINE_EXCEEDED.
template <typename Response, typename Call>
absl::StatusOr<Response> OnFirstAnswering(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels, absl::Duration timeout,
    Call call) {
  absl::Status last = absl::UnavailableError("no registry address configured");
  for (const auto& channel : channels) {
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(timeout));
    Response response;
    grpc::Status s = call(channel, &ctx, &response);
    if (s.ok()) return response;
    last = FromGrpcStatus(s, ctx);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return last;
    }
  }
  return absl::UnavailableError(absl::StrCat("registry unreachable: ", last.message()));
}

}  // namespace

absl::StatusOr<v1::RequestRecord> RegistryClient::Submit(const v1::SubmitRequest& request,
                                                         absl::Duration timeout) {
  return OnFirstAnswering<v1::RequestRecord>(
      channels(), timeout, [&](auto& channel, grpc::ClientContext* ctx, v1::RequestRecord* out) {
        return v1::Registration::NewStub(channel)->Submit(ctx, request, out);
      });
}

absl::StatusOr<v1::RequestRecord> RegistryClient::GetStatus(const std::string& request_id,
                                                            absl::Duration timeout) {
  v1::RequestStatusQuery query;
  query.set_id(request_id);
  return OnFirstAnswering<v1::RequestRecord>(
      channels(), timeout, [&](auto& channel, grpc::ClientContext* ctx, v1::RequestRecord* out) {
        return v1::Registration::NewStub(channel)->GetStatus(ctx, query, out);
      });
}

absl::StatusOr<v1::SignedGlobalConf> RegistryClient::GetConf(absl::Duration timeout) {
  return OnFirstAnswering<v1::SignedGlobalConf>(
      channels(), timeout,
      [&](auto& channel, grpc::ClientContext* ctx, v1::SignedGlobalConf* out) {
        return v1::GlobalConfService::NewStub(channel)->Get(ctx, v1::GetConfRequest(), out);
      });
}

absl::StatusOr<v1::SignedWitnessReceipt> RegistryWitness::WitnessSeal(const v1::SignedSeal& seal) {
  return OnFirstAnswering<v1::SignedWitnessReceipt>(
      client_->channels(), timeout_,
      [&](auto& channel, grpc::ClientContext* ctx, v1::SignedWitnessReceipt* out) {
        return v1::Witness::NewStub(channel)->Witness(ctx, seal, out);
      });
}

}  // namespace darvoza::ss
