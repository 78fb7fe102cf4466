#include "security_server/exchange/consumer.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/status_macros.h"
#include "proto/exchange.pb.h"
#include "security_server/global_conf_client.h"
#include "security_server/metrics.h"

namespace darvoza::ss::exchange {
namespace {

class ConsumerCall final : public grpc::ServerGenericBidiReactor, public ConsumerExchange {
 public:
  ConsumerCall(ExchangeCore* core, grpc::GenericCallbackServerContext* ctx, bool tls_port)
      : ConsumerExchange(core), ctx_(ctx), tls_port_(tls_port) {
    core_->node().metrics->Increment("darvoza_ss_consumer_calls_total");
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!got_request_) {
      if (!ok) {
        Refuse(Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                     "the call carried no request message"));
        return;
      }
      got_request_ = true;
      // A unary client has half-closed already; a second message means a streaming call.
      StartRead(&extra_);
      return;
    }
    if (ok) {
      Refuse(Fault(absl::StatusCode::kUnimplemented, faults::kUnsupportedCall,
                   "streaming calls are not passed through; only unary methods are"));
      return;
    }
    absl::Status prepared = Prepare();
    if (!prepared.ok()) {
      Refuse(prepared);
      return;
    }
    if (absl::StartsWith(envelope_.service().service_code(), kMetadataServicePrefix) &&
        envelope_.service().service_code() ==
            absl::StrCat(kMetadataServicePrefix, "ListClients")) {
      AnswerListClients();
      return;
    }
    SendToNextProvider();
  }

  void OnCancel() override { CancelExchange(); }

  void OnDone() override {
    core_->node().metrics->Increment("darvoza_ss_consumer_calls_done_total");
    delete this;
  }

 private:
  // Everything checked before anything is signed or sent.
  absl::Status Prepare() {
    const auto& md = ctx_->client_metadata();
    // Every value the IS sent is checked here, once, before any of it is echoed (x-road-id),
    // signed, logged or forwarded: gRPC aborts the process on a bad byte in metadata it sends.
    DARVOZA_RETURN_IF_ERROR(ValidateReceivedMetadata(md));
    auto header = [&](const char* key) -> std::optional<std::string> {
      auto it = md.find(key);
      if (it == md.end()) return std::nullopt;
      return ToString(it->second);
    };

    auto service_code = ServiceCodeFromMethodPath(ctx_->method());
    if (!service_code.ok()) return service_code.status();

    std::optional<std::string> client_text = header(kClientHeader);
    if (!client_text.has_value()) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   "metadata x-road-client (the calling subsystem) is missing");
    }
    auto client = ParseSubsystemId(*client_text);
    if (!client.ok()) return client.status();
    *envelope_.mutable_client() = *client;
    if (auto id = header(kIdHeader); id.has_value() && !id->empty()) {
      envelope_.set_message_id(*id);  // validated above: printable, at most 255 bytes
    } else {
      envelope_.set_message_id(crypto::HexEncode(crypto::RandomBytes(16)));
    }

    // The IS must be who it claims to be before it learns anything more.
    DARVOZA_RETURN_IF_ERROR(core_->node().client_auth->Authenticate(*client, *ctx_, tls_port_));

    DARVOZA_RETURN_IF_ERROR(CheckHosting());

    // Metadata's ListClients needs no provider.
    const bool list_clients =
        *service_code == absl::StrCat(kMetadataServicePrefix, "ListClients");
    std::optional<std::string> service_text = header(kServiceHeader);
    if (!service_text.has_value() && !list_clients) {
      return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                   "metadata x-road-service (the provider subsystem) is missing");
    }
    if (service_text.has_value()) {
      // The provider subsystem, optionally followed by /version.
      auto subsystem = ParseSubsystemId(*service_text);
      std::string version;
      if (!subsystem.ok()) {
        size_t slash = service_text->rfind('/');
        auto without_version = slash == std::string::npos
                                   ? subsystem
                                   : ParseSubsystemId(service_text->substr(0, slash));
        if (!without_version.ok()) return subsystem.status();
        version = service_text->substr(slash + 1);
        DARVOZA_RETURN_IF_ERROR(ValidateIdentifierPart(version));
        subsystem = without_version;
      }
      v1::ServiceId* service = envelope_.mutable_service();
      *service->mutable_subsystem() = *subsystem;
      service->set_service_code(*service_code);
      service->set_service_version(version);
    } else {
      envelope_.mutable_service()->set_service_code(*service_code);
    }

    if (auto user = header(kUserIdHeader)) envelope_.set_user_id(*user);
    if (auto issue = header(kIssueHeader)) envelope_.set_issue(*issue);
    if (auto represented = header(kRepresentedPartyHeader)) {
      auto party = ParseSubsystemId(*represented);
      if (!party.ok()) return party.status();
      *envelope_.mutable_represented_party() = *party;
    }
    if (auto target = header(kSecurityServerHeader)) {
      auto server = ParseSecurityServerId(*target);
      if (!server.ok()) return server.status();
      pinned_server_ = *server;
    }

    body_ = ByteBufferToString(request_);
    v1::GrpcCall* call = envelope_.mutable_grpc();
    call->set_method(std::string(ctx_->method()));
    for (const auto& [key, value] : md) {
      const std::string k = ToString(key);
      if (!IsForwardedMetadataKey(k)) continue;
      v1::MetadataEntry* entry = call->add_metadata();
      entry->set_key(k);
      entry->set_value(ToString(value));
    }
    if (list_clients) {
      if (body_.size() > core_->options().max_message_bytes) {
        return Fault(absl::StatusCode::kResourceExhausted, faults::kInvalidRequest,
                     "the request body is over the pass-through limit");
      }
      return absl::OkStatus();
    }
    return PrepareRoute(pinned_server_);
  }

  std::chrono::system_clock::time_point ClientDeadline() const override {
    return ctx_->deadline();
  }

  // What Reply() hands to gRPC: gRPC aborts the process on metadata it cannot send.
  absl::Status CheckAnswer() override {
    if (response_.has_http()) {
      return absl::InvalidArgumentError("the provider answered with an HTTP response");
    }
    if (response_.grpc_status_code() < 0 || response_.grpc_status_code() > 16) {
      return absl::InvalidArgumentError("the gRPC status code is out of range");
    }
    DARVOZA_RETURN_IF_ERROR(ValidateStatusMessage(response_.status_message()));
    for (const auto* entries : {&response_.metadata(), &response_.trailing_metadata()}) {
      for (const v1::MetadataEntry& entry : *entries) {
        if (!IsForwardedMetadataKey(entry.key())) continue;
        DARVOZA_RETURN_IF_ERROR(ValidateMetadataEntry(entry.key(), entry.value()));
      }
    }
    return absl::OkStatus();
  }

  void Reply() override {
    ctx_->AddInitialMetadata(kIdHeader, envelope_.message_id());
    ctx_->AddInitialMetadata(kRequestHashHeader,
                             absl::Base64Escape(response_.request_hash()));
    for (const v1::MetadataEntry& entry : response_.metadata()) {
      if (IsForwardedMetadataKey(entry.key())) ctx_->AddInitialMetadata(entry.key(), entry.value());
    }
    for (const v1::MetadataEntry& entry : response_.trailing_metadata()) {
      if (IsForwardedMetadataKey(entry.key())) ctx_->AddTrailingMetadata(entry.key(), entry.value());
    }
    const auto code = static_cast<grpc::StatusCode>(response_.grpc_status_code());
    CountExchange("");
    if (code != grpc::StatusCode::OK) {
      core_->node().metrics->Increment("darvoza_ss_consumer_service_errors_total");
      Finish(grpc::Status(code, response_.status_message()));
      return;
    }
    core_->node().metrics->Increment("darvoza_ss_consumer_exchanges_ok_total");
    grpc::Slice slice(signed_response_.body());
    response_buffer_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_buffer_, grpc::WriteOptions(), grpc::Status::OK);
  }

  // ListClients: the client's own SS answers from the global configuration.
  void AnswerListClients() {
    v1::MetadataClientList list;
    for (const v1::MemberEntry& member : conf_->members()) {
      for (const v1::SubsystemEntry& subsystem : member.subsystems()) {
        v1::MetadataClient* client = list.add_clients();
        *client->mutable_id() = subsystem.id();
        client->set_member_name(member.name());
      }
    }
    ctx_->AddInitialMetadata(kIdHeader, envelope_.message_id());
    grpc::Slice slice(list.SerializeAsString());
    response_buffer_ = grpc::ByteBuffer(&slice, 1);
    StartWriteAndFinish(&response_buffer_, grpc::WriteOptions(), grpc::Status::OK);
  }

  std::string ClientPeer() const override { return ctx_->peer(); }

  void FinishRefused(const absl::Status& status) override {
    if (!envelope_.message_id().empty()) ctx_->AddInitialMetadata(kIdHeader, envelope_.message_id());
    Finish(ToGrpcStatus(status, ctx_));
  }

  grpc::GenericCallbackServerContext* const ctx_;
  const bool tls_port_;

  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  bool got_request_ = false;
  std::optional<v1::SecurityServerId> pinned_server_;
  grpc::ByteBuffer response_buffer_;
};

}  // namespace

grpc::ServerGenericBidiReactor* ConsumerService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new ConsumerCall(core_, ctx, tls_port_);
}

}  // namespace darvoza::ss::exchange
