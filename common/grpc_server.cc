#include "common/grpc_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <grpc/grpc.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/resource_quota.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/host_port.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/toml_config.h"

namespace darvoza {

void NoReflectionOption::UpdatePlugins(
    std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) {
  plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                  return p->name() == "proto_server_reflection";
                                }),
                 plugins->end());
}

void WithoutHealthOrReflection(grpc::ServerBuilder& builder) {
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.SetOption(std::make_unique<NoReflectionOption>());
}

absl::Status RemoveStaleUnixSocket(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return absl::OkStatus();  // nothing there (or unreachable: bind says)
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; remove it or choose another admin_socket"));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path ", path, " is too long"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const bool live = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  if (live) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on the admin socket ", path,
        ": a running process accepts connections on it (another daemon with the same admin_socket?)"));
  }
  unlink(path.c_str());  // a stale socket of a previous run
  return absl::OkStatus();
}

absl::Status ReadConnectionLimits(const TomlConfig& toml, ConnectionLimits* limits) {
  int64_t idle = absl::ToInt64Seconds(limits->idle_timeout);
  DARVOZA_RETURN_IF_ERROR(toml.Integer("idle_connection_timeout_seconds", 1, 86400, &idle));
  limits->idle_timeout = absl::Seconds(idle);
  int64_t handshake = absl::ToInt64Seconds(limits->handshake_timeout);
  DARVOZA_RETURN_IF_ERROR(toml.Integer("handshake_timeout_seconds", 1, 600, &handshake));
  limits->handshake_timeout = absl::Seconds(handshake);
  int64_t streams = limits->max_concurrent_streams;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("max_concurrent_streams", 1, 100000, &streams));
  limits->max_concurrent_streams = static_cast<int>(streams);
  int64_t connections = limits->max_connections;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("max_connections_per_port", 1, 1000000, &connections));
  limits->max_connections = static_cast<int>(connections);
  int64_t mib = limits->memory_bytes >> 20;
  DARVOZA_RETURN_IF_ERROR(toml.Integer("connection_memory_mib", 16, 1 << 20, &mib));
  limits->memory_bytes = mib << 20;
  return absl::OkStatus();
}

namespace {

absl::Status CannotListen(absl::string_view what, const std::string& address,
                          absl::string_view why) {
  return absl::UnavailableError(
      absl::StrCat("cannot listen on the ", what, " address ", address, ": ", why));
}

constexpr absl::string_view kInUse =
    "the port is in use (by another process, or another listener of this one) or the address "
    "is not one of this host's";

int OpenReserve() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionListener>> ConnectionListener::Listen(
    absl::string_view what, const std::string& address, int max_connections) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(address);
  if (!parsed.ok()) return CannotListen(what, address, parsed.status().message());
  const std::string& host = parsed->host;
  const std::string port = absl::StrCat(parsed->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return CannotListen(what, address, gai_strerror(rc));
  }
  int fd = -1;
  int bind_errno = 0;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      bind_errno = errno;
      continue;
    }
    // SO_REUSEADDR only lets a restart bind while old connections sit in TIME_WAIT; unlike
    // SO_REUSEPORT it never lets a second listener share the port.
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      bind_errno = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return CannotListen(what, address, absl::StrCat(kInUse, " (", strerror(bind_errno), ")"));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    close(fd);
    return CannotListen(what, address, strerror(errno));
  }
  const int bound_port = ntohs(bound.ss_family == AF_INET6
                                   ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  char ip[INET6_ADDRSTRLEN] = "";
  const bool v6 = bound.ss_family == AF_INET6;
  inet_ntop(bound.ss_family,
            v6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&bound)->sin6_addr)
               : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&bound)->sin_addr),
            ip, sizeof(ip));
  std::string bound_address =
      v6 ? absl::StrCat("[", ip, "]:", bound_port) : absl::StrCat(ip, ":", bound_port);
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(fd);
    return CannotListen(what, address, absl::StrCat("eventfd: ", strerror(errno)));
  }
  return std::unique_ptr<ConnectionListener>(new ConnectionListener(
      std::string(what), fd, wake, bound_port, std::move(bound_address), max_connections));
}

ConnectionListener::ConnectionListener(std::string what, int listen_fd, int wake_fd, int port,
                                       std::string bound_address, int max_connections)
    : what_(std::move(what)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(port),
      bound_address_(std::move(bound_address)),
      max_connections_(static_cast<size_t>(max_connections)),
      reserve_fd_(OpenReserve()) {}

ConnectionListener::~ConnectionListener() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    DARVOZA_CHECK(write(wake_fd_, &one, sizeof(one)) == sizeof(one));
    thread_.join();
  }
  close(listen_fd_);
  close(wake_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

void ConnectionListener::Start(
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor) {
  DARVOZA_CHECK(!thread_.joinable() && acceptor != nullptr);
  acceptor_ = std::move(acceptor);
  thread_ = std::thread([this] { Loop(); });
}

bool ConnectionListener::BelowCap() {
  if (handed_.size() < max_connections_) return true;
  handed_.erase(std::remove_if(handed_.begin(), handed_.end(),
                               [](const std::pair<int, uint64_t>& h) {
                                 struct stat st;
                                 return fstat(h.first, &st) != 0 || !S_ISSOCK(st.st_mode) ||
                                        static_cast<uint64_t>(st.st_ino) != h.second;
                               }),
                handed_.end());
  return handed_.size() < max_connections_;
}

bool ConnectionListener::ShedWithReserve() {
  if (reserve_fd_ < 0) reserve_fd_ = OpenReserve();  // descriptors may have been freed since
  if (reserve_fd_ < 0) return false;
  close(reserve_fd_);
  int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) close(fd);
  reserve_fd_ = OpenReserve();
  return true;
}

void ConnectionListener::Loop() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  // After a failure that shedding cannot clear (no reserve, ENOBUFS), the listening socket
  // stays readable: wait a little before trying again instead of spinning.
  int timeout_ms = -1;
  while (true) {
    int ready = poll(fds, 2, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      log::Event(log::Level::kError, "listener.failed", "poll failed; the listener stops",
                 {{"listener", what_}, {"error", strerror(errno)}});
      return;
    }
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) return;
    timeout_ms = -1;
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EMFILE || errno == ENFILE) {
          if (!logged_exhaustion_) {
            log::Event(log::Level::kWarn, "listener.exhausted",
                       "descriptor limit reached: refusing new connections until descriptors "
                       "are free",
                       {{"listener", what_}, {"error", strerror(errno)}});
            logged_exhaustion_ = true;
          }
          if (ShedWithReserve()) continue;
        } else {
          log::Event(log::Level::kWarn, "listener.accept_failed", "",
                     {{"listener", what_}, {"error", strerror(errno)}});
        }
        timeout_ms = 100;
        break;
      }
      if (logged_exhaustion_) {
        log::Event(log::Level::kInfo, "listener.recovered", "accepting again",
                   {{"listener", what_}});
        logged_exhaustion_ = false;
      }
      if (!BelowCap()) {
        if (!logged_cap_) {
          log::Event(log::Level::kWarn, "listener.full",
                     "connections at max_connections_per_port: refusing new ones",
                     {{"listener", what_}, {"max_connections", max_connections_}});
          logged_cap_ = true;
        }
        close(fd);
        continue;
      }
      logged_cap_ = false;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      struct stat st;
      if (fstat(fd, &st) == 0) handed_.emplace_back(fd, static_cast<uint64_t>(st.st_ino));
      grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
      params.listener_fd = listen_fd_;
      params.fd = fd;
      acceptor_->HandleNewConnection(&params);  // gRPC owns fd from here on
    }
  }
}

absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, absl::string_view what,
                                          const std::string& address,
                                          std::shared_ptr<grpc::ServerCredentials> credentials,
                                          const ConnectionLimits& limits) {
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(limits.idle_timeout)));
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(limits.handshake_timeout)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  grpc::ResourceQuota quota(absl::StrCat("darvoza-", what));
  quota.Resize(static_cast<size_t>(limits.memory_bytes));
  builder.SetResourceQuota(quota);
  StartedServer started;
  const bool is_unix = absl::StartsWith(address, "unix:");
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor;
  // gRPC's own listeners (the unix: ones here) set SO_REUSEPORT unless told not to.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (is_unix) {
    builder.AddListeningPort(address, std::move(credentials), &started.port);
  } else {
    DARVOZA_ASSIGN_OR_RETURN(started.listener,
                             ConnectionListener::Listen(what, address, limits.max_connections));
    started.port = started.listener->port();
    started.address = started.listener->bound_address();
    acceptor = builder.experimental().AddExternalConnectionAcceptor(
        grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
        std::move(credentials));
  }
  started.server = builder.BuildAndStart();
  if (started.server == nullptr) {
    return CannotListen(what, address, kInUse);
  }
  if (is_unix) {
    started.port = 0;
    started.address = address;
  } else {
    started.listener->Start(std::move(acceptor));
  }
  return started;
}

}  // namespace darvoza
