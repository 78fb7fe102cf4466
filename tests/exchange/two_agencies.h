// Two agencies on a federation (tests/exchange/federation.h): the State Tax Committee's
// security server offering the example TaxRegistry backend, and the Ministry of Employment's
// security server whose `benefits` subsystem may call it. Shared by the exchange tests.
#ifndef DARVOZA_TESTS_EXCHANGE_TWO_AGENCIES_H_
#define DARVOZA_TESTS_EXCHANGE_TWO_AGENCIES_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_verifier.h>

#include "adapters/examples/tax_registry_service.h"
#include "tests/exchange/federation.h"

namespace darvoza::testing {

inline constexpr char kTaxMember[] = "UZ/GOV/70000001";
inline constexpr char kTaxSubsystem[] = "UZ/GOV/70000001/tax-registry";
inline constexpr char kBenefitsMember[] = "UZ/GOV/70000002";
inline constexpr char kBenefitsSubsystem[] = "UZ/GOV/70000002/benefits";
inline constexpr char kGrpcService[] = "darvoza.examples.v1.TaxRegistry";

// The example backend on a loopback port.
class Backend {
 public:
  explicit Backend(const std::string& name);
  ~Backend();
  std::string address() const;
  int64_t hits() const { return service_.hits(); }
  const examples::TaxRegistryService& service() const { return service_; }

 private:
  examples::TaxRegistryService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// Accepts any server certificate: for test clients that play an IS or a (possibly hostile)
// consumer SS and want to reach the server's own checks.
class AcceptAnyServerCertificate final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest*,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    *sync_status = grpc::Status::OK;
    return true;
  }
  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}
};

// A TLS channel presenting the identity in `key_path`/`cert_path`, trusting any server.
std::shared_ptr<grpc::Channel> TlsChannelAs(const std::string& key_path,
                                            const std::string& cert_path,
                                            const std::string& address);

struct TwoAgencies {
  Federation fed;
  Backend backend{"tax-backend"};
  Federation::SecurityServer* provider = nullptr;  // UZ/GOV/70000001/ss1
  Federation::SecurityServer* consumer = nullptr;  // UZ/GOV/70000002/ss2

  explicit TwoAgencies(Clock* clock = nullptr);
};

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_EXCHANGE_TWO_AGENCIES_H_
