// `darvoza keygen` and `darvoza cert show`: keys and certificates on the operator's disk.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/time/time.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

absl::string_view ProfileName(const crypto::Certificate& cert) {
  auto profile = cert.profile();
  if (!profile.ok()) return "unknown";
  switch (*profile) {
    case crypto::CertificateProfile::kRootCa:
      return "root CA";
    case crypto::CertificateProfile::kTlsAuth:
      return "TLS authentication";
    case crypto::CertificateProfile::kSigning:
      return "signing";
  }
  return "unknown";
}

}  // namespace

void AddKeyCommands(CLI::App& app, int* exit_code) {
  struct KeygenArgs {
    std::string algorithm = "ecdsa-p256";
    std::string out;
    std::string csr_out;
    std::string subject;
    bool overwrite = false;
  };
  auto args = std::make_shared<KeygenArgs>();
  CLI::App* keygen = app.add_subcommand(
      "keygen", "Create a private key (PKCS#8 PEM, mode 0600) and optionally a CSR for it");
  keygen->add_option("--algorithm", args->algorithm, "ecdsa-p256 (default, fastest) or ed25519")
      ->check(CLI::IsMember({"ecdsa-p256", "ed25519"}));
  keygen->add_option("--out", args->out, "Private key file to create")->required();
  keygen->add_option("--csr", args->csr_out, "Also write a PEM certificate signing request here");
  keygen->add_option("--subject", args->subject,
                     "Kind-prefixed identifier for the CSR subject, e.g. server:UZ/GOV/1/ss1");
  keygen->add_flag("--overwrite", args->overwrite, "Replace an existing key file");
  keygen->callback([args, exit_code] {
    auto algorithm = crypto::ParseKeyAlgorithm(args->algorithm);
    auto key = algorithm.ok() ? crypto::PrivateKey::Generate(*algorithm)
                              : absl::StatusOr<std::unique_ptr<crypto::PrivateKey>>(
                                    algorithm.status());
    if (!key.ok()) {
      std::cerr << "error: " << key.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    absl::Status saved = (*key)->SaveToFile(args->out, args->overwrite);
    if (!saved.ok()) {
      std::cerr << "error: cannot write " << args->out << ": " << saved.message()
                << (saved.code() == absl::StatusCode::kAlreadyExists ? " (use --overwrite)" : "")
                << "\n";
      *exit_code = 1;
      return;
    }
    std::cout << "key:         " << args->out << " (" << args->algorithm << ", mode 0600)\n";
    std::cout << "public key:  sha256:" << crypto::HexEncode(crypto::Sha256((*key)->PublicKeyDer()))
              << "\n";
    if (!args->csr_out.empty()) {
      if (args->subject.empty()) {
        std::cerr << "error: --csr needs --subject (e.g. server:UZ/GOV/70000001/ss1)\n";
        *exit_code = 2;
        return;
      }
      auto csr = crypto::CertificateRequest::Create(**key, args->subject);
      if (!csr.ok()) {
        std::cerr << "error: " << csr.status().message() << "\n";
        *exit_code = 1;
        return;
      }
      std::ofstream out(args->csr_out, std::ios::trunc);
      out << (*csr)->ToPem();
      if (!out) {
        std::cerr << "error: cannot write " << args->csr_out << "\n";
        *exit_code = 1;
        return;
      }
      std::cout << "csr:         " << args->csr_out << " (subject " << args->subject << ")\n";
    }
  });

  CLI::App* cert = app.add_subcommand("cert", "Inspect X.509 certificates");
  cert->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  CLI::App* show = cert->add_subcommand("show", "Print a certificate (PEM or DER) readably");
  show->add_option("FILE", *file, "Certificate file")->required();
  show->callback([file, exit_code] {
    auto parsed = crypto::Certificate::LoadFromFile(*file);
    if (!parsed.ok()) {
      std::cerr << "error: " << *file << ": " << parsed.status().message() << "\n";
      *exit_code = 1;
      return;
    }
    const crypto::Certificate& c = **parsed;
    std::cout << "subject:     " << c.subject() << "\n"
              << "identifier:  " << c.subject_common_name() << "\n"
              << "issuer:      " << c.issuer() << "\n"
              << "serial:      " << c.serial_hex() << "\n"
              << "not before:  " << absl::FormatTime(c.not_before(), absl::UTCTimeZone()) << "\n"
              << "not after:   " << absl::FormatTime(c.not_after(), absl::UTCTimeZone()) << "\n"
              << "profile:     " << ProfileName(c) << "\n"
              << "key:         " << crypto::KeyAlgorithmName(c.public_key().algorithm()) << "\n"
              << "sha256:      " << crypto::HexEncode(c.sha256()) << "\n";
  });
}

}  // namespace darvoza::cli
