#include "tests/exchange/two_agencies.h"

#include <catch2/catch.hpp>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"

namespace darvoza::testing {

Backend::Backend(const std::string& name) : service_(name) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(32 << 20);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  REQUIRE(server_ != nullptr);
}

Backend::~Backend() { server_->Shutdown(); }

std::string Backend::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::shared_ptr<grpc::Channel> TlsChannelAs(const std::string& key_path,
                                            const std::string& cert_path,
                                            const std::string& address) {
  auto identity = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      key_path, cert_path, 1);
  grpc::experimental::TlsChannelCredentialsOptions tls;
  tls.set_certificate_provider(identity);
  tls.watch_identity_key_cert_pairs();
  tls.set_verify_server_certs(false);
  tls.set_check_call_host(false);
  tls.set_certificate_verifier(
      grpc::experimental::ExternalCertificateVerifier::Create<AcceptAnyServerCertificate>());
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::experimental::TlsCredentials(tls), args);
}

TwoAgencies::TwoAgencies(Clock* clock) : fed("UZ", clock) {
  fed.AddMember(kTaxMember, "State Tax Committee");
  fed.AddMember(kBenefitsMember, "Ministry of Employment");
  fed.AddSubsystem(kTaxSubsystem);
  fed.AddSubsystem(kBenefitsSubsystem);
  provider = &fed.StartSecurityServer("UZ/GOV/70000001/ss1");
  consumer = &fed.StartSecurityServer("UZ/GOV/70000002/ss2");
  fed.Host(*provider, kTaxSubsystem);
  fed.Host(*consumer, kBenefitsSubsystem);
  fed.AddService(*provider, kTaxSubsystem, kGrpcService, backend.address());
  fed.Grant(*provider, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
            absl::StrCat("subsystem:", kBenefitsSubsystem));
  fed.WaitForConfEverywhere();
}

}  // namespace darvoza::testing
