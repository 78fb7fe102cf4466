// TLS on the REST interface, through real sockets: the consumer SS's TLS REST port with the
// IS's certificate pinned (curl --cert/--key), https:// backends on the provider SS with their
// own CA and a client certificate (an HTTPS backend on the process's HttpServer, and python3's
// ssl module for a backend that requires client certificates), and HttpServer's TLS option
// itself (TLS 1.3 only, a renewed certificate served without a restart).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/http_server.h"
#include "common/identifiers.h"
#include "tests/rest/rest_fixture.h"
#include "tests/test_support.h"

extern char** environ;

namespace darvoza::testing {
namespace {

constexpr char kSecureSubsystem[] = "UZ/GOV/70000002/secure";
constexpr char kSslFault[] = "Server.ClientProxy.SslAuthenticationFailed";
constexpr char kServiceFailed[] = "Server.ServerProxy.ServiceFailed";

// The test's certificates, made by openssl(1) in `dir`: a CA and a certificate it issued for
// 127.0.0.1 (an HTTPS backend), a client certificate from the same CA (the provider SS towards
// a backend), another CA, and two self-signed IS identities. Keys are P-256, PKCS#8 PEM.
void MakeCertificates(const TempDir& dir) {
  const std::string script = absl::StrCat(R"(set -e
cd ')", dir.path(), R"('
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
self_signed() { key "$1"; openssl req -x509 -new -key "$1.key" -subj "/CN=$1" -days 2 -out "$1.pem"; }
issued() {
  key "$1"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf '%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem"
}
self_signed ca
self_signed other-ca
issued backend "subjectAltName=IP:127.0.0.1"
issued client "extendedKeyUsage=clientAuth"
self_signed pinned-is
self_signed other-is
)");
  WriteFileForTest(dir.File("make.sh"), script);
  REQUIRE(std::system(absl::StrCat("bash '", dir.File("make.sh"), "' 2>/dev/null").c_str()) ==
          0);
}

std::string Pem(const TempDir& dir, const std::string& name) {
  std::string text = ReadFileForTest(dir.File(name));
  REQUIRE(!text.empty());
  return text;
}

// SHA-256 of a certificate file's DER: a client pin.
std::string CertSha256(const std::string& path) {
  auto cert = crypto::Certificate::LoadFromFile(path);
  REQUIRE(cert.ok());
  return (*cert)->sha256();
}

// curl's --pinnedpubkey for a certificate: the server is checked by its key, as the IS checks
// its SS (the SS's TLS certificate names no host).
std::string PublicKeyPin(const crypto::Certificate& cert) {
  return absl::StrCat("sha256//", absl::Base64Escape(crypto::Sha256(cert.public_key().der())));
}

std::string PublicKeyPinOfFile(const std::string& path) {
  auto cert = crypto::Certificate::LoadFromFile(path);
  REQUIRE(cert.ok());
  return PublicKeyPin(**cert);
}

// An HTTPS backend on HttpServer's TLS option: answers 200 with a JSON body, counts calls.
class HttpsBackend {
 public:
  HttpsBackend(const std::string& key_path, const std::string& cert_path) {
    HttpServerOptions options;
    options.tls = HttpServerTlsOptions{key_path, cert_path, /*request_client_certificate=*/false};
    auto server = HttpServer::Start(
        "127.0.0.1:0", options,
        [this](HttpRequest request, HttpReply reply) {
          hits_.fetch_add(1);
          reply({200, {{"Content-Type", "application/json"}},
                 absl::StrCat("{\"tls\":", request.tls ? "true" : "false", "}")});
        },
        [](const absl::Status& why) { return HttpResponse{400, {}, std::string(why.message())}; });
    REQUIRE(server.ok());
    server_ = *std::move(server);
  }
  std::string url() const { return absl::StrCat("https://127.0.0.1:", server_->port()); }
  int hits() const { return hits_.load(); }

 private:
  std::atomic<int> hits_{0};
  std::unique_ptr<HttpServer> server_;
};

// python3's http.server behind ssl with CERT_REQUIRED: the handshake fails without a client
// certificate from `ca`. Answers GET with the client certificate's CN.
class MutualTlsBackend {
 public:
  explicit MutualTlsBackend(const TempDir& dir) {
    const std::string script = R"(import http.server, os, ssl, sys
cert, key, ca, port_file = sys.argv[1:5]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        subject = dict(pair[0] for pair in self.connection.getpeercert()["subject"])
        body = ('{"client":"%s"}' % subject.get("commonName", "")).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(ca)
context.verify_mode = ssl.CERT_REQUIRED
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
)";
    WriteFileForTest(dir.File("mtls_backend.py"), script);
    const std::string port_file = dir.File("mtls_backend.port");
    std::vector<std::string> argv = {"python3",           dir.File("mtls_backend.py"),
                                     dir.File("backend.pem"), dir.File("backend.key"),
                                     dir.File("ca.pem"),  port_file};
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    REQUIRE(posix_spawnp(&pid_, "python3", nullptr, nullptr, cargv.data(), environ) == 0);
    // Ready once it has written its port (after listening).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!absl::SimpleAtoi(ReadFileForTest(port_file), &port_)) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      REQUIRE(waitpid(pid_, nullptr, WNOHANG) == 0);  // still running
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~MutualTlsBackend() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string url() const { return absl::StrCat("https://127.0.0.1:", port_); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

grpc::Status AddService(Federation& fed, Federation::SecurityServer& ss, const std::string& code,
                        const std::string& backend, const std::string& ca_pem,
                        const std::string& cert_pem = "", const std::string& key_pem = "") {
  v1::LocalService service;
  auto id = ParseServiceId(absl::StrCat(kTaxSubsystem, "/", code));
  REQUIRE(id.ok());
  *service.mutable_id() = *id;
  service.set_backend(backend);
  service.set_backend_ca_pem(ca_pem);
  service.set_backend_cert_pem(cert_pem);
  service.set_backend_key_pem(key_pem);
  v1::SsEmpty reply;
  auto ctx = fed.AdminContext(ss);
  return ss.admin->AddService(ctx.get(), service, &reply);
}

// A REST call of `code` by the plaintext subsystem benefits, on the consumer's plaintext port.
ClientResult CallService(RestAgencies& agencies, const std::string& code) {
  return Curl({"-H", absl::StrCat("X-Road-Client: ", kBenefitsSubsystem),
               absl::StrCat("http://", agencies.rest_address(), "/r1/", kTaxSubsystem, "/", code,
                            "/lookup")});
}

}  // namespace

TEST_CASE("REST over TLS: the IS's pinned certificate is accepted, any other refused",
          "[rest][tls]") {
  RestAgencies agencies;
  TempDir dir;
  MakeCertificates(dir);
  agencies.fed.AddSubsystem(kSecureSubsystem);
  agencies.fed.Host(agencies.consumer, kSecureSubsystem, CertSha256(dir.File("pinned-is.pem")));
  agencies.fed.Grant(agencies.provider, kRestServiceId,
                     absl::StrCat("subsystem:", kSecureSubsystem));
  agencies.fed.WaitForConfEverywhere();

  const std::string address = agencies.consumer.rest_tls_address();
  REQUIRE(!address.empty());
  auto auth_cert = agencies.consumer.node->services().keys->AuthCert();
  REQUIRE(auth_cert.ok());
  const std::string ss_pin = PublicKeyPin(**auth_cert);
  const std::string url = absl::StrCat("https://", address, "/r1/", kRestServiceId, "/people/7");
  auto call = [&](const std::string& client, std::vector<std::string> identity) {
    std::vector<std::string> args = {"-k", "--pinnedpubkey", ss_pin, "-H",
                                     absl::StrCat("X-Road-Client: ", client)};
    args.insert(args.end(), identity.begin(), identity.end());
    args.push_back(url);
    return Curl(args);
  };
  auto as = [&](const std::string& name) {
    return std::vector<std::string>{"--cert", dir.File(name + ".pem"), "--key",
                                    dir.File(name + ".key")};
  };

  ClientResult good = call(kSecureSubsystem, as("pinned-is"));
  INFO(good.body);
  CHECK(good.exit_code == 0);
  CHECK(good.status == 200);
  CHECK(good.Header("x-road-client") == kSecureSubsystem);
  CHECK(agencies.backend.hits() == 1);
  CHECK(agencies.backend.last().target == "/base/people/7");

  ClientResult other = call(kSecureSubsystem, as("other-is"));
  CHECK(other.status == 500);
  CHECK(other.fault == kSslFault);
  CHECK(absl::StrContains(other.body, "is not the one pinned"));

  ClientResult none = call(kSecureSubsystem, {});
  CHECK(none.status == 500);
  CHECK(none.fault == kSslFault);
  CHECK(absl::StrContains(none.body, "no client certificate"));

  // A plaintext-mode subsystem is refused on the TLS port, whatever certificate it shows ...
  ClientResult plaintext_on_tls = call(kBenefitsSubsystem, as("pinned-is"));
  CHECK(plaintext_on_tls.status == 500);
  CHECK(plaintext_on_tls.fault == kSslFault);
  // ... and a TLS-mode one on the plaintext port.
  ClientResult tls_on_plaintext =
      Curl({"-H", absl::StrCat("X-Road-Client: ", kSecureSubsystem), agencies.Url("/people/7")});
  CHECK(tls_on_plaintext.status == 500);
  CHECK(tls_on_plaintext.fault == kSslFault);

  // TLS 1.2 does not get as far as a handshake.
  std::vector<std::string> tls12 = as("pinned-is");
  tls12.insert(tls12.begin(), {"--tlsv1.2", "--tls-max", "1.2"});
  ClientResult old = call(kSecureSubsystem, tls12);
  CHECK(old.exit_code != 0);
  CHECK(old.status == 0);

  CHECK(agencies.backend.hits() == 1);
  RequireLogVerifies(agencies.fed, agencies.consumer);
}

TEST_CASE("REST over TLS: https backends with their own CA and a client certificate",
          "[rest][tls]") {
  RestAgencies agencies;
  TempDir dir;
  MakeCertificates(dir);
  HttpsBackend https(dir.File("backend.key"), dir.File("backend.pem"));
  MutualTlsBackend mutual(dir);
  const std::string ca = Pem(dir, "ca.pem");
  const std::string client_cert = Pem(dir, "client.pem");
  const std::string client_key = Pem(dir, "client.key");

  struct Added {
    const char* code;
    std::string backend;
    std::string ca, cert, key;
  };
  const std::vector<Added> services = {
      {"own-ca", https.url() + "/v1", ca, "", ""},
      {"wrong-ca", https.url() + "/v1", Pem(dir, "other-ca.pem"), "", ""},
      {"system-ca", https.url() + "/v1", "", "", ""},
      {"mtls", mutual.url(), ca, client_cert, client_key},
      {"mtls-no-cert", mutual.url(), ca, "", ""},
  };
  for (const Added& s : services) {
    grpc::Status added = AddService(agencies.fed, agencies.provider, s.code, s.backend, s.ca,
                                    s.cert, s.key);
    INFO(s.code << ": " << added.error_message());
    REQUIRE(added.ok());
    agencies.fed.Grant(agencies.provider, absl::StrCat(kTaxSubsystem, "/", s.code),
                       absl::StrCat("subsystem:", kBenefitsSubsystem));
  }
  agencies.fed.WaitForConfEverywhere();

  ClientResult own_ca = CallService(agencies, "own-ca");
  INFO(own_ca.body);
  CHECK(own_ca.status == 200);
  CHECK(own_ca.body == "{\"tls\":true}");
  CHECK(https.hits() == 1);

  for (const char* untrusted : {"wrong-ca", "system-ca"}) {
    ClientResult refused = CallService(agencies, untrusted);
    INFO(untrusted << ": " << refused.body);
    CHECK(refused.status == 500);
    CHECK(refused.fault == kServiceFailed);
    CHECK(absl::StrContains(refused.body, "TLS"));
  }
  CHECK(https.hits() == 1);

  ClientResult with_cert = CallService(agencies, "mtls");
  INFO(with_cert.body);
  CHECK(with_cert.status == 200);
  CHECK(with_cert.body == "{\"client\":\"client\"}");

  ClientResult without_cert = CallService(agencies, "mtls-no-cert");
  CHECK(without_cert.status == 500);
  CHECK(without_cert.fault == kServiceFailed);

  // The client key stays inside the SS: the admin API lists the service without it.
  v1::ServiceListRequest list_request;
  v1::ServiceList list;
  auto ctx = agencies.fed.AdminContext(agencies.provider);
  REQUIRE(agencies.provider.admin->ListServices(ctx.get(), list_request, &list).ok());
  bool listed = false;
  for (const auto& s : list.services()) {
    if (s.id().service_code() != "mtls") continue;
    listed = true;
    CHECK(s.backend_cert_pem() == client_cert);
    CHECK(s.backend_key_pem().empty());
  }
  CHECK(listed);
  RequireLogVerifies(agencies.fed, agencies.provider);
}

TEST_CASE("REST over TLS: backend CA and client certificate are checked when added",
          "[rest][tls]") {
  RestAgencies agencies;
  TempDir dir;
  MakeCertificates(dir);
  const std::string ca = Pem(dir, "ca.pem");
  const std::string cert = Pem(dir, "client.pem");
  const std::string key = Pem(dir, "client.key");
  const std::string https = "https://127.0.0.1:9/";
  struct Bad {
    const char* what;
    std::string backend, ca, cert, key, says;
  };
  const std::vector<Bad> cases = {
      {"a CA for an http backend", "http://127.0.0.1:9", ca, "", "", "only an https://"},
      {"a CA that is not PEM", https, "not a certificate", "", "", "--backend-ca"},
      {"a private key as the CA", https, key, "", "", "--backend-ca"},
      {"a certificate without its key", https, ca, cert, "", "give both"},
      {"a key of another certificate", https, ca, cert, Pem(dir, "other-is.key"),
       "does not belong"},
      {"a key that is not PEM", https, ca, cert, "garbage", "--backend-key"},
  };
  for (const Bad& bad : cases) {
    grpc::Status added =
        AddService(agencies.fed, agencies.provider, "bad", bad.backend, bad.ca, bad.cert, bad.key);
    INFO(bad.what << ": " << added.error_message());
    CHECK(added.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(absl::StrContains(added.error_message(), bad.says));
  }
  CHECK(AddService(agencies.fed, agencies.provider, "good", https, ca, cert, key).ok());
}

TEST_CASE("HttpServer TLS: TLS 1.3 only, a replaced certificate served to new connections",
          "[rest][tls]") {
  TempDir dir;
  MakeCertificates(dir);
  const std::string key = dir.File("server.key");
  const std::string cert = dir.File("server.pem");
  WriteFileForTest(key, Pem(dir, "pinned-is.key"));
  WriteFileForTest(cert, Pem(dir, "pinned-is.pem"));
  HttpServerOptions options;
  options.tls = HttpServerTlsOptions{key, cert, /*request_client_certificate=*/true};
  auto server = HttpServer::Start(
      "127.0.0.1:0", options,
      [](HttpRequest request, HttpReply reply) {
        auto peer = crypto::Certificate::FromPem(request.peer_certificate_pem);
        // The client's address as gRPC names peers, for the log lines of refusals.
        const bool peer_named = absl::StartsWith(request.peer, "ipv4:127.0.0.1:");
        reply({200, {},
               absl::StrCat(peer.ok() ? (*peer)->subject_common_name() : "none",
                            peer_named ? "" : " (no peer address)")});
      },
      [](const absl::Status& why) { return HttpResponse{400, {}, std::string(why.message())}; });
  REQUIRE(server.ok());
  const std::string url = absl::StrCat("https://127.0.0.1:", (*server)->port(), "/");
  auto fetch = [&](const std::string& pin_of, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"-k", "--pinnedpubkey",
                                     PublicKeyPinOfFile(dir.File(pin_of + ".pem"))};
    args.insert(args.end(), more.begin(), more.end());
    args.push_back(url);
    return Curl(args);
  };

  ClientResult first = fetch("pinned-is", {"--cert", dir.File("other-is.pem"), "--key",
                                           dir.File("other-is.key")});
  CHECK(first.status == 200);
  CHECK(first.body == "other-is");  // the client's certificate, unverified, for the handler
  CHECK(fetch("pinned-is").body == "none");
  CHECK(fetch("pinned-is", {"--tlsv1.2", "--tls-max", "1.2"}).exit_code != 0);

  // Renewal: new files put in place by rename, as KeyStore does.
  WriteFileForTest(key + ".new", Pem(dir, "other-is.key"));
  WriteFileForTest(cert + ".new", Pem(dir, "other-is.pem"));
  REQUIRE(rename((key + ".new").c_str(), key.c_str()) == 0);
  // Key and certificate do not match yet: the previous pair is still served.
  CHECK(fetch("pinned-is").status == 200);
  REQUIRE(rename((cert + ".new").c_str(), cert.c_str()) == 0);
  CHECK(fetch("other-is").status == 200);
  CHECK(fetch("pinned-is").exit_code != 0);  // curl: the server's key is not the pinned one

  // A server whose files do not match refuses to start.
  WriteFileForTest(key, Pem(dir, "pinned-is.key"));
  auto mismatched = HttpServer::Start(
      "127.0.0.1:0", options, [](HttpRequest, HttpReply reply) { reply({}); },
      [](const absl::Status&) { return HttpResponse{}; });
  CHECK(mismatched.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace darvoza::testing
