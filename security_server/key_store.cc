#include "security_server/key_store.h"

#include <dirent.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/clock.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "common/files.h"

namespace darvoza::ss {
namespace {

std::string KeyFile(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/keys/", name, ".key");
}
std::string CertFile(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/certs/", name, ".pem");
}
std::string NextKeyFile(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/keys/", name, ".next.key");
}
std::string NextCertFile(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/certs/", name, ".next.pem");
}

absl::string_view KindName(v1::CertKind kind) {
  switch (kind) {
    case v1::CERT_KIND_AUTH:
      return "auth";
    case v1::CERT_KIND_SEAL:
      return "seal";
    case v1::CERT_KIND_SIGNING:
      return "signing";
    default:
      return "unknown";
  }
}

absl::StatusOr<std::shared_ptr<const crypto::Certificate>> LoadCertIfAny(const std::string& path) {
  if (!FileExists(path)) return std::shared_ptr<const crypto::Certificate>();
  return crypto::Certificate::LoadFromFile(path);
}

}  // namespace

std::string KeyName(v1::CertKind kind, const v1::MemberId* member) {
  if (kind == v1::CERT_KIND_SIGNING && member != nullptr) {
    return absl::StrCat("signing-", absl::StrReplaceAll(FormatMemberId(*member), {{"/", "~"}}));
  }
  return std::string(KindName(kind));
}

absl::StatusOr<std::vector<v1::CsrSubmission>> KeyStore::CreateKeys(
    const std::string& data_dir, const v1::SecurityServerId& server,
    const std::vector<v1::MemberId>& members) {
  DARVOZA_RETURN_IF_ERROR(ValidateSecurityServerId(server));
  if (FileExists(KeyFile(data_dir, "auth"))) {
    return absl::AlreadyExistsError(absl::StrCat(data_dir, " already holds keys"));
  }
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(data_dir + "/keys", 0700));
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(data_dir + "/certs", 0755));
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(data_dir + "/csr", 0755));
  struct Want {
    v1::CertKind kind;
    std::optional<v1::MemberId> member;
    std::string cn;
  };
  std::vector<Want> wants;
  std::string server_cn = absl::StrCat("server:", FormatSecurityServerId(server));
  wants.push_back({v1::CERT_KIND_AUTH, std::nullopt, server_cn});
  wants.push_back({v1::CERT_KIND_SEAL, std::nullopt, server_cn});
  for (const auto& m : members) {
    DARVOZA_RETURN_IF_ERROR(ValidateMemberId(m));
    wants.push_back({v1::CERT_KIND_SIGNING, m, absl::StrCat("member:", FormatMemberId(m))});
  }
  std::vector<v1::CsrSubmission> out;
  for (const auto& want : wants) {
    std::string name = KeyName(want.kind, want.member ? &*want.member : nullptr);
    DARVOZA_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256));
    DARVOZA_RETURN_IF_ERROR(key->SaveToFile(KeyFile(data_dir, name)));
    DARVOZA_ASSIGN_OR_RETURN(auto csr, crypto::CertificateRequest::Create(*key, want.cn));
    DARVOZA_RETURN_IF_ERROR(
        WriteFileAtomically(absl::StrCat(data_dir, "/csr/", name, ".csr"), csr->ToPem(), 0644));
    v1::CsrSubmission sub;
    sub.set_kind(want.kind);
    sub.set_csr(csr->der());
    if (want.member) *sub.mutable_member() = *want.member;
    out.push_back(std::move(sub));
  }
  return out;
}

KeyStore::KeyStore(std::string data_dir, std::string root_ca_der)
    : data_dir_(std::move(data_dir)), root_ca_der_(std::move(root_ca_der)) {}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& data_dir,
                                                         const std::string& root_ca_der) {
  std::unique_ptr<KeyStore> store(new KeyStore(data_dir, root_ca_der));
  DIR* dir = opendir((data_dir + "/keys").c_str());
  if (dir == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, "/keys is missing: run `darvoza ss init` first"));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    absl::string_view file = e->d_name;
    if (!absl::ConsumeSuffix(&file, ".key") || absl::EndsWith(file, ".next")) continue;
    names.emplace_back(file);
  }
  closedir(dir);
  for (const auto& name : names) {
    if (name == "auth") {
      DARVOZA_RETURN_IF_ERROR(store->LoadSlot(v1::CERT_KIND_AUTH, nullptr));
    } else if (name == "seal") {
      DARVOZA_RETURN_IF_ERROR(store->LoadSlot(v1::CERT_KIND_SEAL, nullptr));
    } else if (absl::StartsWith(name, "signing-")) {
      std::string text = absl::StrReplaceAll(name.substr(8), {{"~", "/"}});
      DARVOZA_ASSIGN_OR_RETURN(v1::MemberId member, ParseMemberId(text));
      DARVOZA_RETURN_IF_ERROR(store->LoadSlot(v1::CERT_KIND_SIGNING, &member));
    }
  }
  absl::MutexLock lock(&store->mu_);
  if (!store->slots_.contains("auth")) {
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, " holds no auth key: run `darvoza ss init` first"));
  }
  return store;
}

absl::Status KeyStore::LoadSlot(v1::CertKind kind, const v1::MemberId* member) {
  std::string name = KeyName(kind, member);
  Slot slot;
  slot.kind = kind;
  if (member != nullptr) slot.member = *member;
  DARVOZA_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::LoadFromFile(KeyFile(data_dir_, name)));
  slot.public_key_der = key->PublicKeyDer();
  slot.signer = std::make_shared<crypto::FileKeySigner>(std::move(key));
  DARVOZA_ASSIGN_OR_RETURN(slot.cert, LoadCertIfAny(CertFile(data_dir_, name)));
  if (FileExists(NextKeyFile(data_dir_, name))) {
    DARVOZA_ASSIGN_OR_RETURN(slot.next_key,
                             crypto::PrivateKey::LoadFromFile(NextKeyFile(data_dir_, name)));
    DARVOZA_ASSIGN_OR_RETURN(slot.next_cert, LoadCertIfAny(NextCertFile(data_dir_, name)));
  }
  absl::MutexLock lock(&mu_);
  slots_[name] = std::move(slot);
  return absl::OkStatus();
}

std::string KeyStore::AuthKeyPath() const { return KeyFile(data_dir_, "auth"); }
std::string KeyStore::AuthCertPath() const { return CertFile(data_dir_, "auth"); }

absl::StatusOr<std::shared_ptr<const crypto::Certificate>> KeyStore::AuthCert() const {
  absl::MutexLock lock(&mu_);
  DARVOZA_ASSIGN_OR_RETURN(SigningIdentity id, Identity("auth"));
  return id.cert;
}

absl::StatusOr<std::string> KeyStore::AuthKeyPem() const {
  absl::MutexLock lock(&mu_);
  return ReadWholeFile(AuthKeyPath());
}

absl::StatusOr<std::string> KeyStore::AuthCertChainPem() const {
  absl::MutexLock lock(&mu_);
  DARVOZA_ASSIGN_OR_RETURN(SigningIdentity id, Identity("auth"));
  DARVOZA_ASSIGN_OR_RETURN(auto root, crypto::Certificate::FromDer(root_ca_der_));
  return absl::StrCat(id.cert->ToPem(), root->ToPem());
}

absl::StatusOr<SigningIdentity> KeyStore::Identity(const std::string& name) const {
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    return absl::NotFoundError(absl::StrCat("this security server holds no ", name, " key"));
  }
  if (it->second.cert == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no certificate for the ", name, " key yet: run `darvoza ss register` and get it approved"));
  }
  SigningIdentity id;
  id.signer = it->second.signer;
  id.cert = it->second.cert;
  id.cert_chain_der = {it->second.cert->der(), root_ca_der_};
  return id;
}

absl::StatusOr<SigningIdentity> KeyStore::AuthSigner() const {
  absl::MutexLock lock(&mu_);
  return Identity("auth");
}

absl::StatusOr<SigningIdentity> KeyStore::SealSigner() const {
  absl::MutexLock lock(&mu_);
  return Identity("seal");
}

absl::StatusOr<SigningIdentity> KeyStore::SigningSigner(const v1::MemberId& member) const {
  absl::MutexLock lock(&mu_);
  return Identity(KeyName(v1::CERT_KIND_SIGNING, &member));
}

std::vector<v1::MemberId> KeyStore::SigningMembers() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::MemberId> out;
  for (const auto& [name, slot] : slots_) {
    if (slot.kind == v1::CERT_KIND_SIGNING) out.push_back(slot.member);
  }
  return out;
}

absl::Status KeyStore::StoreCertificate(const v1::IssuedCertificate& issued) {
  std::string name = KeyName(issued.kind(), &issued.member());
  DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::Certificate::FromDer(issued.cert_der()));
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(name);
  if (it == slots_.end()) {
    return absl::NotFoundError(absl::StrCat("no ", name, " key for the issued certificate"));
  }
  if (cert->public_key().der() != it->second.public_key_der) {
    return absl::InvalidArgumentError(
        absl::StrCat("the issued ", name, " certificate is not for this server's ", name, " key"));
  }
  DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(CertFile(data_dir_, name), cert->ToPem(), 0644));
  it->second.cert = std::move(cert);
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyStore::CreateRenewalKey(v1::CertKind kind,
                                                       const v1::MemberId* member,
                                                       const std::string& common_name) {
  std::string name = KeyName(kind, member);
  DARVOZA_ASSIGN_OR_RETURN(auto key, crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256));
  DARVOZA_ASSIGN_OR_RETURN(auto csr, crypto::CertificateRequest::Create(*key, common_name));
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(name);
  if (it == slots_.end()) return absl::NotFoundError(absl::StrCat("no ", name, " key to renew"));
  DARVOZA_RETURN_IF_ERROR(key->SaveToFile(NextKeyFile(data_dir_, name), /*overwrite=*/true));
  std::string next_cert = NextCertFile(data_dir_, name);
  if (FileExists(next_cert)) unlink(next_cert.c_str());
  it->second.next_key = std::move(key);
  it->second.next_cert = nullptr;
  return csr->der();
}

absl::Status KeyStore::StoreRenewedCertificate(const v1::IssuedCertificate& issued) {
  std::string name = KeyName(issued.kind(), &issued.member());
  DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::Certificate::FromDer(issued.cert_der()));
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(name);
  if (it == slots_.end() || it->second.next_key == nullptr) {
    return absl::NotFoundError(absl::StrCat("no pending renewal key for ", name));
  }
  if (cert->public_key().der() != it->second.next_key->PublicKeyDer()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the renewed ", name, " certificate is not for the pending key"));
  }
  DARVOZA_RETURN_IF_ERROR(
      WriteFileAtomically(NextCertFile(data_dir_, name), cert->ToPem(), 0644));
  it->second.next_cert = std::move(cert);
  return absl::OkStatus();
}

std::shared_ptr<const crypto::Certificate> KeyStore::PendingCertificate(
    v1::CertKind kind, const v1::MemberId* member) const {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(KeyName(kind, member));
  return it == slots_.end() ? nullptr : it->second.next_cert;
}

absl::Status KeyStore::PromotePending(v1::CertKind kind, const v1::MemberId* member) {
  std::string name = KeyName(kind, member);
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(name);
  if (it == slots_.end() || it->second.next_cert == nullptr) {
    return absl::NotFoundError(absl::StrCat("no renewed ", name, " certificate to switch to"));
  }
  Slot& slot = it->second;
  DARVOZA_RETURN_IF_ERROR(RenameFile(NextKeyFile(data_dir_, name), KeyFile(data_dir_, name)));
  DARVOZA_RETURN_IF_ERROR(RenameFile(NextCertFile(data_dir_, name), CertFile(data_dir_, name)));
  slot.public_key_der = slot.next_key->PublicKeyDer();
  slot.signer = std::make_shared<crypto::FileKeySigner>(std::move(slot.next_key));
  slot.cert = std::move(slot.next_cert);
  slot.next_key = nullptr;
  slot.next_cert = nullptr;
  return absl::OkStatus();
}

std::vector<v1::CertificateStatus> KeyStore::Describe() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::CertificateStatus> out;
  for (const auto& [name, slot] : slots_) {
    v1::CertificateStatus st;
    st.set_kind(std::string(KindName(slot.kind)));
    if (slot.kind == v1::CERT_KIND_SIGNING) *st.mutable_member() = slot.member;
    if (slot.cert != nullptr) {
      st.set_sha256(slot.cert->sha256());
      st.set_not_after_unix_nanos(ToUnixNanosField(slot.cert->not_after()));
    }
    st.set_pending_renewal(slot.next_key != nullptr);
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace darvoza::ss
