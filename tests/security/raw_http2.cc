#include "tests/security/raw_http2.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace darvoza::testing {
namespace {

constexpr uint8_t kData = 0x0, kHeaders = 0x1, kRstStream = 0x3, kSettings = 0x4, kPing = 0x6,
                  kGoAway = 0x7, kWindowUpdate = 0x8, kContinuation = 0x9;
constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
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

struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream = 0;
  std::string payload;
};

// Takes the first whole frame off `in`; false when `in` holds no whole frame yet.
bool NextFrame(std::string* in, Frame* frame) {
  if (in->size() < 9) return false;
  const std::string& b = *in;
  const size_t len = (static_cast<uint8_t>(b[0]) << 16) | (static_cast<uint8_t>(b[1]) << 8) |
                     static_cast<uint8_t>(b[2]);
  if (b.size() < 9 + len) return false;
  frame->type = static_cast<uint8_t>(b[3]);
  frame->flags = static_cast<uint8_t>(b[4]);
  frame->stream = ((static_cast<uint8_t>(b[5]) & 0x7f) << 24) |
                  (static_cast<uint8_t>(b[6]) << 16) | (static_cast<uint8_t>(b[7]) << 8) |
                  static_cast<uint8_t>(b[8]);
  frame->payload = b.substr(9, len);
  in->erase(0, 9 + len);
  return true;
}

std::string Uint32(uint32_t v) {
  return {static_cast<char>((v >> 24) & 0xff), static_cast<char>((v >> 16) & 0xff),
          static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
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
  std::string out = kPreface;
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
    Frame frame;
    while (NextFrame(&in, &frame)) {
      const uint8_t type = frame.type;
      const uint8_t flags = frame.flags;
      const uint32_t stream = frame.stream;
      const std::string& payload = frame.payload;
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

RawGrpcBackend::RawGrpcBackend(std::map<std::string, RawAnswer> answers)
    : answers_(std::move(answers)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  DARVOZA_CHECK(listen_fd_ >= 0) << "socket";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  DARVOZA_CHECK(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                listen(listen_fd_, 16) == 0 &&
                getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      << "cannot listen on 127.0.0.1";
  port_ = ntohs(addr.sin_port);
  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  DARVOZA_CHECK(stop_fd_ >= 0) << "eventfd";
  acceptor_ = std::thread([this] { Accept(); });
}

RawGrpcBackend::~RawGrpcBackend() {
  const uint64_t one = 1;
  DARVOZA_CHECK(write(stop_fd_, &one, sizeof(one)) == sizeof(one)) << "eventfd write";
  acceptor_.join();
  std::vector<std::thread> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (std::thread& t : connections) t.join();
  close(listen_fd_);
  close(stop_fd_);
}

std::string RawGrpcBackend::address() const { return absl::StrCat("127.0.0.1:", port_); }

void RawGrpcBackend::Accept() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    absl::MutexLock lock(&mu_);
    connections_.emplace_back([this, fd] {
      Serve(fd);
      close(fd);
    });
  }
}

void RawGrpcBackend::Serve(int fd) {
  std::string out;
  AppendFrame(&out, kSettings, 0, 0, "");
  if (!SendAll(fd, out)) return;
  std::string in;
  bool preface_seen = false;
  std::map<uint32_t, std::string> bodies;  // stream -> request bytes so far
  auto answer = [&](uint32_t stream) {
    const std::string& body = bodies[stream];
    const std::string message = body.size() >= 5 ? body.substr(5) : "";
    bodies.erase(stream);
    ++requests_;
    auto it = answers_.find(message);
    static const RawAnswer kPlain{};
    const RawAnswer& a = it == answers_.end() ? kPlain : it->second;
    std::string block;
    AppendHeader(&block, ":status", "200");
    AppendHeader(&block, "content-type", "application/grpc");
    for (const auto& [name, value] : a.headers) AppendHeader(&block, name, value);
    std::string trailers;
    AppendHeader(&trailers, "grpc-status", a.grpc_status);
    for (const auto& [name, value] : a.trailers) AppendHeader(&trailers, name, value);
    std::string frames;
    AppendFrame(&frames, kHeaders, kEndHeaders, stream, block);
    AppendFrame(&frames, kData, 0, stream, std::string(5, '\0'));
    AppendFrame(&frames, kHeaders, kEndHeaders | kEndStream, stream, trailers);
    return SendAll(fd, frames);
  };
  while (true) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;  // EINTR
    if (fds[1].revents != 0) return;
    char buf[16384];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
    if (!preface_seen) {
      if (in.size() < sizeof(kPreface) - 1) continue;
      if (in.compare(0, sizeof(kPreface) - 1, kPreface) != 0) return;
      in.erase(0, sizeof(kPreface) - 1);
      preface_seen = true;
    }
    Frame frame;
    while (NextFrame(&in, &frame)) {
      std::string reply;
      if (frame.type == kSettings && (frame.flags & kAck) == 0) {
        AppendFrame(&reply, kSettings, kAck, 0, "");
      } else if (frame.type == kPing && (frame.flags & kAck) == 0) {
        AppendFrame(&reply, kPing, kAck, 0, frame.payload);
      } else if (frame.type == kHeaders && (frame.flags & kEndStream)) {
        if (!answer(frame.stream)) return;
      } else if (frame.type == kData) {
        bodies[frame.stream] += frame.payload;
        // Give the window back, so many requests on one connection never stall.
        if (!frame.payload.empty()) {
          AppendFrame(&reply, kWindowUpdate, 0, 0,
                      Uint32(static_cast<uint32_t>(frame.payload.size())));
        }
        if (!reply.empty() && !SendAll(fd, reply)) return;
        reply.clear();
        if ((frame.flags & kEndStream) && !answer(frame.stream)) return;
      } else if (frame.type == kGoAway) {
        return;
      }
      if (!reply.empty() && !SendAll(fd, reply)) return;
    }
  }
}

}  // namespace darvoza::testing
