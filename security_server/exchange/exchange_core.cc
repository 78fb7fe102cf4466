#include "security_server/exchange/exchange_core.h"

#include <utility>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/audit_log.h"
#include "common/faults.h"
#include "common/grpc_thread.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "common/outside_values.h"
#include "common/status_macros.h"

namespace darvoza::ss::exchange {

namespace {

// The signed message made of a signing's result, or the signer's error.
absl::StatusOr<v1::SignedMessage> PackSigned(const SigningIdentity& identity,
                                             absl::StatusOr<v1::Signature> signature,
                                             std::string envelope_bytes, std::string body) {
  if (!signature.ok()) return signature.status();
  return PackSignedMessage(identity, *std::move(signature), std::move(envelope_bytes),
                           std::move(body));
}

}  // namespace

ExchangeCore::ExchangeCore(const NodeServices& node, ExchangeOptions options)
    : node_(node),
      options_(options),
      pool_(std::make_shared<ProviderPool>(node.self, node.conf, node.keys, node.clock,
                                           node.metrics)),
      replay_(node.clock, options.replay_window),
      exchange_metrics_(node.metrics),
      batch_signer_([sizes = &node.metrics->Histogram("darvoza_ss_signature_batch_size", {},
                                                      {1, 2, 4, 8, 16, 32, 64, 128, 256})](
                        size_t n) { sizes->Observe(static_cast<double>(n)); },
                    kMaxSignatureBatch, RunOnGrpcThread),
      http_client_(HttpClient::Create(options.http_backend_threads)) {}

void ExchangeCore::SignEnvelope(const SigningIdentity& identity,
                                crypto::SignatureContext context, std::string envelope_bytes,
                                std::string body, bool peer_accepts_batch, SignedDone done) {
  const bool may_batch = peer_accepts_batch && options_.batch_signatures;
  if (!may_batch || in_progress_.load(std::memory_order_relaxed) <= 1) {
    auto signature = batch_signer_.Sign(identity.signer, context, envelope_bytes, may_batch);
    done(PackSigned(identity, std::move(signature), std::move(envelope_bytes), std::move(body)));
    return;
  }
  // The signing task keeps its own copy to sign; this one is packed into the message.
  std::string to_sign = envelope_bytes;
  batch_signer_.SignLater(
      identity.signer, context, std::move(to_sign),
      [identity, envelope_bytes = std::move(envelope_bytes), body = std::move(body),
       done = std::move(done)](absl::StatusOr<v1::Signature> signature) mutable {
        done(PackSigned(identity, std::move(signature), std::move(envelope_bytes),
                        std::move(body)));
      });
}

void ExchangeCore::Audit(v1::AuditRecord record, std::optional<std::string> body, bool hash_only,
                         AuditWait wait, std::function<void(absl::Status)> done) {
  if (node_.audit == nullptr) {
    done(absl::OkStatus());
    return;
  }
  audit::AppendRequest request;
  request.record = std::move(record);
  request.body = std::move(body);
  request.hash_only = hash_only;
  // The exchange hashed or checked each body once already (docs/design.md §8).
  request.body_sha256_checked =
      request.body.has_value() && !request.record.body_sha256().empty();
  request.wait_durable = wait == AuditWait::kDurable;
  if (wait == AuditWait::kQueued) {
    node_.audit->Append(std::move(request), [metrics = node_.metrics](
                                                absl::StatusOr<audit::AppendResult> result) {
      metrics->Increment(result.ok() ? "darvoza_ss_audit_appends_total"
                                     : "darvoza_ss_audit_append_failures_total");
    });
    done(absl::OkStatus());
    return;
  }
  // A waited record's callback already runs on a gRPC thread (AuditLogOptions::run_completions);
  // an unwaited one's runs on the log's writer, which must not run the exchange's next step.
  const bool on_writer = wait == AuditWait::kWritten;
  node_.audit->Append(
      std::move(request), [done = std::move(done), metrics = node_.metrics,
                           on_writer](absl::StatusOr<audit::AppendResult> result) mutable {
        absl::Status status = absl::OkStatus();
        if (!result.ok()) {
          metrics->Increment("darvoza_ss_audit_append_failures_total");
          status = WithFault(result.status(), faults::kAuditLogFailure);
        } else {
          metrics->Increment("darvoza_ss_audit_appends_total");
        }
        if (!on_writer) {
          done(status);
          return;
        }
        RunOnGrpcThread([done = std::move(done), status]() { done(status); });
      });
}

void ExchangeCore::RestoreReplayWindow() {
  if (node_.audit == nullptr) return;
  auto restored = replay_.Restore(*node_.audit);
  if (!restored.ok()) {
    // The daemon stays up to say what is wrong (like a damaged audit log does); the guard
    // refuses every request until the log is repaired.
    log::Event(log::Level::kError, "replay.restore_failed", "",
               {{"error", std::string(restored.status().message())}});
    return;
  }
  log::Event(log::Level::kInfo, "replay.restored", "",
             {{"requests", absl::StrCat(*restored)},
              {"window", absl::FormatDuration(replay_.window())}});
}

absl::StatusOr<std::shared_ptr<grpc::GenericStub>> ExchangeCore::BackendStub(
    const std::string& backend) {
  constexpr absl::string_view kScheme = "grpc://";
  if (!absl::StartsWith(backend, kScheme)) {
    return Fault(absl::StatusCode::kFailedPrecondition, faults::kServiceFailed,
                 absl::StrCat("backend ", backend, " is not grpc://host:port"));
  }
  absl::MutexLock lock(&backends_mu_);
  auto it = backends_.find(backend);
  if (it != backends_.end()) return it->second;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxSecurityServerMessageBytes);
  args.SetMaxSendMessageSize(kMaxSecurityServerMessageBytes);
  auto channel = grpc::CreateCustomChannel(backend.substr(kScheme.size()),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = std::make_shared<grpc::GenericStub>(channel);
  backends_[backend] = stub;
  return stub;
}

bool ExchangeCore::HashOnly(const v1::SubsystemId& subsystem) const {
  auto client = node_.state->GetClient(subsystem);
  return client.ok() && client->hash_only();
}

bool IsHttpBackend(absl::string_view backend) {
  return absl::StartsWith(backend, "http://") || absl::StartsWith(backend, "https://");
}

std::string HttpBackendUrl(absl::string_view backend, absl::string_view path,
                           absl::string_view query) {
  while (absl::EndsWith(backend, "/")) backend.remove_suffix(1);
  return absl::StrCat(backend, path, query.empty() ? "" : "?", query);
}

std::string ToString(const grpc::string_ref& ref) { return std::string(ref.data(), ref.size()); }

std::string ByteBufferToString(grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

namespace {

// Never forwarded by either interface: the protocol's own keys (each SS sets those it vouches
// for from the verified envelope) and HTTP's connection-level (hop-by-hop) headers, plus the
// ones that would leak the name or address of the host that sent them (PR-REST's filtered
// headers) and those the sending SS recomputes (content-length) or answers itself (expect).
bool NeverForwarded(absl::string_view key) {
  static constexpr absl::string_view kHopByHop[] = {
      "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
      "te",         "trailer",    "transfer-encoding",  "upgrade",             "host",
      "user-agent", "server",     "content-length",     "expect"};
  if (absl::StartsWith(key, "x-road-")) return true;
  for (absl::string_view reserved : kHopByHop) {
    if (key == reserved) return true;
  }
  return false;
}

}  // namespace

bool IsForwardedMetadataKey(absl::string_view key) {
  // gRPC's own: its framing, pseudo-headers, and the content negotiation it does itself.
  static constexpr absl::string_view kGrpcOwn[] = {"content-type", "accept", "accept-encoding"};
  if (NeverForwarded(key) || absl::StartsWith(key, "grpc-") || absl::StartsWith(key, ":")) {
    return false;
  }
  for (absl::string_view reserved : kGrpcOwn) {
    if (key == reserved) return false;
  }
  return true;
}

bool IsForwardedHttpHeader(absl::string_view key) { return !NeverForwarded(key); }

absl::Status ValidateReceivedMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  if (metadata.size() > kMaxMetadataEntries) {
    return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest,
                 absl::StrCat("more than ", kMaxMetadataEntries, " metadata entries"));
  }
  for (const auto& [key, value] : metadata) {
    DARVOZA_RETURN_IF_ERROR(ValidateMetadataEntry(absl::string_view(key.data(), key.size()),
                                                  absl::string_view(value.data(), value.size())));
  }
  return absl::OkStatus();
}

v1::AuditRecord SignedMessageRecord(v1::AuditRecordKind kind, const v1::Envelope& envelope,
                                    const v1::SignedMessage& message,
                                    const v1::SecurityServerId& peer) {
  v1::AuditRecord record;
  record.set_kind(kind);
  FillRecordFromEnvelope(envelope, &record);
  record.set_envelope(message.envelope());
  record.set_signature(message.signature().SerializeAsString());
  for (const std::string& der : message.signer_cert_chain()) record.add_signer_cert_chain(der);
  *record.mutable_peer_server() = peer;
  return record;
}

void LogRefusal(absl::string_view side, const v1::AuditRecord& record, absl::string_view peer) {
  log::Event(log::Level::kInfo, "call.refused", "",
             {{"side", side},
              {"fault", record.fault_code()},
              {"code", absl::StatusCodeToString(
                           static_cast<absl::StatusCode>(record.grpc_status_code()))},
              // A refusal before the envelope was read has empty identifiers: no "////".
              {"client", record.client().subsystem_code().empty() &&
                                 record.client().member().member_code().empty()
                             ? ""
                             : FormatSubsystemId(record.client())},
              {"service", record.service().service_code().empty()
                              ? ""
                              : FormatServiceId(record.service())},
              {"peer_server",
               record.has_peer_server() ? FormatSecurityServerId(record.peer_server()) : ""},
              {"peer", peer},
              {"message_id", record.message_id()},
              {"detail", record.detail()}});
}

void FillRecordFromEnvelope(const v1::Envelope& envelope, v1::AuditRecord* record) {
  record->set_message_id(envelope.message_id());
  *record->mutable_client() = envelope.client();
  *record->mutable_service() = envelope.service();
}

}  // namespace darvoza::ss::exchange
