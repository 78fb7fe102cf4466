// `darvoza selfcheck`: exercises the crypto and Merkle code end to end on this machine with a
// throw-away CA, so an operator can see that the installed build works before going further.
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/signer.h"
#include "common/crypto/x509.h"
#include "common/merkle.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

// Prints one step; returns false (and sets the exit code) when it failed.
bool Step(const std::string& what, const absl::Status& status, int* exit_code) {
  if (status.ok()) {
    std::cout << "  ok    " << what << "\n";
    return true;
  }
  std::cout << "  FAIL  " << what << ": " << status.message() << "\n";
  *exit_code = 1;
  return false;
}

absl::Status Expect(bool condition, const std::string& message) {
  return condition ? absl::OkStatus() : absl::InternalError(message);
}

void RunSelfcheck(int* exit_code) {
  using namespace crypto;
  std::cout << "darvoza selfcheck\n";
  const absl::Time now = Clock::Real()->Now();

  auto ca_key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  if (!Step("generate a throw-away ECDSA P-256 CA key", ca_key.status(), exit_code)) return;
  auto ca_cert = IssueCertificate(**ca_key, nullptr, *(*ca_key)->GetPublicKey(),
                                  "darvoza selfcheck root CA",
                                  {.serial = 1, .not_before = now - absl::Minutes(1),
                                   .not_after = now + absl::Hours(1),
                                   .profile = CertificateProfile::kRootCa});
  if (!Step("self-sign the CA certificate", ca_cert.status(), exit_code)) return;

  auto member_key = PrivateKey::Generate(KeyAlgorithm::kEcdsaP256);
  if (!Step("generate a member signing key", member_key.status(), exit_code)) return;
  auto csr = CertificateRequest::Create(**member_key, "member:UZ-TEST/GOV/70000001");
  if (!Step("create a CSR for member:UZ-TEST/GOV/70000001", csr.status(), exit_code)) return;
  auto parsed_csr = CertificateRequest::Parse((*csr)->der());
  if (!Step("parse the CSR and check its self-signature", parsed_csr.status(), exit_code)) return;
  auto cert = IssueCertificate(**ca_key, ca_cert->get(), **parsed_csr,
                               {.serial = 2, .not_before = now - absl::Minutes(1),
                                .not_after = now + absl::Hours(1),
                                .profile = CertificateProfile::kSigning});
  if (!Step("issue a signing certificate from the CA", cert.status(), exit_code)) return;
  const CertificateProfile signing = CertificateProfile::kSigning;
  if (!Step("verify the chain to the CA at the current time",
            VerifyChain(**cert, {}, {*ca_cert}, now, RevocationList(), &signing), exit_code)) {
    return;
  }
  RevocationList revoked;
  revoked.Add((*cert)->issuer(), (*cert)->serial_hex());
  if (!Step("refuse the same certificate once revoked",
            Expect(!VerifyChain(**cert, {}, {*ca_cert}, now, revoked).ok(), "revoked accepted"),
            exit_code)) {
    return;
  }

  FileKeySigner signer(std::move(*member_key));
  const std::string message = "envelope bytes of a selfcheck request";
  auto signature = signer.Sign(SignatureContext::kRequest, message);
  if (!Step("sign a message with context darvoza.v1.request", signature.status(), exit_code)) {
    return;
  }
  if (!Step("verify the signature with the certificate's key",
            VerifyWithContext((*cert)->public_key(), SignatureContext::kRequest, message,
                              *signature),
            exit_code)) {
    return;
  }
  if (!Step("refuse the signature under another context (darvoza.v1.seal)",
            Expect(!VerifyWithContext((*cert)->public_key(), SignatureContext::kSeal, message,
                                      *signature)
                        .ok(),
                   "signature accepted under the wrong context"),
            exit_code)) {
    return;
  }

  std::vector<std::string> leaves;
  for (int i = 0; i < 11; ++i) leaves.push_back(Sha256("record " + std::to_string(i)));
  MerkleTree tree(leaves);
  const std::string root = tree.Root();
  auto proof = tree.InclusionProof(6);
  if (!Step("check a Merkle inclusion proof (leaf 6 of 11, RFC 6962)",
            VerifyMerkleInclusion(leaves[6], 6, tree.size(), proof, root), exit_code)) {
    return;
  }
  proof[1][0] = static_cast<char>(proof[1][0] ^ 1);
  if (!Step("refuse the proof with one sibling flipped",
            Expect(!VerifyMerkleInclusion(leaves[6], 6, tree.size(), proof, root).ok(),
                   "tampered proof accepted"),
            exit_code)) {
    return;
  }
  std::cout << "selfcheck passed\n";
}

}  // namespace

void AddSelfcheckCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "selfcheck",
      "Make a throw-away CA, issue a certificate, sign and verify a message and check a "
      "Merkle proof, printing each step");
  cmd->callback([exit_code] { RunSelfcheck(exit_code); });
}

}  // namespace darvoza::cli
