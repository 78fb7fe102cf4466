#include "common/http_server.h"

#include <sys/stat.h>

#include <atomic>
#include <optional>
#include <thread>
#include <type_traits>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/files.h"
#include "common/host_port.h"
#include "common/tls.h"

namespace darvoza {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// What every connection of one server shares. Outlives the connections' replies.
struct ServerState {
  HttpServerOptions options;
  HttpHandler handler;
  HttpRefusal refusal;
  std::atomic<size_t> connections{0};

  absl::Mutex mu;
  size_t in_flight ABSL_GUARDED_BY(mu) = 0;  // handlers called and not yet replied
  bool stopped ABSL_GUARDED_BY(mu) = false;
  // The threads are gone: a reply now cannot be written.
  bool closed ABSL_GUARDED_BY(mu) = false;

  bool Idle() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return in_flight == 0; }
};

bool SafeHeaderText(absl::string_view text) {
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return true;
}

// A connected socket's remote address in gRPC's peer form, so that the REST and gRPC ports'
// log lines name a client the same way.
std::string PeerName(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return "";
  const net::ip::address address = remote.address();
  if (address.is_v4()) return absl::StrCat("ipv4:", address.to_string(), ":", remote.port());
  return absl::StrCat("ipv6:[", address.to_string(), "]:", remote.port());
}

// One connection, plaintext (PlainStream) or TLS (TlsStream). All of its handlers run on its
// strand (the socket's executor); the handler's reply is posted there, so nothing here needs a
// lock.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  // `context`: the TLS context the connection was accepted with (null for plaintext); the
  // session keeps it alive while the server may already serve a newer one.
  Session(tcp::socket socket, std::shared_ptr<ServerState> state,
          std::shared_ptr<net::ssl::context> context)
      : context_(std::move(context)), stream_(MakeStream(std::move(socket), context_.get())),
        state_(std::move(state)) {
    state_->connections.fetch_add(1);
  }
  ~Session() { state_->connections.fetch_sub(1); }

  void Run() {
    beast::error_code ignored;
    Tcp().socket().set_option(tcp::no_delay(true), ignored);
    peer_ = PeerName(Tcp().socket());
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::Start, this->shared_from_this()));
  }

 private:
  using std::enable_shared_from_this<Session<Stream>>::shared_from_this;

  static Stream MakeStream(tcp::socket socket, net::ssl::context* context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context);
    } else {
      return Stream(std::move(socket));
    }
  }

  const HttpServerOptions& options() const { return state_->options; }
  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void Start() {
    if constexpr (kTls) {
      Tcp().expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
      stream_.async_handshake(net::ssl::stream_base::server,
                              beast::bind_front_handler(&Session::OnHandshake,
                                                        shared_from_this()));
    } else {
      ReadHeader();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) {
      Close();  // not a TLS 1.3 client, or it gave up: nothing can be answered
      return;
    }
    if constexpr (kTls) peer_certificate_pem_ = PeerCertificatePem(stream_.native_handle());
    ReadHeader();
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    Tcp().expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, std::size_t) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    const auto& request = parser_->get();
    if (request.target().size() > options().max_target_bytes) {
      Refuse(absl::StrCat("the request target is longer than ", options().max_target_bytes,
                          " bytes"));
      return;
    }
    // Request smuggling: a body framed two ways, or framed in a way a peer may read
    // differently, is refused before any of it is read.
    const size_t transfer_encodings = request.count(http::field::transfer_encoding);
    const size_t content_lengths = request.count(http::field::content_length);
    if (transfer_encodings > 0 && content_lengths > 0) {
      Refuse("the request has both Content-Length and Transfer-Encoding");
      return;
    }
    if (transfer_encodings > 1 ||
        (transfer_encodings == 1 &&
         !absl::EqualsIgnoreCase(
             absl::StripAsciiWhitespace(absl::string_view(
                 request[http::field::transfer_encoding].data(),
                 request[http::field::transfer_encoding].size())),
             "chunked"))) {
      Refuse("the request has a Transfer-Encoding other than chunked");
      return;
    }
    if (content_lengths > 1) {
      Refuse("the request has more than one Content-Length");
      return;
    }
    auto expect = request[http::field::expect];
    if (absl::EqualsIgnoreCase(absl::string_view(expect.data(), expect.size()),
                               "100-continue") &&
        !parser_->is_done()) {
      continue_ = http::response<http::empty_body>(http::status::continue_, request.version());
      http::async_write(stream_, continue_,
                        [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                          if (write_ec) {
                            self->Close();
                            return;
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    Tcp().expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, shared_from_this()));
  }

  void OnBody(beast::error_code ec, std::size_t) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    http::request<http::string_body> request = parser_->release();
    parser_.reset();
    keep_alive_ = request.keep_alive();
    HttpRequest out;
    out.method = std::string(request.method_string());
    out.target = std::string(request.target());
    for (const auto& field : request) {
      out.headers.emplace_back(absl::AsciiStrToLower(absl::string_view(
                                   field.name_string().data(), field.name_string().size())),
                               std::string(field.value()));
    }
    out.body = std::move(request.body());
    out.tls = kTls;
    out.peer_certificate_pem = peer_certificate_pem_;
    out.peer = peer_;
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->stopped) return;
      ++state_->in_flight;
    }
    Tcp().expires_never();
    // Copies of the reply share `session`; the first call takes it, so the session is no
    // longer held from outside once the reply is posted (Shutdown waits for in_flight == 0).
    auto session = std::make_shared<std::shared_ptr<Session>>(shared_from_this());
    auto state = state_;
    auto once = std::make_shared<std::atomic<bool>>(false);
    state_->handler(std::move(out), [session, state, once](HttpResponse response) {
      if (once->exchange(true)) return;
      std::shared_ptr<Session> self = std::move(*session);
      absl::MutexLock lock(&state->mu);
      --state->in_flight;
      if (state->closed) {
        // A handler that outlived Shutdown's grace: its connection's io_context may be gone,
        // so the session is deliberately never destroyed.
        new std::shared_ptr<Session>(std::move(self));
        return;
      }
      net::post(self->stream_.get_executor(), [self, response = std::move(response)]() mutable {
        self->Write(std::move(response), /*close=*/false);
      });
      self.reset();
    });
  }

  void OnReadError(const beast::error_code& ec) {
    if (ec == http::error::header_limit) {
      Refuse(absl::StrCat("the request line and headers are longer than ",
                          options().max_header_bytes, " bytes"));
    } else if (ec == http::error::body_limit) {
      Refuse(absl::StrCat("the request body is longer than ", options().max_body_bytes,
                          " bytes"));
    } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      Refuse(absl::StrCat("malformed HTTP request: ", ec.message()));
    } else {
      Close();  // the peer went away or stayed silent
    }
  }

  // Answers with the server's refusal and closes: after a framing problem nothing further on
  // the connection can be trusted.
  void Refuse(absl::string_view why) {
    Write(state_->refusal(absl::InvalidArgumentError(why)), /*close=*/true);
  }

  void Write(HttpResponse response, bool close) {
    response_ = {};
    response_.version(11);
    response_.result(static_cast<unsigned>(response.status));
    for (const auto& [name, value] : response.headers) {
      if (name.empty() || !SafeHeaderText(name) || !SafeHeaderText(value)) {
        // Never emitted: a caller bug must not become response splitting.
        response_ = {};
        response_.version(11);
        response_.result(http::status::internal_server_error);
        close = true;
        break;
      }
      response_.insert(beast::string_view(name.data(), name.size()), value);
    }
    close_after_write_ = close || !keep_alive_;
    response_.keep_alive(!close_after_write_);
    response_.body() = std::move(response.body);
    response_.prepare_payload();
    Tcp().expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec) {
      Close();
      return;
    }
    if (close_after_write_) {
      Drain();
      return;
    }
    ReadHeader();
  }

  // Half-closes and reads what the client still sends, so that it sees the answer rather than
  // a reset of a connection with unread data.
  // Over TLS the same is TLS's own close (close_notify both ways).
  void Drain() {
    Tcp().expires_after(std::chrono::seconds(5));
    if constexpr (kTls) {
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) { self->Close(); });
      return;
    }
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->Drain();
                            });
  }

  void Close() {
    beast::error_code ignored;
    Tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Tcp().socket().close(ignored);
  }

  const std::shared_ptr<net::ssl::context> context_;  // before stream_, which uses it
  Stream stream_;
  const std::shared_ptr<ServerState> state_;
  std::string peer_certificate_pem_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::empty_body> continue_;
  http::response<http::string_body> response_;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  char drain_[16 << 10];
};

// What a file looked like when it was last read; a change means it must be read again.
struct FileVersion {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = -1;
  int64_t mtime_nanos = 0;
  bool operator==(const FileVersion& o) const {
    return device == o.device && inode == o.inode && size == o.size &&
           mtime_nanos == o.mtime_nanos;
  }
};

std::optional<FileVersion> VersionOf(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileVersion{st.st_dev, st.st_ino, st.st_size,
                     int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

// The TLS context of a port, rebuilt from its key and certificate files when they change.
// Called on the acceptor's strand only.
class TlsContextSource {
 public:
  explicit TlsContextSource(HttpServerTlsOptions options) : options_(std::move(options)) {}

  // Reads the files now. INVALID_ARGUMENT when they are unusable.
  absl::Status Load() {
    const std::optional<FileVersion> key = VersionOf(options_.key_path);
    const std::optional<FileVersion> cert = VersionOf(options_.cert_path);
    auto key_pem = ReadWholeFile(options_.key_path);
    if (!key_pem.ok()) return absl::InvalidArgumentError(key_pem.status().message());
    auto cert_pem = ReadWholeFile(options_.cert_path);
    if (!cert_pem.ok()) return absl::InvalidArgumentError(cert_pem.status().message());
    auto ctx = NewTls13ServerContext(*key_pem, *cert_pem, options_.request_client_certificate);
    if (!ctx.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(options_.key_path, ", ", options_.cert_path,
                                                     ": ", ctx.status().message()));
    }
    context_ = std::make_shared<net::ssl::context>(ctx->release());
    key_version_ = key;
    cert_version_ = cert;
    return absl::OkStatus();
  }

  // The context for a new connection: re-read first when either file changed. A file caught
  // half-written (or removed) keeps the previous context until a later connection finds the
  // pair usable again.
  std::shared_ptr<net::ssl::context> Current() {
    if (VersionOf(options_.key_path) != key_version_ ||
        VersionOf(options_.cert_path) != cert_version_) {
      (void)Load();
    }
    return context_;
  }

 private:
  const HttpServerTlsOptions options_;
  std::shared_ptr<net::ssl::context> context_;
  std::optional<FileVersion> key_version_;
  std::optional<FileVersion> cert_version_;
};

class HttpServerImpl final : public HttpServer {
 public:
  explicit HttpServerImpl(std::shared_ptr<ServerState> state)
      : state_(std::move(state)),
        ioc_(std::max(1, state_->options.threads)),
        acceptor_(net::make_strand(ioc_)),
        retry_(acceptor_.get_executor()) {}

  ~HttpServerImpl() override { Shutdown(absl::Seconds(5)); }

  absl::Status Bind(const std::string& listen) {
    if (state_->options.tls.has_value()) {
      tls_.emplace(*state_->options.tls);
      if (absl::Status loaded = tls_->Load(); !loaded.ok()) return loaded;
    }
    absl::StatusOr<HostPort> parsed = ParseHostPort(listen);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", listen,
                                                     " is not host:port: ",
                                                     parsed.status().message()));
    }
    std::string host = parsed->host;
    const int port = parsed->port;
    if (host == "localhost") host = "127.0.0.1";
    beast::error_code ec;
    const net::ip::address address = net::ip::make_address(host, ec);
    if (ec) {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", listen,
                                                     " has no numeric host"));
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, ": ", ec.message()));
    }
    port_ = acceptor_.local_endpoint().port();
    Accept();
    for (int i = 0; i < std::max(1, state_->options.threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  void Shutdown(absl::Duration grace) override {
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->stopped) return;
      state_->stopped = true;
      // Replies of handlers still running are written until the grace ends.
      state_->mu.AwaitWithTimeout(absl::Condition(state_.get(), &ServerState::Idle), grace);
      state_->closed = true;
    }
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      retry_.cancel();
    });
    ioc_.stop();
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  void Accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           beast::bind_front_handler(&HttpServerImpl::OnAccept, this));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors, for one: try again shortly rather than stop listening for good.
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor_.is_open()) Accept();
      });
      return;
    }
    if (state_->connections.load() >= state_->options.max_connections) {
      beast::error_code ignored;
      socket.close(ignored);
    } else if (tls_.has_value()) {
      std::make_shared<Session<TlsStream>>(std::move(socket), state_, tls_->Current())->Run();
    } else {
      std::make_shared<Session<PlainStream>>(std::move(socket), state_, nullptr)->Run();
    }
    Accept();
  }

  const std::shared_ptr<ServerState> state_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  std::optional<TlsContextSource> tls_;  // on the acceptor's strand after Bind
  int port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                              HttpServerOptions options,
                                                              HttpHandler handler,
                                                              HttpRefusal refusal) {
  auto state = std::make_shared<ServerState>();
  state->options = options;
  state->handler = std::move(handler);
  state->refusal = std::move(refusal);
  auto server = std::make_unique<HttpServerImpl>(std::move(state));
  if (absl::Status bound = server->Bind(listen); !bound.ok()) return bound;
  return server;
}

}  // namespace darvoza
