#include "tests/security/raw_http2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>

namespace darvoza::testing {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6,
                  kGoAway = 0x7, kContinuation = 0x9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4;

void AppendFrame(std::string* out, uint8_t type, uint8_t flags, uint32_t stream,
                 const std::string& payload) {
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out->push_back(static_cast<char>((n >> 16) & 0xff));
  out->push_back(static_cast<char>((n >> 8) & 0xff));
  out->push_back(static_cast<char>(n & 0xff));
  out->push_back(static_cast<char>(type));
  out->push_back(static_cast<char>(flags));
  out->push_back(static_cast<char>((stream >> 24) & 0x7f));
  out->push_back(static_cast<char>((stream >> 16) & 0xff));
  out->push_back(static_cast<char>((stream >> 8) & 0xff));
  out->push_back(static_cast<char>(stream & 0xff));
  out->append(payload);
}

// HPACK string literal, no Huffman: 7-bit prefix length then the raw bytes.
void AppendHpackString(std::string* out, const std::string& s) {
  size_t n = s.size();
  if (n < 127) {
    out->push_back(static_cast<char>(n));
  } else {
    out->push_back(static_cast<char>(127));
    n -= 127;
    while (n >= 128) {
      out->push_back(static_cast<char>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    out->push_back(static_cast<char>(n));
  }
  out->append(s);
}

// "Literal header field without indexing, new name".
void AppendHeader(std::string* block, const std::string& name, const std::string& value) {
  block->push_back(0);
  AppendHpackString(block, name);
  AppendHpackString(block, value);
}

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const char* RawOutcomeName(RawOutcome outcome) {
  switch (outcome) {
    case RawOutcome::kAnswered: return "answered";
    case RawOutcome::kReset: return "reset";
    case RawOutcome::kClosed: return "closed";
    case RawOutcome::kNoAnswer: return "no answer";
    case RawOutcome::kConnectFailed: return "connect failed";
  }
  return "?";
}

RawOutcome RawGrpcPost(const std::string& host_port, const std::string& path,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
  const size_t colon = host_port.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return RawOutcome::kConnectFailed;
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return RawOutcome::kConnectFailed;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return RawOutcome::kConnectFailed;
  }
  std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  AppendFrame(&out, kSettings, 0, 0, "");
  std::string block;
  AppendHeader(&block, ":method", "POST");
  AppendHeader(&block, ":scheme", "http");
  AppendHeader(&block, ":path", path);
  AppendHeader(&block, ":authority", host_port);
  AppendHeader(&block, "content-type", "application/grpc");
  AppendHeader(&block, "te", "trailers");
  for (const auto& [name, value] : headers) AppendHeader(&block, name, value);
  // Within the default SETTINGS_MAX_FRAME_SIZE: the rest of a big block goes in CONTINUATION
  // frames, so large header blocks meet the server's header-size limit, not its frame limit.
  constexpr size_t kMaxFrame = 16384;
  for (size_t offset = 0; offset == 0 || offset < block.size(); offset += kMaxFrame) {
    const bool last = offset + kMaxFrame >= block.size();
    AppendFrame(&out, offset == 0 ? kHeaders : kContinuation, last ? kEndHeaders : 0, 1,
                block.substr(offset, kMaxFrame));
  }
  AppendFrame(&out, kData, kEndStream, 1, std::string(5, '\0'));
  if (!SendAll(fd, out)) {
    close(fd);
    return RawOutcome::kClosed;
  }

  // A safety net against a hung server, not a timing assertion.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string in;
  RawOutcome outcome = RawOutcome::kNoAnswer;
  while (outcome == RawOutcome::kNoAnswer) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      outcome = RawOutcome::kClosed;
      break;
    }
    in.append(buf, static_cast<size_t>(n));
    while (in.size() >= 9) {
      const size_t len = (static_cast<uint8_t>(in[0]) << 16) | (static_cast<uint8_t>(in[1]) << 8) |
                         static_cast<uint8_t>(in[2]);
      if (in.size() < 9 + len) break;
      const uint8_t type = static_cast<uint8_t>(in[3]);
      const uint8_t flags = static_cast<uint8_t>(in[4]);
      const uint32_t stream = ((static_cast<uint8_t>(in[5]) & 0x7f) << 24) |
                              (static_cast<uint8_t>(in[6]) << 16) |
                              (static_cast<uint8_t>(in[7]) << 8) | static_cast<uint8_t>(in[8]);
      const std::string payload = in.substr(9, len);
      in.erase(0, 9 + len);
      if (type == kSettings && (flags & kAck) == 0) {
        std::string ack;
        AppendFrame(&ack, kSettings, kAck, 0, "");
        SendAll(fd, ack);
      } else if (type == kPing && (flags & kAck) == 0) {
        std::string pong;
        AppendFrame(&pong, kPing, kAck, 0, payload);
        SendAll(fd, pong);
      } else if (stream == 1 && (type == kHeaders || type == kData) && (flags & kEndStream)) {
        outcome = RawOutcome::kAnswered;
        break;
      } else if (stream == 1 && type == kRstStream) {
        outcome = RawOutcome::kReset;
        break;
      } else if (type == kGoAway) {
        outcome = RawOutcome::kClosed;
        break;
      }
    }
  }
  close(fd);
  return outcome;
}

}  // namespace darvoza::testing
