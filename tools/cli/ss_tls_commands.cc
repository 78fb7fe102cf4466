// `darvoza ss tls export`: what an information system needs to reach this security server's
// client mTLS port with a stock TLS client (docs/integrator.md): the port's certificate chain and
// the CA to trust, with their fingerprints and the host names the certificate is valid for.
//
// It reads the data directory directly (the same files the daemon serves), so it works whether
// or not darvoza-ss is running.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/files.h"
#include "common/globalconf.h"
#include "security_server/config.h"
#include "security_server/key_store.h"
#include "security_server/node.h"
#include "tools/cli/cli_util.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

struct ExportOptions {
  std::string data_dir;
  std::string out_dir;
  std::string cert_file;  // default <out_dir>/client-tls.pem
  std::string ca_file;    // default <out_dir>/ca.pem
};

void PrintCertificate(absl::string_view what, const std::string& file,
                      const crypto::Certificate& cert) {
  std::cout << what << "  " << file << "\n"
            << "  subject  " << cert.subject() << "\n"
            << "  sha256   " << crypto::HexEncode(cert.sha256()) << "\n"
            << "  valid until "
            << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", cert.not_after(), absl::UTCTimeZone())
            << "\n";
}

absl::Status Export(const ExportOptions& options) {
  if (options.out_dir.empty() && (options.cert_file.empty() || options.ca_file.empty())) {
    return absl::InvalidArgumentError("give --out-dir, or both --cert and --ca");
  }
  auto config = ss::LoadSsConfig(ss::SsConfigPath(options.data_dir));
  if (!config.ok()) return config.status();
  auto anchor = LoadConfigurationAnchor(config->AnchorPath());
  if (!anchor.ok()) return anchor.status();
  auto keys = ss::KeyStore::Open(options.data_dir, anchor->root_ca_cert_der());
  if (!keys.ok()) return keys.status();
  auto cert = (*keys)->AuthCert();
  if (!cert.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no client-port certificate yet (", cert.status().message(),
        "): run `darvoza ss register` and have the registry approve it"));
  }
  auto chain = (*keys)->AuthCertChainPem();
  if (!chain.ok()) return chain.status();
  auto ca = crypto::Certificate::FromDer(anchor->root_ca_cert_der());
  if (!ca.ok()) return ca.status();

  if (!options.out_dir.empty()) {
    auto is_dir = IsDirectory(options.out_dir);
    if (!is_dir.ok() || !*is_dir) {
      if (auto made = MakeDirectory(options.out_dir, 0755); !made.ok()) return made;
    }
  }
  const std::string cert_file = !options.cert_file.empty()
                                    ? options.cert_file
                                    : options.out_dir + "/client-tls.pem";
  const std::string ca_file =
      !options.ca_file.empty() ? options.ca_file : options.out_dir + "/ca.pem";
  // Public material: readable by whoever configures the information system.
  if (auto s = WriteFileAtomically(cert_file, *chain, 0644); !s.ok()) return s;
  if (auto s = WriteFileAtomically(ca_file, (*ca)->ToPem(), 0644); !s.ok()) return s;

  PrintCertificate("client-port certificate chain", cert_file, **cert);
  const std::vector<std::string> hosts = (*cert)->SubjectAltHosts();
  std::cout << "  hosts    " << (hosts.empty() ? "(none)" : absl::StrJoin(hosts, " ")) << "\n";
  PrintCertificate("CA the information system trusts", ca_file, **ca);
  // The bound port when the daemon runs (ss.toml may say port 0), else the configured one.
  std::string port = config->client_tls_listen.empty()
                         ? "off (client_tls_listen = \"\" in ss.toml)"
                         : config->client_tls_listen;
  if (auto listen = ss::ReadListenFile(options.data_dir); listen.ok() && !listen->client_tls.empty()) {
    port = listen->client_tls;
  }
  std::cout << "client TLS port  " << port << "\n";
  if (hosts.empty()) {
    std::cerr << "warning: this certificate names no host, so stock TLS clients cannot verify "
                 "it; it was issued before the registry put the approved address's host in "
                 "certificates (or that address has no usable host): it gets one at its next "
                 "renewal\n";
  }
  return absl::OkStatus();
}

}  // namespace

void AddSsTlsCommands(CLI::App& ss, int* exit_code) {
  auto* tls = ss.add_subcommand("tls", "the client mTLS port's certificate");
  tls->require_subcommand(1);
  auto opts = std::make_shared<ExportOptions>();
  auto* exp = tls->add_subcommand(
      "export", "write the client-port certificate chain and the CA an information system trusts");
  exp->add_option("--data-dir", opts->data_dir, "SS data directory")->required();
  exp->add_option("--out-dir", opts->out_dir,
                  "directory for client-tls.pem and ca.pem (created when missing)");
  exp->add_option("--cert", opts->cert_file, "file for the certificate chain (PEM)");
  exp->add_option("--ca", opts->ca_file, "file for the CA certificate (PEM)");
  exp->callback([opts, exit_code] {
    absl::Status s = Export(*opts);
    if (!s.ok()) *exit_code = PrintFailure(s, "");
  });
}

}  // namespace darvoza::cli
