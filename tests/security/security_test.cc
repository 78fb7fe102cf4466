// Hardening the exchange: hostile input against real security servers over real
// sockets (the federation fixture of tests/exchange), with curl and a raw HTTP/2 client for
// bytes a gRPC client refuses to send. Every case asserts the documented fault (or, for the raw
// client, the server's refusal counter and log), that the backend was not reached, that a
// well-behaved client running at the same time saw no error, and that both SSs' audit logs
// still verify. The catalogue with the fault of each case is docs/security.md.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "adapters/examples/tax_registry_service.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "common/identifiers.h"
#include "proto/envelope.pb.h"
#include "proto/example_agency.grpc.pb.h"
#include "proto/exchange.grpc.pb.h"
#include "proto/security_server.grpc.pb.h"
#include "security_server/exchange/consumer.h"
#include "security_server/exchange/signed_message.h"
#include "security_server/global_conf_client.h"
#include "security_server/key_store.h"
#include "security_server/metrics.h"
#include "tests/exchange/two_agencies.h"
#include "tests/security/raw_http2.h"

namespace darvoza::testing {
namespace {

using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr char kTaxMethod[] = "/darvoza.examples.v1.TaxRegistry/GetTaxDebt";
// A header value far over gRPC's documented 8 KiB default header-block limit.
constexpr size_t kLargeHeaderBlock = 40000;

// ---------------------------------------------------------------------------------------------
// Clients.

struct Answer {
  grpc::Status status;
  std::string fault;
  std::multimap<std::string, std::string> initial;
  std::multimap<std::string, std::string> trailing;
  std::string body;
};

std::multimap<std::string, std::string> Copy(
    const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  std::multimap<std::string, std::string> out;
  for (const auto& [k, v] : md) out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return out;
}

// One unary call with any method path and metadata (a gRPC client refuses to send bad bytes,
// so everything here is well-formed on the wire).
Answer CallGeneric(const std::shared_ptr<grpc::Channel>& channel, const std::string& path,
                   const Metadata& metadata, const std::string& body) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  Answer answer;
  absl::Notification done;
  stub.UnaryCall(&ctx, path, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) {
                   answer.status = std::move(status);
                   done.Notify();
                 });
  done.WaitForNotification();
  answer.initial = Copy(ctx.GetServerInitialMetadata());
  answer.trailing = Copy(ctx.GetServerTrailingMetadata());
  answer.fault = ObservedFault(answer.trailing);
  std::vector<grpc::Slice> slices;
  if (answer.status.ok() && response.Dump(&slices).ok()) {
    for (const auto& s : slices) answer.body.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return answer;
}

std::shared_ptr<grpc::Channel> Plain(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Metadata BenefitsCallsTax() {
  return {{"x-road-client", kBenefitsSubsystem}, {"x-road-service", kTaxSubsystem}};
}

std::string TaxRequestBody() {
  examples::v1::TaxDebtRequest request;
  request.set_person_id("31234567890123");
  return request.SerializeAsString();
}

// A well-behaved client IS calling the tax registry in a loop while hostile calls run.
class WellBehavedClient {
 public:
  explicit WellBehavedClient(const std::string& address) : channel_(Plain(address)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        Answer a = CallGeneric(channel_, kTaxMethod, BenefitsCallsTax(), TaxRequestBody());
        if (a.status.ok()) {
          ++ok_;
        } else {
          ++errors_;
          last_error_ = absl::StrCat(a.status.error_code(), " ", a.fault, " ",
                                     a.status.error_message());
        }
      }
    });
  }
  // Stops after at least one more call, so the SS is proven alive after the hostile ones.
  void Stop() {
    const int64_t seen = ok_.load() + errors_.load();
    while (ok_.load() + errors_.load() < seen + 1) std::this_thread::yield();
    stop_ = true;
    thread_.join();
  }
  int64_t ok() const { return ok_.load(); }
  int64_t errors() const { return errors_.load(); }
  const std::string& last_error() const { return last_error_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> ok_{0};
  std::atomic<int64_t> errors_{0};
  std::string last_error_;  // read after join
  std::thread thread_;
};

// curl --http2-prior-knowledge, as in the issue's reproduction. Returns the response headers
// and trailers (curl's -D dump) or "" when curl failed.
struct CurlResult {
  int exit_code = -1;
  std::string dump;
  bool Has(const std::string& line) const {
    for (absl::string_view l : absl::StrSplit(dump, '\n')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(l), line)) return true;
    }
    return false;
  }
  bool HasHeader(const std::string& name) const {
    for (absl::string_view l : absl::StrSplit(dump, '\n')) {
      if (absl::StartsWithIgnoreCase(l, name + ":")) return true;
    }
    return false;
  }
};

CurlResult Curl(std::vector<std::string> args) {
  TempDir dir;
  const std::string body = dir.File("body");
  WriteFileForTest(body, std::string(5, '\0'));
  const std::string dump = dir.File("dump");
  std::vector<std::string> argv = {"curl", "-sS", "-m", "30", "-X", "POST",
                                   "-H", "content-type: application/grpc",
                                   "-H", "te: trailers",
                                   "--data-binary", "@" + body, "-D", dump, "-o", "/dev/null"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid;
  CurlResult result;
  if (posix_spawnp(&pid, "curl", nullptr, nullptr, cargv.data(), environ) != 0) return result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.dump = ReadFileForTest(dump);
  for (absl::string_view line : absl::StrSplit(result.dump, '\n')) {
    if (absl::StartsWithIgnoreCase(line, "x-road-error:")) {
      RecordObservedFault(absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Audit and metrics.

void RequireLogVerifies(Federation& fed, Federation::SecurityServer& ss) {
  audit::VerifyReport report = fed.VerifyAuditLog(ss);
  INFO(report.ToText());
  CHECK(report.ok);
}

int CountRecords(Federation::SecurityServer& ss, v1::AuditRecordKind kind,
                 const std::string& fault = "") {
  auto records = ss.node->services().audit->Find(audit::AuditQuery{});
  REQUIRE(records.ok());
  int n = 0;
  for (const auto& r : *records) {
    if (r.record.kind() == kind && (fault.empty() || r.record.fault_code() == fault)) ++n;
  }
  return n;
}

double ConsumerRefusals(Federation::SecurityServer& ss, absl::string_view fault) {
  return ss.node->services().metrics->Get(
      absl::StrCat("darvoza_ss_consumer_refusals_total{fault=\"", fault, "\"}"));
}

// The fixture of a case: two agencies and a well-behaved client calling the tax registry
// through the consumer SS while the hostile calls run. Finish() is what every case ends with.
struct HostileCase {
  TwoAgencies a;
  WellBehavedClient good{a.consumer->client_address()};

  // Stops the well-behaved client (after one more call) and checks that it saw no error, that
  // every backend hit of the tax registry beyond `other_tax_hits` was one of its calls, and
  // that the audit logs of both SSs and of `more` still verify.
  void Finish(int64_t other_tax_hits = 0,
              const std::vector<Federation::SecurityServer*>& more = {}) {
    good.Stop();
    INFO(good.last_error());
    CHECK(good.errors() == 0);
    CHECK(a.backend.hits() == good.ok() + other_tax_hits);
    RequireLogVerifies(a.fed, *a.consumer);
    RequireLogVerifies(a.fed, *a.provider);
    for (Federation::SecurityServer* ss : more) RequireLogVerifies(a.fed, *ss);
  }
};

// ---------------------------------------------------------------------------------------------
// Metadata and paths on the client ports.

TEST_CASE("Security: the issue's x-road-id reproduction is refused on both client ports",
          "[security][metadata]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  const std::vector<std::string> hostile = {
      "-H", "x-road-client: UZ/GOV/99999999/nobody",
      "-H", "x-road-service: UZ/GOV/70000001/tax-registry",
      "-H", "x-road-id: a\tb"};

  std::vector<std::string> plain = hostile;
  plain.insert(plain.end(), {"--http2-prior-knowledge",
                             absl::StrCat("http://", a.consumer->client_address(), "/x.Y/Z")});
  CurlResult r = Curl(plain);
  INFO(r.dump);
  REQUIRE(r.exit_code == 0);
  CHECK(r.Has("grpc-status: 3"));
  CHECK(r.Has("x-road-error: Client.InvalidRequest"));
  CHECK_FALSE(r.HasHeader("x-road-id"));  // never echoed, not even after validation failed

  // The mTLS client port: the check comes before the IS is authenticated (any certificate
  // gets that far; this one is the consumer SS's own, which pins no subsystem).
  auto* keys = a.consumer->node->services().keys;
  std::vector<std::string> tls = hostile;
  tls.insert(tls.end(), {"--http2", "-k", "--tlsv1.3", "--cert", keys->AuthCertPath(), "--key",
                         keys->AuthKeyPath(),
                         absl::StrCat("https://", a.consumer->client_tls_address(), "/x.Y/Z")});
  CurlResult t = Curl(tls);
  INFO(t.dump);
  REQUIRE(t.exit_code == 0);
  CHECK(t.Has("grpc-status: 3"));
  CHECK(t.Has("x-road-error: Client.InvalidRequest"));
  CHECK_FALSE(t.HasHeader("x-road-id"));

  CHECK(CountRecords(*a.consumer, v1::REFUSAL, "Client.InvalidRequest") >= 2);
  c.Finish();
}

TEST_CASE("Security: hostile metadata and method paths never reach the backend or kill the SS",
          "[security][metadata]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  struct Case {
    std::string name;
    std::string path;
    Metadata extra;       // added to (or, for x-road-client/-service, replacing) the valid ones
    std::string fault;    // the refusal the consumer logs when gRPC lets the call through
  };
  const std::string kInvalidRequest = "Client.InvalidRequest";
  const std::string kInvalidIdentifier = "Client.InvalidIdentifier";
  const std::vector<Case> cases = {
      {"tab in x-road-id", kTaxMethod, {{"x-road-id", "a\tb"}}, kInvalidRequest},
      {"control byte in x-road-id", kTaxMethod, {{"x-road-id", "a\x01z"}}, kInvalidRequest},
      {"DEL in x-road-userid", kTaxMethod, {{"x-road-userid", "u\x7f"}}, kInvalidRequest},
      {"non-UTF-8 in x-road-issue", kTaxMethod, {{"x-road-issue", "\xff\xfe"}}, kInvalidRequest},
      {"CR/LF in x-road-id", kTaxMethod, {{"x-road-id", "a\r\nx-road-client: evil"}},
       kInvalidRequest},
      {"NUL in x-road-id", kTaxMethod, {{"x-road-id", std::string("a\0b", 3)}}, kInvalidRequest},
      {"unicode in x-road-userid", kTaxMethod, {{"x-road-userid", "\xc3\x91" "ame"}},
       kInvalidRequest},
      {"over-long x-road-id", kTaxMethod, {{"x-road-id", std::string(300, 'i')}},
       kInvalidRequest},
      {"over-long forwarded header", kTaxMethod, {{"x-custom", std::string(5000, 'c')}},
       kInvalidRequest},
      {"control byte in a forwarded header", kTaxMethod, {{"authorization", "Bearer \x1b[2J"}},
       kInvalidRequest},
      {"non-UTF-8 in a forwarded header", kTaxMethod, {{"x-custom", "\xc3\x28"}},
       kInvalidRequest},
      {"path with ..", "/../darvoza.examples.v1.TaxRegistry/GetTaxDebt", {}, kInvalidRequest},
      {"path with an empty package part", "/darvoza..TaxRegistry/GetTaxDebt", {},
       kInvalidRequest},
      {"path with an empty service", "//GetTaxDebt", {}, kInvalidRequest},
      {"path with an empty method", "/darvoza.examples.v1.TaxRegistry/", {}, kInvalidRequest},
      {"path with three parts", "/darvoza.examples.v1.TaxRegistry/GetTaxDebt/x", {},
       kInvalidRequest},
      {"path with injection characters", "/darvoza.examples.v1.TaxRegistry/Get;rm -rf", {},
       kInvalidRequest},
      {"path with unicode", "/darvoza.examples.v1.TaxRegistry/G\xc3\xa9t", {}, kInvalidRequest},
      {"path with a dash", "/darvoza.examples.v1.Tax-Registry/GetTaxDebt", {}, kInvalidRequest},
      {"over-long path", absl::StrCat("/a.", std::string(300, 'b'), "/C"), {}, kInvalidRequest},
      {"x-road-service with injection characters", kTaxMethod,
       {{"x-road-service", "UZ/GOV/70000001/tax-registry;drop"}}, kInvalidIdentifier},
      {"x-road-client with ..", kTaxMethod, {{"x-road-client", "UZ/GOV/../benefits"}},
       kInvalidIdentifier},
      {"x-road-client with an empty part", kTaxMethod, {{"x-road-client", "UZ//70000002/benefits"}},
       kInvalidIdentifier},
  };
  int answered_by_ss = 0;
  for (const Case& c : cases) {
    Metadata headers;
    for (const auto& [k, v] : BenefitsCallsTax()) {
      bool replaced = false;
      for (const auto& [ek, ev] : c.extra) replaced |= ek == k;
      if (!replaced) headers.emplace_back(k, v);
    }
    headers.insert(headers.end(), c.extra.begin(), c.extra.end());
    const double before = ConsumerRefusals(*a.consumer, c.fault);
    RawOutcome outcome = RawGrpcPost(a.consumer->client_address(), c.path, headers);
    INFO(c.name << ": " << RawOutcomeName(outcome));
    // gRPC's own HTTP/2 layer may refuse some bytes first (a reset stream or connection): a
    // transport refusal. What must never happen is a hang, a crash, or a call that passes.
    REQUIRE((outcome == RawOutcome::kAnswered || outcome == RawOutcome::kReset ||
             outcome == RawOutcome::kClosed));
    if (outcome == RawOutcome::kAnswered) {
      ++answered_by_ss;
      CHECK(ConsumerRefusals(*a.consumer, c.fault) == before + 1);
    }
    UNSCOPED_INFO(c.name << ": " << RawOutcomeName(outcome));
  }
  // gRPC 1.51 passes all of these bytes through to the handler: each must meet our own check
  // (the crash of the issue was the handler echoing them).
  CHECK(answered_by_ss == static_cast<int>(cases.size()));

  // A 40 000-byte header block (in CONTINUATION frames): gRPC 1.51 as configured here does
  // not refuse it before the handler (its 8 KiB default is not enforced on this path, found by
  // trying), so our own bound is what refuses it.
  {
    Metadata headers = BenefitsCallsTax();
    headers.emplace_back("x-custom", std::string(kLargeHeaderBlock, 'h'));
    const double before = ConsumerRefusals(*a.consumer, "Client.InvalidRequest");
    RawOutcome outcome = RawGrpcPost(a.consumer->client_address(), kTaxMethod, headers);
    INFO("40 000-byte header: " << RawOutcomeName(outcome));
    REQUIRE((outcome == RawOutcome::kAnswered || outcome == RawOutcome::kReset ||
             outcome == RawOutcome::kClosed));
    if (outcome == RawOutcome::kAnswered) {
      CHECK(ConsumerRefusals(*a.consumer, "Client.InvalidRequest") == before + 1);
    }
  }

  c.Finish();
}

// ---------------------------------------------------------------------------------------------
// The SS-to-SS link: hand-made signed envelopes sent as the consumer SS.

v1::Envelope MakeEnvelope(TwoAgencies& a, std::string* body) {
  v1::Envelope envelope;
  envelope.set_message_id(crypto::HexEncode(crypto::RandomBytes(8)));
  *envelope.mutable_client() = *ParseSubsystemId(kBenefitsSubsystem);
  *envelope.mutable_service() =
      *ParseServiceId(absl::StrCat(kTaxSubsystem, "/", kGrpcService, ".GetTaxDebt"));
  *envelope.mutable_target_server() = *ParseSecurityServerId(a.provider->id);
  *envelope.mutable_consumer_server() = *ParseSecurityServerId(a.consumer->id);
  envelope.mutable_grpc()->set_method(kTaxMethod);
  *body = TaxRequestBody();
  envelope.set_body_sha256(crypto::Sha256(*body));
  envelope.set_body_length(body->size());
  envelope.set_nonce(crypto::RandomBytes(16));
  envelope.set_created_at_unix_nanos(absl::ToUnixNanos(a.fed.clock()->Now()));
  return envelope;
}

v1::SignedMessage Signed(Federation::SecurityServer& signer_ss, const char* member,
                         const v1::Envelope& envelope, const std::string& body,
                         crypto::SignatureContext context = crypto::SignatureContext::kRequest) {
  auto identity = signer_ss.node->services().keys->SigningSigner(*ParseMemberId(member));
  REQUIRE(identity.ok());
  auto message = ss::exchange::SignMessage(*identity, context, envelope.SerializeAsString(), body);
  REQUIRE(message.ok());
  return *message;
}

v1::SignedMessage Request(TwoAgencies& a,
                          const std::function<void(v1::Envelope&)>& change = nullptr,
                          crypto::SignatureContext context = crypto::SignatureContext::kRequest) {
  std::string body;
  v1::Envelope envelope = MakeEnvelope(a, &body);
  if (change) change(envelope);
  return Signed(*a.consumer, kBenefitsMember, envelope, body, context);
}

std::shared_ptr<grpc::Channel> SsChannel(Federation::SecurityServer& as,
                                         Federation::SecurityServer& to) {
  return TlsChannelAs(as.node->services().keys->AuthKeyPath(),
                      as.node->services().keys->AuthCertPath(), to.node->addresses().ss);
}

constexpr char kSsMethod[] = "/darvoza.v1.SecurityServerExchange/Call";

TEST_CASE("Security: the provider checks every envelope and calls only what was authorized",
          "[security][ss-link]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  auto channel = SsChannel(*a.consumer, *a.provider);
  auto send = [&](const v1::SignedMessage& m) {
    return CallGeneric(channel, kSsMethod, {}, m.SerializeAsString());
  };
  int64_t authorized = 0;
  auto expect = [&](const std::string& name, const Answer& answer, grpc::StatusCode code,
                    const std::string& fault) {
    INFO(name << ": got " << answer.status.error_code() << " " << answer.fault << ": "
              << answer.status.error_message());
    CHECK(answer.status.error_code() == code);
    CHECK(answer.fault == fault);
  };
  const grpc::StatusCode kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  const std::string kInvalidMessage = "Server.ServerProxy.InvalidMessage";

  // Baseline, and a smuggled x-road-client: the backend learns the caller from the provider.
  {
    v1::SignedMessage smuggled = Request(a, [](v1::Envelope& e) {
      for (const char* key : {"x-road-client", "x-road-service", "x-road-id", "x-road-userid"}) {
        v1::MetadataEntry* entry = e.mutable_grpc()->add_metadata();
        entry->set_key(key);
        entry->set_value("UZ/GOV/70000009/evil");
      }
    });
    Answer ok = send(smuggled);
    INFO(ok.status.error_message() << " " << ok.fault);
    REQUIRE(ok.status.ok());
    ++authorized;
    CHECK(a.backend.service().last_client() == kBenefitsSubsystem);
  }
  // Method != signed service code: a right on GetTaxDebt must not reach anything else.
  for (const char* method : {"/darvoza.examples.v1.TaxRegistry/Secret",
                             "/grpc.health.v1.Health/Check",
                             "/darvoza.v1.SecurityServerAdmin/AddService", "",
                             "/darvoza.examples.v1.TaxRegistry/GetTaxDebt/"}) {
    expect(absl::StrCat("method ", method),
           send(Request(a, [&](v1::Envelope& e) { e.mutable_grpc()->set_method(method); })),
           kInvalid, kInvalidMessage);
  }
  // A signed call of a kind this provider does not serve (an HTTP call).
  expect("HTTP call", send(Request(a, [](v1::Envelope& e) {
           e.mutable_http()->set_method("GET");
           e.mutable_http()->set_path("/tax");
         })),
         grpc::StatusCode::UNIMPLEMENTED, "Client.UnsupportedCall");
  // Signed values that gRPC would abort on if forwarded to the backend.
  expect("tab in user id", send(Request(a, [](v1::Envelope& e) { e.set_user_id("a\tb"); })),
         kInvalid, kInvalidMessage);
  expect("CR/LF in issue", send(Request(a, [](v1::Envelope& e) { e.set_issue("a\r\nb"); })),
         kInvalid, kInvalidMessage);
  expect("control byte in message id",
         send(Request(a, [](v1::Envelope& e) { e.set_message_id("id\x01"); })), kInvalid,
         kInvalidMessage);
  expect("control byte in forwarded metadata", send(Request(a, [](v1::Envelope& e) {
           v1::MetadataEntry* entry = e.mutable_grpc()->add_metadata();
           entry->set_key("x-custom");
           entry->set_value(std::string("\0\n", 2));
         })),
         kInvalid, kInvalidMessage);
  expect("bad metadata key", send(Request(a, [](v1::Envelope& e) {
           v1::MetadataEntry* entry = e.mutable_grpc()->add_metadata();
           entry->set_key("Bad Key");
           entry->set_value("v");
         })),
         kInvalid, kInvalidMessage);
  // Bytes that are not a SignedMessage, and a path the port does not serve.
  const int refusals_before = CountRecords(*a.provider, v1::REFUSAL, kInvalidMessage);
  expect("not a SignedMessage", CallGeneric(channel, kSsMethod, {}, "\xff\xff\xff not protobuf"),
         kInvalid, kInvalidMessage);
  expect("a path the SS port does not serve",
         CallGeneric(channel, "/grpc.health.v1.Health/Check", {}, ""), kInvalid,
         kInvalidMessage);
  expect("bytes on a path the SS port does not serve",
         CallGeneric(channel, "/darvoza.v1.SecurityServerExchange/Other", {}, "\x01\x02"),
         kInvalid, kInvalidMessage);
  CHECK(CountRecords(*a.provider, v1::REFUSAL, kInvalidMessage) == refusals_before + 3);
  // Forged: signed by another member's key (the provider's own) for the benefits client.
  {
    std::string body;
    v1::Envelope envelope = MakeEnvelope(a, &body);
    expect("forged", send(Signed(*a.provider, kTaxMember, envelope, body)),
           grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.InvalidSignature");
  }
  // Tampered after signing.
  {
    v1::SignedMessage tampered = Request(a);
    v1::Envelope changed;
    REQUIRE(changed.ParseFromString(tampered.envelope()));
    changed.set_user_id("someone-else");
    tampered.set_envelope(changed.SerializeAsString());
    expect("tampered", send(tampered), grpc::StatusCode::UNAUTHENTICATED,
           "Server.ServerProxy.InvalidSignature");
  }
  // Replayed.
  {
    v1::SignedMessage once = Request(a);
    REQUIRE(send(once).status.ok());
    ++authorized;
    expect("replayed", send(once), grpc::StatusCode::UNAUTHENTICATED,
           "Server.ServerProxy.ReplayedMessage");
  }
  expect("other context", send(Request(a, nullptr, crypto::SignatureContext::kResponse)),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.InvalidSignature");
  expect("wrong target", send(Request(a, [](v1::Envelope& e) {
           *e.mutable_target_server() = *ParseSecurityServerId("UZ/GOV/70000001/ss9");
         })),
         grpc::StatusCode::PERMISSION_DENIED, "Server.ServerProxy.WrongTargetServer");
  const absl::Time now = a.fed.clock()->Now();
  expect("stale", send(Request(a, [&](v1::Envelope& e) {
           e.set_created_at_unix_nanos(absl::ToUnixNanos(now - absl::Minutes(10)));
         })),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.ReplayedMessage");
  expect("future", send(Request(a, [&](v1::Envelope& e) {
           e.set_created_at_unix_nanos(absl::ToUnixNanos(now + absl::Minutes(10)));
         })),
         grpc::StatusCode::UNAUTHENTICATED, "Server.ServerProxy.ReplayedMessage");
  // Impostor peer: another SS's TLS identity for a message naming the consumer SS.
  expect("impostor peer",
         CallGeneric(SsChannel(*a.provider, *a.provider), kSsMethod, {},
                     Request(a).SerializeAsString()),
         grpc::StatusCode::PERMISSION_DENIED, "Server.ServerProxy.SslAuthenticationFailed");

  c.Finish(authorized);
}

TEST_CASE("Security: a consumer SS cannot change the method after the client's SS checked it",
          "[security][ss-link]") {
  // The same attack through the consumer's own code path: what lies between the SSs rewrites
  // the method and signs again with the client member's key. Only the call marked by its user
  // id is rewritten; the well-behaved client's go through untouched.
  HostileCase c;
  TwoAgencies& a = c.a;
  auto identity =
      a.consumer->node->services().keys->SigningSigner(*ParseMemberId(kBenefitsMember));
  REQUIRE(identity.ok());
  ss::exchange::SetOutgoingRequestHookForTest([&](v1::SignedMessage& m) {
    v1::Envelope envelope;
    if (!envelope.ParseFromString(m.envelope()) || envelope.user_id() != "hostile") return;
    envelope.mutable_grpc()->set_method("/grpc.health.v1.Health/Check");
    auto resigned = ss::exchange::SignMessage(*identity, crypto::SignatureContext::kRequest,
                                              envelope.SerializeAsString(), m.body());
    REQUIRE(resigned.ok());
    m = *resigned;
  });
  Metadata hostile = BenefitsCallsTax();
  hostile.emplace_back("x-road-userid", "hostile");
  Answer answer =
      CallGeneric(Plain(a.consumer->client_address()), kTaxMethod, hostile, TaxRequestBody());
  ss::exchange::SetOutgoingRequestHookForTest(nullptr);
  INFO(answer.status.error_message());
  CHECK(answer.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(answer.fault == "Server.ServerProxy.InvalidMessage");
  c.Finish();  // no tax backend hit beyond the well-behaved client's
}

// ---------------------------------------------------------------------------------------------
// Certificates and TLS on the SS-to-SS port.

std::string RunCommand(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  while (fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  pclose(pipe);
  return output;
}

TEST_CASE("Security: TLS peers that are not the consumer SS never reach the provider's checks",
          "[security][tls]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  ss::MetricsRegistry* metrics = a.provider->node->services().metrics;
  const std::string ss_address = a.provider->node->addresses().ss;
  const std::string message = Request(a).SerializeAsString();
  auto handshake_refused = [&](const std::string& name, const std::string& key,
                               const std::string& cert) {
    const double before = metrics->Get("darvoza_ss_handshake_refusals_total");
    Answer answer = CallGeneric(TlsChannelAs(key, cert, ss_address), kSsMethod, {}, message);
    INFO(name << ": " << answer.status.error_code() << " " << answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(metrics->Get("darvoza_ss_handshake_refusals_total") > before);
  };

  // TLS 1.2 is refused; TLS 1.3 with the same identity is accepted.
  {
    auto* keys = a.consumer->node->services().keys;
    const std::string s_client = absl::StrCat("echo | timeout 10 openssl s_client -connect ",
                                              ss_address, " -cert ", keys->AuthCertPath(),
                                              " -key ", keys->AuthKeyPath());
    std::string tls12 = RunCommand(s_client + " -tls1_2");
    INFO(tls12);
    CHECK(absl::StrContains(tls12, "Cipher is (NONE)"));
    CHECK_FALSE(absl::StrContains(tls12, "New, TLSv1.2"));
    CHECK(absl::StrContains(RunCommand(s_client + " -tls1_3"), "New, TLSv1.3"));
  }

  TempDir dir;
  const absl::Time now = a.fed.clock()->Now();
  auto save = [&](const std::string& stem, const crypto::PrivateKey& key,
                  const crypto::Certificate& cert) {
    REQUIRE(key.SaveToFile(dir.File(stem + ".key")).ok());
    WriteFileForTest(dir.File(stem + ".pem"), cert.ToPem());
  };
  auto rogue_ca_key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(rogue_ca_key.ok());
  auto rogue_ca = crypto::IssueCertificate(
      **rogue_ca_key, nullptr, *(*rogue_ca_key)->GetPublicKey(), "rogue CA",
      {.serial = 1, .not_before = now - absl::Hours(1), .not_after = now + absl::Hours(24),
       .profile = crypto::CertificateProfile::kRootCa});
  REQUIRE(rogue_ca.ok());
  auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
  REQUIRE(key.ok());
  // A foreign CA's certificate naming the consumer SS.
  {
    auto cert = crypto::IssueCertificate(
        **rogue_ca_key, rogue_ca->get(), *(*key)->GetPublicKey(),
        absl::StrCat("server:", a.consumer->id),
        {.serial = 2, .not_before = now - absl::Hours(1), .not_after = now + absl::Hours(24),
         .profile = crypto::CertificateProfile::kTlsAuth});
    REQUIRE(cert.ok());
    save("foreign", **key, **cert);
    handshake_refused("foreign CA", dir.File("foreign.key"), dir.File("foreign.pem"));
  }
  // Self-signed, naming the consumer SS.
  {
    auto cert = crypto::IssueCertificate(
        **key, nullptr, *(*key)->GetPublicKey(), absl::StrCat("server:", a.consumer->id),
        {.serial = 3, .not_before = now - absl::Hours(1), .not_after = now + absl::Hours(24),
         .profile = crypto::CertificateProfile::kTlsAuth});
    REQUIRE(cert.ok());
    save("self", **key, **cert);
    handshake_refused("self-signed", dir.File("self.key"), dir.File("self.pem"));
  }
  // Expired, from the foreign CA (the instance CA's key is not at hand in this fixture).
  {
    auto cert = crypto::IssueCertificate(
        **rogue_ca_key, rogue_ca->get(), *(*key)->GetPublicKey(),
        absl::StrCat("server:", a.consumer->id),
        {.serial = 4, .not_before = now - absl::Hours(48), .not_after = now - absl::Hours(24),
         .profile = crypto::CertificateProfile::kTlsAuth});
    REQUIRE(cert.ok());
    save("expired", **key, **cert);
    handshake_refused("expired", dir.File("expired.key"), dir.File("expired.pem"));
  }
  // The consumer SS's seal certificate (instance CA, but not an auth certificate).
  {
    const std::string keys_dir = a.consumer->data_dir;
    REQUIRE_FALSE(ReadFileForTest(keys_dir + "/certs/seal.pem").empty());
    REQUIRE_FALSE(ReadFileForTest(keys_dir + "/keys/seal.key").empty());
    handshake_refused("seal certificate as TLS", keys_dir + "/keys/seal.key",
                      keys_dir + "/certs/seal.pem");
  }
  // Another SS's auth certificate, for a message naming the consumer SS: past the handshake,
  // refused per call.
  {
    Answer answer = CallGeneric(SsChannel(*a.provider, *a.provider), kSsMethod, {}, message);
    CHECK(answer.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(answer.fault == "Server.ServerProxy.SslAuthenticationFailed");
  }

  c.Finish();
  // A revoked SS: its old identity no longer gets through the provider's handshake.
  {
    REQUIRE(a.fed.registry()
                .RevokeServer(*ParseSecurityServerId(a.consumer->id), "test")
                .ok());
    a.fed.WaitForConfEverywhere();
    handshake_refused("revoked", a.consumer->node->services().keys->AuthKeyPath(),
                      a.consumer->node->services().keys->AuthCertPath());
  }
  CHECK(a.backend.hits() == c.good.ok());
  RequireLogVerifies(a.fed, *a.provider);
}

// ---------------------------------------------------------------------------------------------
// Backend answers.

constexpr char kHostileService[] = "darvoza.test.Hostile";
// The same backend under a second service code with a short timeout, for the slow case only: a
// short timeout on every case made the 17 MiB one time out instead on a loaded machine.
constexpr char kHostileSlowService[] = "darvoza.test.HostileSlow";

// Registers `service_code` of the tax registry on the provider SS with a grpc:// backend at
// `backend` (a timeout of its own when not 0) and grants it to the benefits subsystem.
void AddGrantedService(TwoAgencies& a, const std::string& service_code,
                       const std::string& backend, int timeout_millis = 0) {
  v1::LocalService service;
  *service.mutable_id() = *ParseServiceId(absl::StrCat(kTaxSubsystem, "/", service_code));
  service.set_backend(absl::StrCat("grpc://", backend));
  if (timeout_millis != 0) service.set_timeout_millis(timeout_millis);
  v1::SsEmpty reply;
  auto ctx = a.fed.AdminContext(*a.provider);
  REQUIRE(a.provider->admin->AddService(ctx.get(), service, &reply).ok());
  a.fed.Grant(*a.provider, absl::StrCat(kTaxSubsystem, "/", service_code),
              absl::StrCat("subsystem:", kBenefitsSubsystem));
}

// A backend that answers each method of darvoza.test.Hostile in its own bad way.
class HostileBackend final : public grpc::CallbackGenericService {
 public:
  HostileBackend() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxSendMessageSize(64 << 20);
    builder.RegisterCallbackGenericService(this);
    server_ = builder.BuildAndStart();
    REQUIRE(server_ != nullptr);
  }
  ~HostileBackend() override { server_->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int64_t hits() const { return hits_.load(); }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    ++hits_;
    return new Call(ctx);
  }

 private:
  class Call final : public grpc::ServerGenericBidiReactor {
   public:
    explicit Call(grpc::GenericCallbackServerContext* ctx) : ctx_(ctx) { StartRead(&request_); }
    void OnReadDone(bool) override {
      const std::string method(ctx_->method());
      const std::string name = method.substr(method.rfind('/') + 1);
      grpc::Status status = grpc::Status::OK;
      std::string body = "ok";
      if (name == "LongStatus") {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(5000, 'm'));
      } else if (name == "ControlStatus") {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "line one\nline two\x1b[2J");
      } else if (name == "NotUtf8Status") {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "caf\xe9");
      } else if (name == "LongHeader") {
        ctx_->AddInitialMetadata("x-long", std::string(5000, 'h'));
      } else if (name == "LongTrailer") {
        ctx_->AddTrailingMetadata("x-long", std::string(5000, 't'));
      } else if (name == "FakeProtocolHeaders") {
        ctx_->AddInitialMetadata("x-road-client", "UZ/GOV/70000009/evil");
        ctx_->AddTrailingMetadata("x-road-error", "Client.Fake");
        ctx_->AddInitialMetadata("x-fine", "passes");
      } else if (name == "UnicodeStatus") {
        status = grpc::Status(grpc::StatusCode::NOT_FOUND, "\xd0\xbd\xd0\xb5\xd1\x82");
      } else if (name == "Huge") {
        body = std::string(17 << 20, 'x');
      } else if (name == "Slow") {
        return;  // answers only when cancelled (the provider's deadline)
      }
      // The provider may cancel (a refused header) while this runs: one Finish per call, or
      // gRPC aborts on the second.
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      grpc::Slice slice(body);
      response_ = grpc::ByteBuffer(&slice, 1);
      if (status.ok()) {
        StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
      } else {
        Finish(status);
      }
    }
    void OnCancel() override {
      absl::MutexLock lock(&mu_);
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status::CANCELLED);
      }
    }
    void OnDone() override { delete this; }

   private:
    grpc::GenericCallbackServerContext* const ctx_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
    absl::Mutex mu_;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
  };

  int port_ = 0;
  std::atomic<int64_t> hits_{0};
  std::unique_ptr<grpc::Server> server_;
};

TEST_CASE("Security: backend answers that cannot be passed on get ServiceFailed",
          "[security][backend]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  HostileBackend hostile;
  AddGrantedService(a, kHostileService, hostile.address());
  AddGrantedService(a, kHostileSlowService, hostile.address(), /*timeout_millis=*/300);
  auto channel = Plain(a.consumer->client_address());
  auto call = [&](const std::string& method) {
    return CallGeneric(
        channel,
        absl::StrCat("/", method == "Slow" ? kHostileSlowService : kHostileService, "/", method),
        BenefitsCallsTax(), "");
  };
  const std::string kServiceFailed = "Server.ServerProxy.ServiceFailed";
  for (const char* method :
       {"LongStatus", "ControlStatus", "NotUtf8Status", "LongHeader", "LongTrailer"}) {
    Answer answer = call(method);
    INFO(method << ": " << answer.status.error_code() << " " << answer.fault << " "
                << answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(answer.fault == kServiceFailed);
  }
  {
    // x-road-* from a backend never reaches the client; other headers do.
    Answer answer = call("FakeProtocolHeaders");
    INFO(answer.status.error_message());
    CHECK(answer.status.ok());
    CHECK(answer.trailing.count("x-road-error") == 0);
    CHECK(answer.initial.count("x-road-client") == 0);
    CHECK(answer.initial.count("x-fine") == 1);
  }
  {
    // A backend's own status in UTF-8 is passed through as the backend's answer.
    Answer answer = call("UnicodeStatus");
    CHECK(answer.status.error_code() == grpc::StatusCode::NOT_FOUND);
    CHECK(answer.status.error_message() == "\xd0\xbd\xd0\xb5\xd1\x82");
    CHECK(answer.fault.empty());
  }
  {
    Answer answer = call("Slow");
    INFO(answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    CHECK(answer.fault == "Server.ServerProxy.Timeout");
  }
  {
    // Over the pass-through limit: the provider's channel refuses to receive it.
    Answer answer = call("Huge");
    INFO(answer.status.error_message() << " " << answer.fault);
    CHECK(answer.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  CHECK(hostile.hits() == 9);
  c.Finish();
}

TEST_CASE("Security: a backend answering bytes gRPC cannot carry gets ServiceFailed",
          "[security][backend]") {
  // A hand-written HTTP/2 backend puts the bytes into its headers and trailers itself (a gRPC
  // server refuses to). Whether gRPC's client drops such an answer or hands it to the provider,
  // the client must get ServiceFailed and both SSs must live on.
  HostileCase c;
  TwoAgencies& a = c.a;
  struct Case {
    std::string name;
    RawAnswer answer;
  };
  const std::vector<Case> cases = {
      {"tab in a header", {{{"x-hostile", "a\tb"}}, {}}},
      {"control byte in a header", {{{"x-hostile", "a\x01z"}}, {}}},
      {"DEL in a header", {{{"x-hostile", "a\x7f"}}, {}}},
      {"non-UTF-8 in a header", {{{"x-hostile", "\xff\xfe"}}, {}}},
      {"UTF-8 in a header", {{{"x-hostile", "caf\xc3\xa9"}}, {}}},
      {"CR/LF in a header", {{{"x-hostile", "a\r\nx-road-error: Client.Fake"}}, {}}},
      {"upper-case header name", {{{"X-Hostile", "v"}}, {}}},
      {"tab in a trailer", {{}, {{"x-hostile", "a\tb"}}}},
      {"NUL in a trailer", {{}, {{"x-hostile", std::string("a\0b", 3)}}}},
      {"non-UTF-8 in a trailer", {{}, {{"x-hostile", "\xc3\x28"}}}},
      {"control byte in grpc-message", {{}, {{"grpc-message", "a\x1b[2J"}}, "3"}},
      {"non-UTF-8 in grpc-message", {{}, {{"grpc-message", "caf\xe9"}}, "3"}},
  };
  std::map<std::string, RawAnswer> answers;
  for (const Case& k : cases) answers[k.name] = k.answer;
  RawGrpcBackend raw(answers);
  constexpr char kRawService[] = "darvoza.test.RawHostile";
  AddGrantedService(a, kRawService, raw.address());
  auto channel = Plain(a.consumer->client_address());
  const std::string path = absl::StrCat("/", kRawService, "/Any");
  {
    // The raw backend itself answers a plain call, so the refusals below are about the bytes.
    Answer plain = CallGeneric(channel, path, BenefitsCallsTax(), "plain");
    INFO(plain.status.error_code() << " " << plain.fault << " " << plain.status.error_message());
    REQUIRE(plain.status.ok());
  }
  for (const Case& k : cases) {
    Answer answer = CallGeneric(channel, path, BenefitsCallsTax(), k.name);
    INFO(k.name << ": " << answer.status.error_code() << " " << answer.fault << " "
                << answer.status.error_message());
    CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(answer.fault == "Server.ServerProxy.ServiceFailed");
    CHECK(answer.initial.count("x-hostile") == 0);
  }
  CHECK(raw.requests() == static_cast<int64_t>(cases.size()) + 1);
  c.Finish();
}

// ---------------------------------------------------------------------------------------------
// A hostile provider SS: its signed answer, changed between its backend and the consumer SS.

TEST_CASE("Security: a provider SS's signed answer that cannot be passed on is refused",
          "[security][provider-ss]") {
  HostileCase c;
  TwoAgencies& a = c.a;
  auto provider_identity =
      a.provider->node->services().keys->SigningSigner(*ParseMemberId(kTaxMember));
  REQUIRE(provider_identity.ok());
  struct Case {
    std::string name;
    std::function<void(v1::ResponseEnvelope&)> change;
    bool resign;  // false: the change breaks the provider member's signature
    crypto::SignatureContext context = crypto::SignatureContext::kResponse;
    std::string fault;  // when not the default for the case
  };
  auto add = [](google::protobuf::RepeatedPtrField<v1::MetadataEntry>* to, const char* key,
                const std::string& value) {
    v1::MetadataEntry* entry = to->Add();
    entry->set_key(key);
    entry->set_value(value);
  };
  const std::vector<Case> cases = {
      {"tab in a signed trailer",
       [&](v1::ResponseEnvelope& r) { add(r.mutable_trailing_metadata(), "x-bad", "a\tb"); },
       true},
      {"non-UTF-8 in a signed header",
       [&](v1::ResponseEnvelope& r) { add(r.mutable_metadata(), "x-bad", "\xff"); }, true},
      {"NUL in a signed header",
       [&](v1::ResponseEnvelope& r) { add(r.mutable_metadata(), "x-bad", std::string(1, '\0')); },
       true},
      {"over-long signed trailer",
       [&](v1::ResponseEnvelope& r) {
         add(r.mutable_trailing_metadata(), "x-bad", std::string(5000, 't'));
       },
       true},
      {"bad signed metadata key",
       [&](v1::ResponseEnvelope& r) { add(r.mutable_metadata(), "Bad Key", "v"); }, true},
      {"control byte in the signed status message",
       [](v1::ResponseEnvelope& r) {
         r.set_grpc_status_code(5);
         r.set_status_message("line\nnext\x1b[2J");
       },
       true},
      {"signed status code out of range",
       [](v1::ResponseEnvelope& r) { r.set_grpc_status_code(99); }, true},
      {"changed after signing",
       [&](v1::ResponseEnvelope& r) { add(r.mutable_trailing_metadata(), "x-fine", "v"); },
       false},
      {"signed under the request context",
       [](v1::ResponseEnvelope&) {}, true, crypto::SignatureContext::kRequest},
      {"a protocol version newer than the consumer speaks",
       [](v1::ResponseEnvelope& r) { r.set_protocol_version(2); }, true,
       crypto::SignatureContext::kResponse, "Server.ClientProxy.InvalidProtocolVersion"},
  };
  const Case* current = nullptr;
  absl::Mutex mu;
  ss::exchange::SetIncomingResponseHookForTest(
      [&](const v1::Envelope& request, v1::SignedMessage& m) {
        if (request.user_id() != "hostile") return;  // the well-behaved client's answers pass
        absl::MutexLock lock(&mu);
        v1::ResponseEnvelope response;
        if (current == nullptr || !response.ParseFromString(m.envelope())) return;
        current->change(response);
        if (!current->resign) {
          m.set_envelope(response.SerializeAsString());
          return;
        }
        auto resigned = ss::exchange::SignMessage(*provider_identity, current->context,
                                                  response.SerializeAsString(), m.body());
        if (resigned.ok()) m = *std::move(resigned);
      });
  Metadata hostile = BenefitsCallsTax();
  hostile.emplace_back("x-road-userid", "hostile");
  auto channel = Plain(a.consumer->client_address());
  for (const Case& k : cases) {
    {
      absl::MutexLock lock(&mu);
      current = &k;
    }
    Answer answer = CallGeneric(channel, kTaxMethod, hostile, TaxRequestBody());
    INFO(k.name << ": " << answer.status.error_code() << " " << answer.fault << " "
                << answer.status.error_message());
    if (!k.fault.empty()) {
      CHECK(answer.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
      CHECK(answer.fault == k.fault);
    } else if (k.resign && k.context == crypto::SignatureContext::kResponse) {
      CHECK(answer.status.error_code() == grpc::StatusCode::UNAVAILABLE);
      CHECK(answer.fault == "Server.ServerProxy.ServiceFailed");
    } else {
      CHECK(answer.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
      CHECK(answer.fault == "Server.ClientProxy.InvalidSignature");
    }
    CHECK(answer.initial.count("x-bad") == 0);
    CHECK(answer.trailing.count("x-bad") == 0);
  }
  ss::exchange::SetIncomingResponseHookForTest(nullptr);
  // Each hostile call reached the backend (the answer was changed after it): counted apart.
  c.Finish(static_cast<int64_t>(cases.size()));
}

// ---------------------------------------------------------------------------------------------
// At most once, and refusals the consumer makes itself.

// A second provider SS of the tax member hosting the same subsystem, with its own backend.
Federation::SecurityServer& AddSecondProvider(TwoAgencies& a, const std::string& backend) {
  auto& second = a.fed.StartSecurityServer("UZ/GOV/70000001/ss1b");
  a.fed.Host(second, kTaxSubsystem);
  a.fed.AddService(second, kTaxSubsystem, kGrpcService, backend);
  a.fed.Grant(second, absl::StrCat(kTaxSubsystem, "/", kGrpcService),
              absl::StrCat("subsystem:", kBenefitsSubsystem));
  a.fed.WaitForConfEverywhere();
  return second;
}

TEST_CASE("Security: a provider whose backend is down is not failed over (at most once)",
          "[security][failover]") {
  // The first provider SS's backend is a port nobody listens on; the second SS has a live one.
  // The first SS's refusal ("cannot be reached") is an answer from a reachable provider: the
  // request was received and logged there, and must not be sent again to the second.
  TwoAgencies a;
  const std::string dead = absl::StrCat("127.0.0.1:", PickFreePort());
  {
    v1::LocalService service;
    *service.mutable_id() = *ParseServiceId(absl::StrCat(kTaxSubsystem, "/", kGrpcService));
    service.set_backend(absl::StrCat("grpc://", dead));
    v1::SsEmpty reply;
    auto ctx = a.fed.AdminContext(*a.provider);
    grpc::Status replaced = a.provider->admin->AddService(ctx.get(), service, &reply);
    INFO(replaced.error_message());
    REQUIRE(replaced.ok());
  }
  Backend second_backend("second-backend");
  auto& second = AddSecondProvider(a, second_backend.address());

  auto channel = Plain(a.consumer->client_address());
  int service_failed = 0;
  int answered = 0;
  for (int i = 0; i < 6; ++i) {
    Answer r = CallGeneric(channel, kTaxMethod, BenefitsCallsTax(), TaxRequestBody());
    INFO(r.status.error_code() << " " << r.fault << " " << r.status.error_message());
    if (r.status.ok()) {
      ++answered;
    } else {
      CHECK(r.fault == "Server.ServerProxy.ServiceFailed");
      ++service_failed;
    }
  }
  // The first SS is untried-or-unmeasured and so ranks first at least once.
  CHECK(service_failed >= 1);
  CHECK(second_backend.hits() == answered);
  CHECK(a.backend.hits() == 0);
  CHECK(ConsumerRefusals(*a.consumer, "Server.ClientProxy.NetworkError") == 0);
  // No well-behaved client here: this case breaks the very service it would call.
  RequireLogVerifies(a.fed, *a.consumer);
  RequireLogVerifies(a.fed, *a.provider);
  RequireLogVerifies(a.fed, second);
}

TEST_CASE("Security: an unreachable provider SS is failed over and nothing runs twice",
          "[security][failover]") {
  TwoAgencies a;
  Backend second_backend("second-backend");
  auto& second = AddSecondProvider(a, second_backend.address());
  a.fed.StopSecurityServer(*a.provider);
  WellBehavedClient good(a.consumer->client_address());
  auto channel = Plain(a.consumer->client_address());
  for (int i = 0; i < 4; ++i) {
    Answer r = CallGeneric(channel, kTaxMethod, BenefitsCallsTax(), TaxRequestBody());
    INFO(r.status.error_code() << " " << r.fault << " " << r.status.error_message());
    CHECK(r.status.ok());
  }
  good.Stop();
  INFO(good.last_error());
  CHECK(good.errors() == 0);
  CHECK(second_backend.hits() == 4 + good.ok());
  CHECK(a.backend.hits() == 0);
  RequireLogVerifies(a.fed, second);

  // With no provider SS reachable at all, the client learns it was the network.
  a.fed.StopSecurityServer(second);
  Answer none = CallGeneric(channel, kTaxMethod, BenefitsCallsTax(), TaxRequestBody());
  INFO(none.status.error_message());
  CHECK(none.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(none.fault == "Server.ClientProxy.NetworkError");
  CHECK(second_backend.hits() == 4 + good.ok());
  RequireLogVerifies(a.fed, *a.consumer);
}

TEST_CASE("Security: a client whose hosting the registry no longer approves is refused at once",
          "[security][consumer]") {
  TwoAgencies a;
  REQUIRE(CallGeneric(Plain(a.consumer->client_address()), kTaxMethod, BenefitsCallsTax(),
                      TaxRequestBody())
              .status.ok());
  const int requests_in = CountRecords(*a.provider, v1::REQUEST_IN);
  REQUIRE(a.fed.registry().RemoveSubsystem(*ParseSubsystemId(kBenefitsSubsystem), "test").ok());
  a.fed.WaitForConfEverywhere();
  Answer r = CallGeneric(Plain(a.consumer->client_address()), kTaxMethod, BenefitsCallsTax(),
                         TaxRequestBody());
  INFO(r.status.error_message());
  CHECK(r.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(r.fault == "Client.NotAuthorized");
  // Nothing was signed or sent.
  CHECK(CountRecords(*a.provider, v1::REQUEST_IN) == requests_in);
  CHECK(CountRecords(*a.consumer, v1::REFUSAL, "Client.NotAuthorized") == 1);
  CHECK(a.backend.hits() == 1);
  // No well-behaved client here: the only client subsystem is the one this case removes.
  RequireLogVerifies(a.fed, *a.consumer);
  RequireLogVerifies(a.fed, *a.provider);
}

}  // namespace
}  // namespace darvoza::testing
