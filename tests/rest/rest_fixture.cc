#include "tests/rest/rest_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "audit/audit_log.h"
#include "tests/test_support.h"

extern char** environ;

namespace darvoza::testing {
namespace {

int Run(std::vector<std::string> argv) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, cargv[0], nullptr, nullptr, cargv.data(), environ) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\n" (the last head when curl dumps
// several, e.g. after "100 Continue").
void ParseHead(absl::string_view head, ClientResult* out) {
  out->headers.clear();
  for (absl::string_view line : absl::StrSplit(head, absl::ByAnyChar("\r\n"), absl::SkipEmpty())) {
    if (absl::StartsWith(line, "HTTP/")) {
      out->headers.clear();
      std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
      if (words.size() >= 2) (void)absl::SimpleAtoi(words[1], &out->status);
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    out->headers.emplace(absl::AsciiStrToLower(line.substr(0, colon)),
                         std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  out->fault = RecordObservedFault(out->Header("x-road-error"));
}

}  // namespace

std::string ClientResult::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpBackend::HttpBackend() {
  auto server = HttpServer::Start(
      "127.0.0.1:0", HttpServerOptions(),
      [this](HttpRequest request, HttpReply reply) {
        std::function<HttpResponse(const HttpRequest&)> answer;
        {
          absl::MutexLock lock(&mu_);
          requests_.push_back(request);
          if (hold_) {
            held_.push_back(std::move(reply));
            return;
          }
          answer = answer_;
        }
        if (answer) {
          reply(answer(request));
          return;
        }
        HttpResponse out;
        out.headers = {{"Content-Type", "application/json"}};
        out.body = absl::StrCat("{\"method\":\"", request.method, "\",\"bytes\":",
                                request.body.size(), "}");
        reply(std::move(out));
      },
      [](const absl::Status& why) {
        return HttpResponse{400, {}, std::string(why.message())};
      });
  REQUIRE(server.ok());
  server_ = *std::move(server);
}

HttpBackend::~HttpBackend() {
  std::vector<HttpReply> held;
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  for (HttpReply& reply : held) reply(HttpResponse{503, {}, "released"});
  server_->Shutdown();
}

std::string HttpBackend::url() const { return absl::StrCat("http://127.0.0.1:", server_->port()); }

int HttpBackend::hits() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(requests_.size());
}

HttpRequest HttpBackend::last() const {
  absl::MutexLock lock(&mu_);
  REQUIRE(!requests_.empty());
  return requests_.back();
}

std::vector<HttpRequest> HttpBackend::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int HttpBackend::HitsFor(const std::string& message_id) const {
  int hits = 0;
  for (const HttpRequest& request : requests()) {
    hits += HeaderValue(request, "x-road-id") == message_id;
  }
  return hits;
}

void HttpBackend::Answer(std::function<HttpResponse(const HttpRequest&)> answer) {
  absl::MutexLock lock(&mu_);
  answer_ = std::move(answer);
}

void HttpBackend::Hold() {
  absl::MutexLock lock(&mu_);
  hold_ = true;
}

RestAgencies::RestAgencies() {
  fed.AddServiceAt(provider, kTaxSubsystem, kRestService, backend.url() + "/base");
  fed.AddServiceAt(provider, kTaxSubsystem, kSlowService, backend.url(), /*timeout_millis=*/300);
  fed.AddServiceAt(provider, kTaxSubsystem, kDeadService,
                   absl::StrCat("http://127.0.0.1:", PickFreePort()));
  fed.AddServiceAt(provider, kTaxSubsystem, kTlsService,
                   absl::StrCat("https://", absl::StripPrefix(backend.url(), "http://")));
  for (const char* service : {kRestService, kSlowService, kDeadService, kTlsService}) {
    fed.Grant(provider, absl::StrCat(kTaxSubsystem, "/", service),
              absl::StrCat("subsystem:", kBenefitsSubsystem));
  }
  fed.WaitForConfEverywhere();
  REQUIRE(!rest_address().empty());
}

std::string RestAgencies::Url(const std::string& rest) const {
  return absl::StrCat("http://", rest_address(), "/r1/", kRestServiceId, rest);
}

std::string HeaderValue(const HttpRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) return value;
  }
  return "";
}

bool HasHeader(const HttpRequest& request, const std::string& name) {
  for (const auto& entry : request.headers) {
    if (entry.first == name) return true;
  }
  return false;
}

ClientResult Curl(const std::vector<std::string>& args) {
  TempDir dir;
  const std::string head = dir.File("head");
  const std::string body = dir.File("body");
  std::vector<std::string> argv = {"curl", "-sS", "-m", "60", "-D", head, "-o", body};
  argv.insert(argv.end(), args.begin(), args.end());
  ClientResult result;
  result.exit_code = Run(argv);
  ParseHead(ReadFileForTest(head), &result);
  result.body = ReadFileForTest(body);
  return result;
}

ClientResult PythonClient(const std::string& address, const std::string& method,
                          const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& headers,
                          const std::string& body, int repeat) {
  TempDir dir;
  const std::string out = dir.File("out");
  const std::string in = dir.File("in");
  WriteFileForTest(in, body);
  std::string header_args;
  for (const auto& [name, value] : headers) absl::StrAppend(&header_args, name, "\n", value, "\n");
  WriteFileForTest(dir.File("headers"), header_args);
  // The head is written as the server sent it, then the body after a blank line.
  static constexpr char kScript[] = R"PY(
import http.client, sys
host, port = sys.argv[1].rsplit(':', 1)
method, path, headers_file, body_file, out_file, repeat = sys.argv[2:8]
lines = open(headers_file).read().split('\n')
headers = dict(zip(lines[0::2], lines[1::2]))
headers.pop('', None)
body = open(body_file, 'rb').read()
conn = http.client.HTTPConnection(host, int(port), timeout=60)
for _ in range(int(repeat)):
    conn.request(method, path, body=body if body else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
with open(out_file, 'wb') as f:
    f.write(('HTTP/1.1 %d %s\r\n' % (response.status, response.reason)).encode())
    for name, value in response.getheaders():
        f.write(('%s: %s\r\n' % (name, value)).encode())
    f.write(b'\r\n')
    f.write(data)
)PY";
  ClientResult result;
  result.exit_code = Run({"python3", "-c", kScript, address, method, path, dir.File("headers"),
                          in, out, std::to_string(repeat)});
  const std::string raw = ReadFileForTest(out);
  const size_t end = raw.find("\r\n\r\n");
  if (end != std::string::npos) {
    ParseHead(absl::string_view(raw).substr(0, end), &result);
    result.body = raw.substr(end + 4);
  }
  return result;
}

std::vector<ClientResult> RawExchange(const std::string& address, const std::string& bytes,
                                      size_t responses) {
  const size_t colon = address.rfind(':');
  int port = 0;
  REQUIRE(absl::SimpleAtoi(address.substr(colon + 1), &port));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early on a refused request
    sent += static_cast<size_t>(n);
  }
  std::string in;
  std::vector<ClientResult> out;
  char buffer[65536];
  while (out.size() < responses) {
    // Complete responses in `in` (each with a Content-Length, as this server always sends).
    const size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      ClientResult result;
      ParseHead(absl::string_view(in).substr(0, end), &result);
      size_t length = 0;
      (void)absl::SimpleAtoi(result.Header("content-length"), &length);
      if (in.size() >= end + 4 + length) {
        result.exit_code = 0;
        result.body = in.substr(end + 4, length);
        in.erase(0, end + 4 + length);
        out.push_back(std::move(result));
        continue;
      }
    }
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    in.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

void RequireLogVerifies(Federation& fed, Federation::SecurityServer& ss) {
  audit::VerifyReport report = fed.VerifyAuditLog(ss);
  INFO(report.ToText());
  CHECK(report.ok);
}

std::vector<v1::AuditRecord> Records(Federation::SecurityServer& ss,
                                     const std::string& message_id) {
  auto found = ss.node->services().audit->FindByMessageId(message_id);
  REQUIRE(found.ok());
  std::vector<v1::AuditRecord> records;
  for (const auto& r : *found) records.push_back(r.record);
  return records;
}

}  // namespace darvoza::testing
