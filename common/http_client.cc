#include "common/http_client.h"

#include <curl/curl.h>

#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace darvoza {
namespace {

struct Job {
  HttpClientRequest request;
  std::function<void(absl::StatusOr<HttpClientResponse>)> done;
};

// What libcurl's callbacks fill in.
struct Transfer {
  HttpClientResponse response;
  size_t max_body = 0;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (transfer->response.body.size() + n > transfer->max_body) {
    transfer->too_large = true;
    return 0;  // ends the transfer with CURLE_WRITE_ERROR
  }
  transfer->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t n = size * count;
  absl::string_view line(data, n);
  if (absl::StartsWith(line, "HTTP/")) {
    transfer->response.headers.clear();  // a new (final or 1xx) response starts
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return n;  // the blank line
  transfer->response.headers.emplace_back(
      absl::AsciiStrToLower(line.substr(0, colon)),
      std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  return n;
}

absl::Status CurlFailure(CURLcode code, const Transfer& transfer, const char* detail) {
  const std::string why = absl::StrCat(curl_easy_strerror(code), detail[0] ? ": " : "", detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(why);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
      return absl::UnauthenticatedError(why);
    case CURLE_WRITE_ERROR:
      if (transfer.too_large) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the answer's body is longer than ", transfer.max_body, " bytes"));
      }
      return absl::UnavailableError(why);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(why);
    default:
      return absl::UnavailableError(why);
  }
}

absl::StatusOr<HttpClientResponse> Perform(CURL* curl, const HttpClientRequest& request) {
  curl_easy_reset(curl);
  Transfer transfer;
  transfer.max_body = request.max_response_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  // libcurl adds these unless told not to; a backend must see only what the client sent.
  headers = curl_slist_append(headers, "Accept:");
  headers = curl_slist_append(headers, "Expect:");
  for (const auto& [name, value] : request.headers) {
    for (absl::string_view text : {absl::string_view(name), absl::string_view(value)}) {
      for (char c : text) {
        if (c == '\r' || c == '\n' || c == '\0') {
          curl_slist_free_all(headers);
          return absl::InvalidArgumentError("a header holds a line break");
        }
      }
    }
    // "Name;" sends a header with an empty value; "Name:" would remove it.
    const std::string line =
        value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    headers = curl_slist_append(headers, line.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.connect_timeout)));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  if (!request.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(request.ca_pem.data()), request.ca_pem.size(),
                 CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!request.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, request.ca_file.c_str());
  }
  if (!request.client_cert_pem.empty()) {
    curl_blob cert{const_cast<char*>(request.client_cert_pem.data()),
                   request.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(request.client_key_pem.data()),
                  request.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
  }
  if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  }
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code != CURLE_OK) return CurlFailure(code, transfer, error);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = static_cast<int>(status);
  return std::move(transfer.response);
}

class HttpClientImpl final : public HttpClient {
 public:
  explicit HttpClientImpl(int threads) {
    static std::once_flag init;
    std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    for (int i = 0; i < std::max(1, threads); ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  ~HttpClientImpl() override { Shutdown(); }

  void Send(HttpClientRequest request,
            std::function<void(absl::StatusOr<HttpClientResponse>)> done) override {
    {
      absl::MutexLock lock(&mu_);
      if (!stopped_) {
        queue_.push_back(Job{std::move(request), std::move(done)});
        return;
      }
    }
    done(absl::UnavailableError("the HTTP client is shut down"));
  }

  void Shutdown() override {
    std::deque<Job> dropped;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;
      stopped_ = true;
      dropped.swap(queue_);
    }
    for (Job& job : dropped) job.done(absl::UnavailableError("the HTTP client is shut down"));
    for (std::thread& worker : workers_) worker.join();
  }

 private:
  void Work() {
    // One handle per worker: libcurl keeps its connections there for reuse.
    CURL* curl = curl_easy_init();
    while (true) {
      Job job;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return stopped_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) break;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      absl::StatusOr<HttpClientResponse> answer =
          curl == nullptr ? absl::InternalError("libcurl could not make a handle")
                          : Perform(curl, job.request);
      job.done(std::move(answer));
    }
    if (curl != nullptr) curl_easy_cleanup(curl);
  }

  absl::Mutex mu_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace

std::unique_ptr<HttpClient> HttpClient::Create(int threads) {
  return std::make_unique<HttpClientImpl>(threads);
}

}  // namespace darvoza
