// A deliberately naive HTTP/2 client for hostile-input tests: it puts any bytes into a header
// value (HPACK literals, no Huffman, no validation), which neither gRPC's client (it refuses)
// nor curl (it splits header files at line ends and argv at NUL) can send. It does not decode
// the answer's headers; it only tells how the server ended the stream, so tests observe the
// server's verdict through its audit log and metrics.
#ifndef DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_
#define DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_

#include <string>
#include <utility>
#include <vector>

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

}  // namespace darvoza::testing

#endif  // DARVOZA_TESTS_SECURITY_RAW_HTTP2_H_
