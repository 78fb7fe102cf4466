#include "security_server/provisioning.h"

#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/admin_token.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/globalconf.h"
#include "common/identifiers.h"
#include "common/status_macros.h"
#include "common/files.h"
#include "security_server/key_store.h"
#include "security_server/registry_client.h"

namespace darvoza::ss {
namespace {

std::string RequestFile(const std::string& data_dir) {
  return data_dir + "/registration.request";
}

}  // namespace

absl::Status InitSecurityServer(const InitOptions& options) {
  SsConfig config = options.config;
  DARVOZA_ASSIGN_OR_RETURN(v1::SecurityServerId server, ParseSecurityServerId(config.server_id));
  DARVOZA_ASSIGN_OR_RETURN(v1::ConfigurationAnchor anchor,
                           LoadConfigurationAnchor(options.anchor_file));
  if (anchor.instance() != server.owner().instance()) {
    return absl::InvalidArgumentError(absl::StrCat("the anchor is for instance ", anchor.instance(),
                                                   ", the server id for ",
                                                   server.owner().instance()));
  }
  std::vector<v1::MemberId> members;
  for (const auto& m : options.members) {
    DARVOZA_ASSIGN_OR_RETURN(v1::MemberId id, ParseMemberId(m));
    members.push_back(std::move(id));
  }
  if (members.empty()) members.push_back(server.owner());
  config.anchor = "";  // the installed copy
  // Validate what we write (e.g. the admin socket length) by parsing it back.
  std::string toml = FormatSsConfig(config);
  DARVOZA_RETURN_IF_ERROR(ParseSsConfig(toml).status());
  // Every refusal comes before the first change: a refused init leaves an existing directory
  // (its mode above all) as it was.
  DARVOZA_ASSIGN_OR_RETURN(bool exists, IsDirectory(config.data_dir));
  if (!exists && FileExists(config.data_dir)) {
    return absl::FailedPreconditionError(
        absl::StrCat(config.data_dir, " exists and is not a directory"));
  }
  if (exists && (FileExists(config.data_dir + "/keys") || FileExists(SsConfigPath(config.data_dir)))) {
    return absl::AlreadyExistsError(
        absl::StrCat(config.data_dir, " already holds a security server; use a fresh directory"));
  }
  DARVOZA_RETURN_IF_ERROR(MakeDirectory(config.data_dir, 0700));
  chmod(config.data_dir.c_str(), 0700);
  DARVOZA_RETURN_IF_ERROR(KeyStore::CreateKeys(config.data_dir, server, members).status());
  DARVOZA_RETURN_IF_ERROR(
      WriteFileAtomically(config.AnchorPath(), anchor.SerializeAsString(), 0644));
  DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(SsConfigPath(config.data_dir), toml, 0644));
  DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(config.data_dir + "/admin.token",
                                              crypto::HexEncode(crypto::RandomBytes(32)) + "\n",
                                              0600));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAdminToken(const std::string& data_dir) {
  return ::darvoza::ReadAdminToken(data_dir + "/admin.token");
}

RegistryAddressChoice ChooseRegistryAddresses(const std::vector<std::string>& flag,
                                              const SsConfig& config,
                                              const v1::ConfigurationAnchor& anchor) {
  if (!flag.empty()) return {flag, "--registry"};
  if (!config.registry_addresses.empty()) {
    return {config.registry_addresses, "ss.toml registry_addresses"};
  }
  return {{anchor.registry_addresses().begin(), anchor.registry_addresses().end()}, "the anchor"};
}

namespace {

bool RegistryDown(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
}

std::string SecondsText(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))), " s");
}

}  // namespace

absl::StatusOr<v1::RequestRecord> RegisterSecurityServer(const RegisterOptions& options) {
  DARVOZA_ASSIGN_OR_RETURN(SsConfig config, LoadSsConfig(SsConfigPath(options.data_dir)));
  DARVOZA_ASSIGN_OR_RETURN(v1::ConfigurationAnchor anchor,
                           LoadConfigurationAnchor(config.AnchorPath()));
  DARVOZA_ASSIGN_OR_RETURN(v1::SecurityServerId server, ParseSecurityServerId(config.server_id));
  RegistryAddressChoice choice =
      ChooseRegistryAddresses(options.registry_addresses, config, anchor);
  auto registry = RegistryClient::Create(anchor, choice.addresses);
  DARVOZA_ASSIGN_OR_RETURN(auto keys, KeyStore::Open(options.data_dir, anchor.root_ca_cert_der()));
  auto progress = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  const absl::Time give_up = absl::Now() + options.wait;
  // One call to the registry, repeated with a doubling pause while it does not answer and the
  // wait has not run out: a registry restarting or a network outage is what --wait is for.
  auto with_retries = [&](const auto& call) -> absl::StatusOr<v1::RequestRecord> {
    absl::Duration pause = options.poll_interval;
    while (true) {
      absl::StatusOr<v1::RequestRecord> result = call();
      if (result.ok() || !RegistryDown(result.status())) return result;
      const absl::Duration left = give_up - absl::Now();
      if (left < pause) return result;
      progress(absl::StrCat("registry not answering at ", absl::StrJoin(choice.addresses, ", "),
                            " (from ", choice.source, "): ", result.status().message(),
                            "; trying again in ", SecondsText(pause), ", giving up in ",
                            SecondsText(left)));
      std::this_thread::sleep_for(absl::ToChronoNanoseconds(pause));
      pause = std::min(pause * 2, options.max_backoff);
    }
  };

  v1::RequestRecord record;
  auto stored_id = ReadWholeFile(RequestFile(options.data_dir));
  if (stored_id.ok() && !stored_id->empty()) {
    DARVOZA_ASSIGN_OR_RETURN(record, with_retries([&] {
                               return registry->GetStatus(*stored_id, absl::Seconds(10));
                             }));
  } else {
    v1::ServerRegistration registration;
    *registration.mutable_server() = server;
    registration.set_address(config.AdvertisedAddress());
    // The CSRs `init` made, one per key.
    for (const auto& status : keys->Describe()) {
      v1::CsrSubmission sub;
      std::string name;
      if (status.kind() == "auth") {
        sub.set_kind(v1::CERT_KIND_AUTH);
        // The host the client port's certificate will name (the registry checks it).
        if (auto host = crypto::SubjectAltHostOf(registration.address()); host.ok()) {
          sub.set_tls_host(*host);
        }
      } else if (status.kind() == "seal") {
        sub.set_kind(v1::CERT_KIND_SEAL);
      } else {
        sub.set_kind(v1::CERT_KIND_SIGNING);
        *sub.mutable_member() = status.member();
      }
      name = KeyName(sub.kind(), &sub.member());
      DARVOZA_ASSIGN_OR_RETURN(std::string csr,
                               ReadWholeFile(absl::StrCat(options.data_dir, "/csr/", name, ".csr")));
      sub.set_csr(csr);
      *registration.add_csrs() = std::move(sub);
    }
    v1::SubmitRequest request;
    request.set_server_registration(registration.SerializeAsString());
    DARVOZA_ASSIGN_OR_RETURN(record, with_retries([&] {
                               return registry->Submit(request, absl::Seconds(10));
                             }));
    DARVOZA_RETURN_IF_ERROR(WriteFileAtomically(RequestFile(options.data_dir), record.id(), 0644));
  }
  if (record.state() == v1::PENDING && options.wait > absl::ZeroDuration()) {
    progress(absl::StrCat("registration request ", record.id(),
                          " is PENDING; the registry administrator approves it with `darvoza "
                          "registry request approve ",
                          record.id(), "`; waiting up to ", SecondsText(give_up - absl::Now())));
  }
  absl::Time next_report = absl::Now() + options.progress_interval;
  while (record.state() == v1::PENDING && absl::Now() < give_up) {
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.poll_interval));
    DARVOZA_ASSIGN_OR_RETURN(record, with_retries([&] {
                               return registry->GetStatus(record.id(), absl::Seconds(10));
                             }));
    if (record.state() == v1::PENDING && absl::Now() >= next_report) {
      progress(absl::StrCat("still PENDING; waiting up to ", SecondsText(give_up - absl::Now()),
                            " more"));
      next_report = absl::Now() + options.progress_interval;
    }
  }
  if (record.state() == v1::REJECTED) {
    unlink(RequestFile(options.data_dir).c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("registration ", record.id(), " was rejected: ", record.reason()));
  }
  if (record.state() == v1::APPROVED) {
    for (const auto& issued : record.certificates()) {
      DARVOZA_RETURN_IF_ERROR(keys->StoreCertificate(issued));
    }
  }
  return record;
}

}  // namespace darvoza::ss
