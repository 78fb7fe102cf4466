// A deliberately naive HTTP/2 client and server for hostile-input tests: they put any bytes
// into a header value (HPACK literals, no Huffman, no validation), which neither gRPC (it
// refuses) nor curl (it splits header files at line ends and argv at NUL) can send.
// The client does not decode the answer's headers; it only tells how the server ended the
// stream, so tests observe the server's verdict through its audit log and metrics. The server
// plays a hostile backend: it never decodes a request's headers either, and picks its answer by
// the request's message bytes (DATA frames are not HPACK-encoded).
#ifndef DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_
#define DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace darvoza::testing {

enum class RawOutcome {
  kAnswered,   // the server ended stream 1 with HEADERS/DATA carrying END_STREAM
  kReset,      // the server reset stream 1 (RST_STREAM)
  kClosed,     // the server closed the connection (GOAWAY or EOF) without ending the stream
  kNoAnswer,   // nothing within the safety deadline (a hung server: a test failure)
  kConnectFailed,
};

const char* RawOutcomeName(RawOutcome outcome);

// Sends one gRPC-shaped POST to `path` on plaintext `host_port` ("127.0.0.1:1234") with
// content-type application/grpc, te: trailers, the given extra headers (in order, bytes as
// they are) and a 5-byte empty gRPC message, and waits for the end of the stream.
RawOutcome RawGrpcPost(const std::string& host_port, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers);

using RawHeaders = std::vector<std::pair<std::string, std::string>>;

// The answer a RawGrpcBackend sends: headers and trailers as given (bytes as they are), around
// one empty gRPC message, ending with `grpc_status`.
struct RawAnswer {
  RawHeaders headers;   // after :status 200 and content-type application/grpc
  RawHeaders trailers;  // after grpc-status
  std::string grpc_status = "0";
};

// A plaintext HTTP/2 server on 127.0.0.1 that answers every gRPC call (any path) with
// answers[message], `message` being the request's gRPC message bytes; an unknown message gets
// an answer without extra headers. One thread per connection; the destructor closes all.
class RawGrpcBackend {
 public:
  explicit RawGrpcBackend(std::map<std::string, RawAnswer> answers);
  ~RawGrpcBackend();
  RawGrpcBackend(const RawGrpcBackend&) = delete;
  RawGrpcBackend& operator=(const RawGrpcBackend&) = delete;

  std::string address() const;
  // Requests received whole (END_STREAM seen).
  int64_t requests() const { return requests_.load(); }

 private:
  void Accept();
  void Serve(int fd);

  const std::map<std::string, RawAnswer> answers_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // an eventfd that wakes every thread at destruction
  int port_ = 0;
  std::atomic<int64_t> requests_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_
