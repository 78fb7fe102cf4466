// audit_verify_bench: how fast strict verification of a whole log is. Builds a log of N records
// (exchange-like records with a 512-byte body each, sealed about every 1000 records, every seal
// witnessed), then times what `darvoza audit verify DIR` does: open the log as a secondary
// reader, export it, verify it strictly. Prints records per second of wall and of CPU time for
// each phase and overall, with the peak RSS (verification holds the exported log in memory).
//
//   audit_verify_bench [--dir DIR] [--records N]   (default N = 1000000)
//
// Build in Release mode for numbers worth quoting.
#include <stdlib.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "audit/witness.h"
#include "common/clock.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "common/seal.h"
#include "proto/envelope.pb.h"

namespace {

using Steady = std::chrono::steady_clock;
namespace audit = darvoza::audit;
namespace crypto = darvoza::crypto;

double Seconds(Steady::time_point a, Steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, v.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(v);
}

void OrDie(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

// Receipts for every seal, signed with the shared rules (common/seal.h); no head bookkeeping:
// the log sends its seals strictly in order.
class BenchWitness final : public audit::Witness {
 public:
  BenchWitness(crypto::Signer* signer, std::string cert_der)
      : signer_(signer), cert_der_(std::move(cert_der)) {}
  absl::StatusOr<darvoza::v1::SignedWitnessReceipt> WitnessSeal(
      const darvoza::v1::SignedSeal& seal) override {
    darvoza::v1::Seal parsed;
    if (!parsed.ParseFromString(seal.seal())) return absl::InvalidArgumentError("seal");
    return darvoza::SignWitnessReceipt(
        darvoza::MakeWitnessReceipt(seal, parsed, absl::Now()), *signer_, cert_der_);
  }

 private:
  crypto::Signer* const signer_;
  const std::string cert_der_;
};

std::shared_ptr<const crypto::Certificate> Issue(const crypto::PrivateKey& ca_key,
                                                 const crypto::Certificate* ca_cert,
                                                 const crypto::PrivateKey& subject,
                                                 const std::string& cn, uint64_t serial,
                                                 crypto::CertificateProfile profile) {
  crypto::IssueOptions opts{.serial = serial,
                            .not_before = absl::Now() - absl::Hours(24),
                            .not_after = absl::Now() + absl::Hours(24 * 365),
                            .profile = profile};
  return OrDie(crypto::IssueCertificate(ca_key, ca_cert, *subject.GetPublicKey(), cn, opts),
               "issue");
}

audit::AppendRequest Record(uint64_t n, const darvoza::v1::SubsystemId& client,
                            const darvoza::v1::ServiceId& service) {
  audit::AppendRequest request;
  darvoza::v1::AuditRecord& r = request.record;
  r.set_kind(n % 2 == 0 ? darvoza::v1::REQUEST_OUT : darvoza::v1::RESPONSE_IN);
  r.set_message_id(absl::StrCat("bench-", n));
  *r.mutable_client() = client;
  *r.mutable_service() = service;
  darvoza::v1::Envelope envelope;
  envelope.set_message_id(r.message_id());
  *envelope.mutable_client() = client;
  *envelope.mutable_service() = service;
  envelope.set_nonce(absl::StrCat("nonce-", n));
  r.set_envelope(envelope.SerializeAsString());
  r.set_signature(std::string(72, 's'));
  std::string body(512, 'b');
  std::memcpy(body.data(), &n, sizeof(n));  // distinct bodies: each is stored
  request.body = std::move(body);
  return request;
}

// CPU seconds (user + system) of this process so far: on a shared machine wall time says more
// about the neighbours than about the verifier.
double CpuSeconds() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  auto s = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

long PeakRssMiB() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t records = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--records") == 0) records = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (dir.empty()) {
    char templ[] = "audit-verify-bench-XXXXXX";
    if (mkdtemp(templ) == nullptr) return 1;
    dir = templ;
  }
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/audit";
  const std::string secondary = dir + "/secondary";

  auto root_key = OrDie(crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256), "key");
  auto root = Issue(*root_key, nullptr, *root_key, "Bench Root", 1,
                    crypto::CertificateProfile::kRootCa);
  auto seal_key = OrDie(crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256), "key");
  auto seal_cert = Issue(*root_key, root.get(), *seal_key, "server:UZ/GOV/70000001/bench", 2,
                         crypto::CertificateProfile::kSigning);
  crypto::FileKeySigner seal_signer(std::move(seal_key));
  auto witness_key = OrDie(crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256), "key");
  auto witness_cert = Issue(*root_key, root.get(), *witness_key, "registry:witness", 3,
                            crypto::CertificateProfile::kSigning);
  crypto::FileKeySigner witness_signer(std::move(witness_key));
  BenchWitness witness(&witness_signer, witness_cert->der());

  const auto client = OrDie(darvoza::ParseSubsystemId("UZ/GOV/70000001/bench-client"), "id");
  const auto service =
      OrDie(darvoza::ParseServiceId("UZ/GOV/70000002/bench-service/echo"), "id");
  {
    audit::AuditLogOptions options;
    options.path = path;
    options.server = OrDie(darvoza::ParseSecurityServerId("UZ/GOV/70000001/bench"), "id");
    options.seal_signer = &seal_signer;
    options.seal_cert_der = seal_cert->der();
    options.witness = &witness;
    options.seal_every_records = 1000;
    options.seal_interval = absl::Hours(24);  // seals by count only
    options.sync = false;                     // building the log is not what is measured
    auto log = OrDie(audit::AuditLog::Open(options), "open");
    const auto start = Steady::now();
    absl::Mutex mu;
    uint64_t done = 0;
    bool failed = false;
    // Few enough in flight that a group commit, and so a seal, holds about 1000 records.
    constexpr uint64_t kInFlight = 1000;
    for (uint64_t n = 1; n <= records; ++n) {
      if (n > kInFlight) {
        absl::MutexLock l(&mu);
        const uint64_t need = n - kInFlight;
        auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done >= need; };
        mu.Await(absl::Condition(&enough));
      }
      log->Append(Record(n, client, service), [&](absl::StatusOr<audit::AppendResult> r) {
        absl::MutexLock l(&mu);
        ++done;
        if (!r.ok()) failed = true;
      });
    }
    {
      absl::MutexLock l(&mu);
      auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return done == records; };
      mu.Await(absl::Condition(&all));
      if (failed) {
        std::fprintf(stderr, "an append failed\n");
        return 1;
      }
    }
    OrDie(log->SealNow(), "seal");
    OrDie(log->WitnessNow(), "witness");
    auto stats = OrDie(log->Stats(), "stats");
    std::printf("built %llu records, %llu seals, %llu receipts in %.1f s\n",
                static_cast<unsigned long long>(stats.head_seq),
                static_cast<unsigned long long>(stats.seals),
                static_cast<unsigned long long>(stats.receipts), Seconds(start, Steady::now()));
  }

  // What `darvoza audit verify DIR` does.
  audit::VerifyOptions options;
  options.trust.roots.push_back(root);
  options.trust.witness_cert_sha256.insert(witness_cert->sha256());
  const auto t0 = Steady::now();
  const double c0 = CpuSeconds();
  auto reader = OrDie(audit::AuditReader::Open(path, secondary), "reader");
  const auto t1 = Steady::now();
  const double c1 = CpuSeconds();
  auto archive = OrDie(reader->Export(audit::ExportOptions{}), "export");
  const auto t2 = Steady::now();
  const double c2 = CpuSeconds();
  audit::VerifyReport report = audit::VerifyArchive(archive, options);
  const auto t3 = Steady::now();
  const double c3 = CpuSeconds();
  std::printf("%s", report.ToText().c_str());
  if (!report.ok) return 1;
  const double n = static_cast<double>(report.records);
  std::printf("phase   wall s   records/s (wall)   CPU s   records/CPU-s\n");
  auto row = [n](const char* name, double wall, double cpu) {
    std::printf("%-6s %7.2f %18.0f %7.2f %15.0f\n", name, wall, n / wall, cpu, n / cpu);
  };
  row("open", Seconds(t0, t1), c1 - c0);
  row("export", Seconds(t1, t2), c2 - c1);
  row("verify", Seconds(t2, t3), c3 - c2);
  row("total", Seconds(t0, t3), c3 - c0);
  std::printf("peak RSS %ld MiB\n", PeakRssMiB());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
