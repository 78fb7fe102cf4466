#include "security_server/exchange/rest_consumer.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/crypto/hash.h"
#include "common/faults.h"
#include "common/identifiers.h"
#include "common/outside_values.h"
#include "common/rest_request.h"
#include "common/status_macros.h"
#include "security_server/exchange/consumer_exchange.h"
#include "security_server/metrics.h"

namespace darvoza::ss::exchange {
namespace {

absl::Status Invalid(absl::string_view why) {
  return Fault(absl::StatusCode::kInvalidArgument, faults::kInvalidRequest, why);
}

// A JSON string literal of `text`; bytes that are not valid UTF-8 never reach here (fault
// messages are this SS's own text or passed ValidateStatusMessage).
std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(&out, "\\u%04x", u);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

class RestCall final : public ConsumerExchange {
 public:
  RestCall(ExchangeCore* core, HttpRequest request, HttpReply reply)
      : ConsumerExchange(core), request_(std::move(request)), reply_(std::move(reply)) {}

  // Runs the call; the object deletes itself once it has replied.
  void Start() {
    core_->node().metrics->Increment("darvoza_ss_consumer_rest_calls_total");
    absl::Status prepared = Prepare();
    if (!prepared.ok()) {
      Refuse(prepared);
      return;
    }
    SendToNextProvider();
  }

 private:
  std::optional<std::string> Header(absl::string_view name) const {
    for (const auto& [key, value] : request_.headers) {
      if (key == name) return value;
    }
    return std::nullopt;
  }

  // Everything checked before anything is signed or sent.
  absl::Status Prepare() {
    // Every header is outside text: checked once, here, before any of it is echoed,
    // signed, logged or forwarded.
    if (request_.headers.size() > kMaxMetadataEntries) {
      return Invalid(absl::StrCat("more than ", kMaxMetadataEntries, " headers"));
    }
    for (const auto& [key, value] : request_.headers) {
      DARVOZA_RETURN_IF_ERROR(ValidateHttpHeader(key, value));
    }
    for (absl::string_view once : {kClientHeader, kIdHeader, kUserIdHeader, kIssueHeader,
                                   kRepresentedPartyHeader, kSecurityServerHeader}) {
      int seen = 0;
      for (const auto& entry : request_.headers) seen += entry.first == once;
      // Two values would let the SS and the backend each read a different one.
      if (seen > 1) return Invalid(absl::StrCat("header ", once, " appears more than once"));
    }
    DARVOZA_RETURN_IF_ERROR(ValidateHttpMethod(request_.method));

    DARVOZA_ASSIGN_OR_RETURN(RestTarget target, ParseRestTarget(request_.target));

    std::optional<std::string> client_text = Header(kClientHeader);
    if (!client_text.has_value()) {
      return Invalid("header X-Road-Client (the calling subsystem) is missing");
    }
    DARVOZA_ASSIGN_OR_RETURN(std::string client_id, DecodeIdentifierText(*client_text));
    DARVOZA_ASSIGN_OR_RETURN(v1::SubsystemId client, ParseSubsystemId(client_id));
    *envelope_.mutable_client() = client;
    *envelope_.mutable_service() = target.service;
    if (auto id = Header(kIdHeader); id.has_value() && !id->empty()) {
      envelope_.set_message_id(*id);  // validated above: printable, at most 255 bytes
    } else {
      envelope_.set_message_id(crypto::HexEncode(crypto::RandomBytes(16)));
    }

    // The IS must be who it claims to be before it learns anything more.
    std::optional<absl::string_view> peer_certificate;
    if (!request_.peer_certificate_pem.empty()) peer_certificate = request_.peer_certificate_pem;
    DARVOZA_RETURN_IF_ERROR(
        core_->node().client_auth->Authenticate(client, request_.tls, peer_certificate));
    DARVOZA_RETURN_IF_ERROR(CheckHosting());

    if (auto user = Header(kUserIdHeader)) envelope_.set_user_id(*user);
    if (auto issue = Header(kIssueHeader)) envelope_.set_issue(*issue);
    if (auto represented = Header(kRepresentedPartyHeader)) {
      DARVOZA_ASSIGN_OR_RETURN(std::string text, DecodeIdentifierText(*represented));
      DARVOZA_ASSIGN_OR_RETURN(*envelope_.mutable_represented_party(), ParseSubsystemId(text));
    }
    std::optional<v1::SecurityServerId> pinned;
    if (auto target_server = Header(kSecurityServerHeader)) {
      DARVOZA_ASSIGN_OR_RETURN(std::string text, DecodeIdentifierText(*target_server));
      DARVOZA_ASSIGN_OR_RETURN(pinned, ParseSecurityServerId(text));
    }

    v1::HttpCall* call = envelope_.mutable_http();
    call->set_method(request_.method);
    call->set_path(target.path);
    call->set_query(target.query);
    const std::vector<std::string> hop_by_hop = ConnectionListedHeaders(request_.headers);
    for (auto& [key, value] : request_.headers) {
      if (!IsForwardedHttpHeader(key) || absl::c_linear_search(hop_by_hop, key)) continue;
      v1::MetadataEntry* entry = call->add_headers();
      entry->set_key(key);
      entry->set_value(value);
    }
    body_ = std::move(request_.body);
    return PrepareRoute(pinned);
  }

  std::string ClientPeer() const override { return request_.peer; }

  // What Reply() hands to the client.
  absl::Status CheckAnswer() override {
    if (!response_.has_http()) {
      return absl::InvalidArgumentError("the provider answered a REST call without an HTTP "
                                        "response");
    }
    const v1::HttpAnswer& http = response_.http();
    if (http.status() < 200 || http.status() > 599) {
      return absl::InvalidArgumentError("the HTTP status is not 200-599");
    }
    if (http.headers_size() > static_cast<int>(kMaxMetadataEntries)) {
      return absl::InvalidArgumentError(absl::StrCat("more than ", kMaxMetadataEntries,
                                                     " headers"));
    }
    for (const v1::MetadataEntry& entry : http.headers()) {
      DARVOZA_RETURN_IF_ERROR(ValidateHttpHeader(entry.key(), entry.value()));
    }
    return absl::OkStatus();
  }

  void Reply() override {
    HttpResponse out;
    out.status = response_.http().status();
    for (const v1::MetadataEntry& entry : response_.http().headers()) {
      if (IsForwardedHttpHeader(entry.key())) out.headers.emplace_back(entry.key(), entry.value());
    }
    // This SS's own, from the verified exchange; any value a backend set was dropped above.
    out.headers.emplace_back("X-Road-Client", FormatSubsystemId(envelope_.client()));
    out.headers.emplace_back("X-Road-Service", FormatServiceId(envelope_.service()));
    out.headers.emplace_back("X-Road-Id", envelope_.message_id());
    out.headers.emplace_back("X-Road-Request-Id", crypto::HexEncode(envelope_.nonce()));
    out.headers.emplace_back("X-Road-Request-Hash", absl::Base64Escape(response_.request_hash()));
    out.body = signed_response_.body();
    core_->node().metrics->Increment(out.status < 400 ? "darvoza_ss_consumer_exchanges_ok_total"
                                                      : "darvoza_ss_consumer_service_errors_total");
    CountExchange("");
    HttpReply reply = std::move(reply_);
    delete this;
    reply(std::move(out));
  }

  void FinishRefused(const absl::Status& status) override {
    HttpResponse out = RestFaultResponse(status, envelope_.message_id());
    HttpReply reply = std::move(reply_);
    delete this;
    reply(std::move(out));
  }

  HttpRequest request_;
  HttpReply reply_;
};

}  // namespace

void ServeRestRequest(ExchangeCore* core, HttpRequest request, HttpReply reply) {
  (new RestCall(core, std::move(request), std::move(reply)))->Start();
}

HttpResponse RestFaultResponse(const absl::Status& status, absl::string_view message_id) {
  std::string fault = FaultCode(status);
  if (fault.empty()) fault = std::string(faults::kInvalidRequest);
  HttpResponse out;
  out.status = absl::StartsWith(fault, "Client.") ? 400 : 500;
  out.headers.emplace_back("Content-Type", "application/json;charset=utf-8");
  out.headers.emplace_back("X-Road-Error", fault);
  if (!message_id.empty()) out.headers.emplace_back("X-Road-Id", std::string(message_id));
  out.body = absl::StrCat("{\"type\":", JsonQuote(fault), ",\"message\":",
                          JsonQuote(status.message()), ",\"detail\":", JsonQuote(message_id),
                          "}");
  return out;
}

}  // namespace darvoza::ss::exchange
