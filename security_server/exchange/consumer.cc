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

ABSL_CONST_INIT absl::Mutex g_hook_mu(absl::kConstInit);
std::function<void(v1::SignedMessage&)>* g_outgoing_hook ABSL_GUARDED_BY(g_hook_mu) = nullptr;

std::function<void(const v1::Envelope&, v1::SignedMessage&)>* g_incoming_hook
    ABSL_GUARDED_BY(g_hook_mu) = nullptr;

void ApplyOutgoingHook(v1::SignedMessage& message) {
  absl::MutexLock lock(&g_hook_mu);
  if (g_outgoing_hook != nullptr) (*g_outgoing_hook)(message);
}

void ApplyIncomingHook(const v1::Envelope& request, v1::SignedMessage& response) {
  absl::MutexLock lock(&g_hook_mu);
  if (g_incoming_hook != nullptr) (*g_incoming_hook)(request, response);
}

// Whether the failed attempt cannot have reached the provider SS, so that sending the request
// to another provider SS cannot make it run twice. Decided from transport-level facts only:
// the channel was not READY when the attempt started and no TLS handshake with that provider
// completed during it (so no connection existed that could have carried the request), and
// nothing at all came back from a peer (no initial or trailing metadata, hence no
// x-road-error). Never from the status message: a provider's own refusal can carry the same
// text as gRPC's local connection failure. When in doubt the answer is "maybe sent".
bool NeverSent(const grpc::Status& status, grpc::ClientContext& ctx, bool ready_at_start,
               uint64_t handshakes_at_start, const ProviderPeer& peer) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  if (ready_at_start || peer.accepted_handshakes() != handshakes_at_start) return false;
  return ctx.GetServerInitialMetadata().empty() && ctx.GetServerTrailingMetadata().empty();
}

// A provider SS's refusal enters this SS here: its fault code is echoed to the client in a
// trailer and its message is logged, so a fault that is not sendable metadata is dropped
// (the caller then names the failure itself) and a message that is not clean UTF-8 replaced.
absl::Status CheckedPeerStatus(absl::Status status) {
  if (status.ok()) return status;
  std::string fault = FaultCode(status);
  if (!ValidateMetadataEntry("x-road-error", fault).ok()) fault.clear();
  absl::Status checked =
      ValidateStatusMessage(status.message()).ok()
          ? absl::Status(status.code(), status.message())
          : absl::Status(status.code(), "(the provider security server's status message was "
                                        "not valid text and is not shown)");
  return fault.empty() ? checked : WithFault(checked, fault);
}

// Whether `conf` lists this security server `self` as a host of `client`.
bool HostedHere(const v1::GlobalConf& conf, const v1::SecurityServerId& self,
                const v1::SubsystemId& client) {
  for (const v1::SecurityServerEntry& entry : conf.security_servers()) {
    if (!SameSecurityServer(entry.id(), self)) continue;
    for (const v1::SubsystemId& hosted : entry.hosted_subsystems()) {
      if (SameSubsystem(hosted, client)) return true;
    }
  }
  return false;
}

class ConsumerCall final : public grpc::ServerGenericBidiReactor {
 public:
  ConsumerCall(ExchangeCore* core, grpc::GenericCallbackServerContext* ctx, bool tls_port)
      : core_(core), ctx_(ctx), tls_port_(tls_port) {
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

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (provider_ctx_ != nullptr) provider_ctx_->TryCancel();
  }

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

    auto conf = core_->node().conf->Current();
    if (!conf.ok()) return conf.status();
    conf_ = *std::move(conf);
    // The global configuration must list this SS as the client's host: a hosting the registry
    // has not (or no longer) approved would only be refused by the provider after signing and
    // sending, so the request is refused here and nothing leaves this SS.
    if (!HostedHere(*conf_, core_->node().self, *client)) {
      return Fault(absl::StatusCode::kPermissionDenied, faults::kNotAuthorized,
                   absl::StrCat("the global configuration (serial ", conf_->serial(),
                                ") does not list this security server as the host of ",
                                FormatSubsystemId(*client)));
    }

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
    if (body_.size() > core_->options().max_message_bytes) {
      return Fault(absl::StatusCode::kResourceExhausted, faults::kInvalidRequest,
                   absl::StrCat("the request body has ", body_.size(), " bytes; at most ",
                                core_->options().max_message_bytes, " are passed through"));
    }
    v1::GrpcCall* call = envelope_.mutable_grpc();
    call->set_method(std::string(ctx_->method()));
    for (const auto& [key, value] : md) {
      const std::string k = ToString(key);
      if (!IsForwardedMetadataKey(k)) continue;
      v1::MetadataEntry* entry = call->add_metadata();
      entry->set_key(k);
      entry->set_value(ToString(value));
    }
    envelope_.set_body_sha256(crypto::Sha256(body_));
    envelope_.set_body_length(body_.size());
    *envelope_.mutable_consumer_server() = core_->node().self;

    if (list_clients) return absl::OkStatus();
    auto candidates = core_->pool().Candidates(
        *conf_, envelope_.service().subsystem(),
        pinned_server_.has_value() ? &*pinned_server_ : nullptr);
    if (!candidates.ok()) return candidates.status();
    candidates_ = *std::move(candidates);

    auto identity = core_->node().keys->SigningSigner(envelope_.client().member());
    if (!identity.ok()) {
      return Fault(absl::StatusCode::kFailedPrecondition, faults::kNotAuthorized,
                   absl::StrCat("this security server holds no signing key for member ",
                                FormatMemberId(envelope_.client().member()), ": ",
                                identity.status().message()));
    }
    identity_ = *std::move(identity);
    return absl::OkStatus();
  }

  // Signs a fresh envelope for the next candidate and sends it.
  void SendToNextProvider() {
    if (next_candidate_ >= candidates_.size()) {
      Refuse(last_error_.ok() ? Fault(absl::StatusCode::kUnavailable, faults::kNetworkError,
                                      "no provider security server could be reached")
                              : last_error_);
      return;
    }
    peer_ = candidates_[next_candidate_++];
    *envelope_.mutable_target_server() = peer_->entry().id();
    envelope_.set_nonce(crypto::RandomBytes(16));
    envelope_.set_created_at_unix_nanos(absl::ToUnixNanos(core_->node().clock->Now()));
    std::string envelope_bytes;
    if (!envelope_.SerializeToString(&envelope_bytes)) {
      Refuse(Fault(absl::StatusCode::kInternal, faults::kInternalError,
                   "cannot serialize the envelope"));
      return;
    }
    auto signed_request =
        SignMessage(identity_, crypto::SignatureContext::kRequest, std::move(envelope_bytes), body_);
    if (!signed_request.ok()) {
      Refuse(WithFault(signed_request.status(), faults::kInternalError));
      return;
    }
    signed_request_ = *std::move(signed_request);

    // The request record joins the next group commit; the response record's durable wait
    // covers it (one durable wait per exchange).
    v1::AuditRecord record;
    record.set_kind(v1::REQUEST_OUT);
    FillRecordFromEnvelope(envelope_, &record);
    record.set_envelope(signed_request_.envelope());
    record.set_signature(signed_request_.signature().SerializeAsString());
    for (const std::string& der : signed_request_.signer_cert_chain()) {
      record.add_signer_cert_chain(der);
    }
    *record.mutable_peer_server() = peer_->entry().id();
    core_->Audit(std::move(record), body_, core_->HashOnly(envelope_.client()), /*wait=*/false,
                 [](absl::Status) {});

    ApplyOutgoingHook(signed_request_);
    attempt_started_ = core_->node().clock->Now();
    attempt_started_mono_ = core_->node().clock->MonotonicNow();
    ready_at_start_ = peer_->channel()->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    handshakes_at_start_ = peer_->accepted_handshakes();
    grpc::ClientContext* call_ctx = nullptr;
    {
      absl::MutexLock lock(&mu_);
      provider_ctx_ = std::make_unique<grpc::ClientContext>();
      auto deadline = std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(core_->options().provider_timeout);
      if (ctx_->deadline() < deadline) deadline = ctx_->deadline();
      provider_ctx_->set_deadline(deadline);
      if (cancelled_) provider_ctx_->TryCancel();
      call_ctx = provider_ctx_.get();
    }
    signed_response_.Clear();
    peer_->stub()->async()->Call(call_ctx, &signed_request_, &signed_response_,
                                 [this](grpc::Status status) { OnProviderDone(status); });
  }

  void OnProviderDone(const grpc::Status& status) {
    const absl::Duration latency = core_->node().clock->MonotonicNow() - attempt_started_mono_;
    if (!status.ok()) {
      if (NeverSent(status, *ProviderContext(), ready_at_start_, handshakes_at_start_, *peer_)) {
        core_->pool().ReportConnectionFailure(*peer_);
        if (peer_->RefusedSince(attempt_started_)) {
          last_error_ = Fault(absl::StatusCode::kUnauthenticated,
                              faults::kSslAuthenticationFailed,
                              absl::StrCat("security server ", peer_->key(),
                                           " presented a certificate the global configuration "
                                           "does not list for it"));
        } else {
          last_error_ = Fault(absl::StatusCode::kUnavailable, faults::kNetworkError,
                              absl::StrCat("cannot connect to security server ", peer_->key(),
                                           " at ", peer_->entry().address(), ": ",
                                           status.error_message()));
        }
        SendToNextProvider();
        return;
      }
      absl::Status provider = CheckedPeerStatus(FromGrpcStatus(status, *ProviderContext()));
      if (FaultCode(provider).empty()) {
        absl::string_view fault = faults::kNetworkError;
        if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) fault = faults::kTimeout;
        provider = WithFault(provider, fault);
      }
      Refuse(provider);
      return;
    }
    core_->pool().ReportAnswered(*peer_, latency);
    ApplyIncomingHook(envelope_, signed_response_);
    absl::Status verified = VerifyResponse();
    if (!verified.ok()) {
      Refuse(verified);
      return;
    }
    v1::AuditRecord record;
    record.set_kind(v1::RESPONSE_IN);
    FillRecordFromEnvelope(envelope_, &record);
    record.set_envelope(signed_response_.envelope());
    record.set_signature(signed_response_.signature().SerializeAsString());
    for (const std::string& der : signed_response_.signer_cert_chain()) {
      record.add_signer_cert_chain(der);
    }
    *record.mutable_peer_server() = peer_->entry().id();
    record.set_grpc_status_code(response_.grpc_status_code());
    record.set_detail(response_.status_message());
    core_->Audit(std::move(record), signed_response_.body(), core_->HashOnly(envelope_.client()),
                 /*wait=*/true, [this](absl::Status durable) {
                   if (!durable.ok()) {
                     FinishWithStatus(durable);
                     return;
                   }
                   Reply();
                 });
  }

  absl::Status VerifyResponse() {
    auto invalid = [](absl::string_view why) {
      return Fault(absl::StatusCode::kUnauthenticated, faults::kClientInvalidSignature, why);
    };
    if (!response_.ParseFromString(signed_response_.envelope())) {
      return invalid("the provider's response envelope is unreadable");
    }
    if (response_.request_hash() != RequestHash(signed_request_.envelope())) {
      return invalid("the response's request hash does not match the request sent");
    }
    if (response_.message_id() != envelope_.message_id() ||
        !SameSecurityServer(response_.provider_server(), peer_->entry().id())) {
      return invalid("the response names another message or provider security server");
    }
    absl::Status signature = core_->verifier().Verify(
        signed_response_, crypto::SignatureContext::kResponse,
        envelope_.service().subsystem().member(), response_.body_sha256(),
        response_.body_length(), *conf_, core_->node().clock->Now());
    if (!signature.ok()) {
      return invalid(absl::StrCat("the provider's response: ", signature.message()));
    }
    // The backend's answer enters this SS here; it is handed to gRPC in Reply().
    auto failed = [](const absl::Status& why) {
      return Fault(absl::StatusCode::kUnavailable, faults::kServiceFailed,
                   absl::StrCat("the service's answer cannot be passed on: ", why.message()));
    };
    if (response_.grpc_status_code() < 0 || response_.grpc_status_code() > 16) {
      return failed(absl::InvalidArgumentError("the gRPC status code is out of range"));
    }
    if (absl::Status message = ValidateStatusMessage(response_.status_message()); !message.ok()) {
      return failed(message);
    }
    for (const auto* entries : {&response_.metadata(), &response_.trailing_metadata()}) {
      for (const v1::MetadataEntry& entry : *entries) {
        if (!IsForwardedMetadataKey(entry.key())) continue;
        if (absl::Status valid = ValidateMetadataEntry(entry.key(), entry.value()); !valid.ok()) {
          return failed(valid);
        }
      }
    }
    return absl::OkStatus();
  }

  void Reply() {
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

  // Logs the refusal (durably) and answers with its status and fault.
  void Refuse(const absl::Status& status) {
    core_->node().metrics->Increment(
        absl::StrCat("darvoza_ss_consumer_refusals_total{fault=\"", FaultCode(status), "\"}"));
    v1::AuditRecord record;
    record.set_kind(v1::REFUSAL);
    FillRecordFromEnvelope(envelope_, &record);
    if (peer_ != nullptr) *record.mutable_peer_server() = peer_->entry().id();
    record.set_grpc_status_code(static_cast<int32_t>(status.code()));
    record.set_fault_code(FaultCode(status));
    record.set_detail(std::string(status.message()));
    core_->Audit(std::move(record), std::nullopt, /*hash_only=*/true, /*wait=*/true,
                 [this, status](absl::Status) { FinishWithStatus(status); });
  }

  void FinishWithStatus(const absl::Status& status) {
    if (!envelope_.message_id().empty()) ctx_->AddInitialMetadata(kIdHeader, envelope_.message_id());
    Finish(ToGrpcStatus(status, ctx_));
  }

  ExchangeCore* const core_;
  grpc::GenericCallbackServerContext* const ctx_;
  const bool tls_port_;

  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  bool got_request_ = false;
  std::string body_;
  v1::Envelope envelope_;
  std::optional<v1::SecurityServerId> pinned_server_;
  std::shared_ptr<const v1::GlobalConf> conf_;
  SigningIdentity identity_;

  std::vector<std::shared_ptr<ProviderPeer>> candidates_;
  size_t next_candidate_ = 0;
  std::shared_ptr<ProviderPeer> peer_;
  absl::Status last_error_;
  absl::Time attempt_started_;
  absl::Duration attempt_started_mono_;
  bool ready_at_start_ = false;
  uint64_t handshakes_at_start_ = 0;

  // The current attempt's context. Only this reactor's own sequence replaces it (never while
  // a call on it is in flight), so the pointer stays valid until the next attempt starts;
  // mu_ orders the replacement against a cancellation from another thread.
  grpc::ClientContext* ProviderContext() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return provider_ctx_.get();
  }

  absl::Mutex mu_;
  std::unique_ptr<grpc::ClientContext> provider_ctx_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;

  v1::SignedMessage signed_request_;
  v1::SignedMessage signed_response_;
  v1::ResponseEnvelope response_;
  grpc::ByteBuffer response_buffer_;
};

}  // namespace

void SetOutgoingRequestHookForTest(std::function<void(v1::SignedMessage&)> hook) {
  absl::MutexLock lock(&g_hook_mu);
  delete g_outgoing_hook;
  g_outgoing_hook =
      hook ? new std::function<void(v1::SignedMessage&)>(std::move(hook)) : nullptr;
}

void SetIncomingResponseHookForTest(
    std::function<void(const v1::Envelope&, v1::SignedMessage&)> hook) {
  absl::MutexLock lock(&g_hook_mu);
  delete g_incoming_hook;
  g_incoming_hook = hook ? new std::function<void(const v1::Envelope&, v1::SignedMessage&)>(
                               std::move(hook))
                         : nullptr;
}

grpc::ServerGenericBidiReactor* ConsumerService::CreateReactor(
    grpc::GenericCallbackServerContext* ctx) {
  return new ConsumerCall(core_, ctx, tls_port_);
}

}  // namespace darvoza::ss::exchange
