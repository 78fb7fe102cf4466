#include "security_server/renewal.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "security_server/registry_client.h"
#include "security_server/state_store.h"

namespace darvoza::ss {
namespace {

constexpr absl::string_view kRenewalRequestKey = "m/renewal_request";

v1::CertKind KindOf(const std::string& name) {
  if (name == "auth") return v1::CERT_KIND_AUTH;
  if (name == "seal") return v1::CERT_KIND_SEAL;
  return v1::CERT_KIND_SIGNING;
}

}  // namespace

std::string Renewer::PendingRequestId() const {
  auto id = options_.store->Get(kRenewalRequestKey);
  return id.ok() && id->has_value() ? **id : "";
}

absl::Status Renewer::Step() {
  absl::MutexLock lock(&mu_);
  std::string pending = PendingRequestId();
  if (!pending.empty()) {
    DARVOZA_ASSIGN_OR_RETURN(v1::RequestRecord record,
                             options_.registry->GetStatus(pending, absl::Seconds(10)));
    return ProcessRecord(record);
  }
  absl::Time now = options_.clock->Now();
  v1::ServerRegistration registration;
  *registration.mutable_server() = options_.self;
  registration.set_address(options_.address);
  for (const auto& cert : options_.keys->Describe()) {
    if (cert.not_after_unix_nanos() == 0) continue;  // never issued: `ss register`'s job
    v1::CertKind kind = KindOf(cert.kind());
    if (kind == v1::CERT_KIND_AUTH &&
        options_.keys->PendingCertificate(kind, nullptr) != nullptr) {
      continue;  // renewed; waiting for a configuration that lists it
    }
    if (FromUnixNanosField(cert.not_after_unix_nanos()) - options_.margin > now) continue;
    const v1::MemberId* member = kind == v1::CERT_KIND_SIGNING ? &cert.member() : nullptr;
    std::string cn = member != nullptr
                         ? absl::StrCat("member:", FormatMemberId(*member))
                         : absl::StrCat("server:", FormatSecurityServerId(options_.self));
    DARVOZA_ASSIGN_OR_RETURN(std::string csr,
                             options_.keys->CreateRenewalKey(kind, member, cn));
    v1::CsrSubmission* sub = registration.add_csrs();
    sub->set_kind(kind);
    sub->set_csr(csr);
    if (member != nullptr) *sub->mutable_member() = *member;
    if (kind == v1::CERT_KIND_AUTH) {
      if (auto host = crypto::SubjectAltHostOf(options_.address); host.ok()) {
        sub->set_tls_host(*host);
      }
    }
  }
  if (registration.csrs().empty()) return absl::OkStatus();
  std::string bytes = registration.SerializeAsString();
  DARVOZA_ASSIGN_OR_RETURN(SigningIdentity auth, options_.keys->AuthSigner());
  DARVOZA_ASSIGN_OR_RETURN(std::string signature,
                           auth.signer->Sign(crypto::SignatureContext::kRegistration, bytes));
  v1::SubmitRequest request;
  request.set_server_registration(bytes);
  request.set_renewal_signature(signature);
  DARVOZA_ASSIGN_OR_RETURN(v1::RequestRecord record,
                           options_.registry->Submit(request, absl::Seconds(10)));
  log::Event(log::Level::kInfo, "renewal.submitted", "submitted certificate renewal",
             {{"request", record.id()}, {"certificates", registration.csrs_size()}});
  StateBatch batch;
  batch.Put(std::string(kRenewalRequestKey), record.id());
  DARVOZA_RETURN_IF_ERROR(options_.store->Write(batch));
  if (options_.metrics != nullptr) {
    options_.metrics->Increment("darvoza_ss_certificate_renewals_submitted_total");
  }
  return ProcessRecord(record);
}

absl::Status Renewer::ProcessRecord(const v1::RequestRecord& record) {
  if (record.state() == v1::PENDING) return absl::OkStatus();
  StateBatch forget;
  forget.Delete(std::string(kRenewalRequestKey));
  if (record.state() == v1::REJECTED) {
    DARVOZA_RETURN_IF_ERROR(options_.store->Write(forget));
    return absl::FailedPreconditionError(
        absl::StrCat("certificate renewal ", record.id(), " was rejected: ", record.reason()));
  }
  for (const auto& issued : record.certificates()) {
    DARVOZA_RETURN_IF_ERROR(options_.keys->StoreRenewedCertificate(issued));
    if (issued.kind() != v1::CERT_KIND_AUTH) {
      DARVOZA_RETURN_IF_ERROR(options_.keys->PromotePending(
          issued.kind(), issued.kind() == v1::CERT_KIND_SIGNING ? &issued.member() : nullptr));
    }
  }
  DARVOZA_RETURN_IF_ERROR(options_.store->Write(forget));
  if (options_.metrics != nullptr) {
    options_.metrics->Increment("darvoza_ss_certificate_renewals_approved_total");
  }
  if (auto conf = options_.conf->LastGood(); conf != nullptr) TryPromoteAuth(*conf);
  return absl::OkStatus();
}

void Renewer::OnConf(const v1::GlobalConf& conf) {
  absl::MutexLock lock(&mu_);
  TryPromoteAuth(conf);
}

void Renewer::TryPromoteAuth(const v1::GlobalConf& conf) {
  auto pending = options_.keys->PendingCertificate(v1::CERT_KIND_AUTH, nullptr);
  if (pending == nullptr) return;
  for (const auto& server : conf.security_servers()) {
    if (!SameSecurityServer(server.id(), options_.self)) continue;
    for (const auto& fp : server.auth_cert_sha256()) {
      if (fp != pending->sha256()) continue;
      absl::Status s = options_.keys->PromotePending(v1::CERT_KIND_AUTH, nullptr);
      log::Event(s.ok() ? log::Level::kInfo : log::Level::kWarn, "renewal.switched",
                 "switching to the renewed auth certificate", {{"result", s.ToString()}});
      return;
    }
  }
}

std::vector<std::string> Renewer::Warnings() const {
  std::vector<std::string> out;
  absl::Time now = options_.clock->Now();
  for (const auto& cert : options_.keys->Describe()) {
    std::string what = cert.kind() == "signing"
                           ? absl::StrCat("signing certificate of ", FormatMemberId(cert.member()))
                           : absl::StrCat(cert.kind(), " certificate");
    if (cert.not_after_unix_nanos() == 0) {
      out.push_back(absl::StrCat(what, " not issued yet: run `darvoza ss register`"));
      continue;
    }
    absl::Time not_after = FromUnixNanosField(cert.not_after_unix_nanos());
    if (not_after <= now) {
      out.push_back(absl::StrCat(what, " EXPIRED at ", absl::FormatTime(not_after)));
    } else if (not_after - options_.warning <= now) {
      out.push_back(absl::StrCat(what, " expires in ",
                                 absl::FormatDuration(absl::Trunc(not_after - now, absl::Minutes(1))),
                                 cert.pending_renewal() ? " (renewal in progress)" : ""));
    }
  }
  return out;
}

}  // namespace darvoza::ss
