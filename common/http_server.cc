#include "common/http_server.h"

#include <atomic>
#include <optional>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace darvoza {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

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

// One connection. All of its handlers run on its strand (the socket's executor); the handler's
// reply is posted there, so nothing here needs a lock.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket)), state_(std::move(state)) {
    state_->connections.fetch_add(1);
  }
  ~Session() { state_->connections.fetch_sub(1); }

  void Run() {
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::ReadHeader, shared_from_this()));
  }

 private:
  const HttpServerOptions& options() const { return state_->options; }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
    parser_->body_limit(options().max_body_bytes);
    stream_.expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
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
    stream_.expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
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
    {
      absl::MutexLock lock(&state_->mu);
      if (state_->stopped) return;
      ++state_->in_flight;
    }
    stream_.expires_never();
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
    stream_.expires_after(absl::ToChronoMilliseconds(options().idle_timeout));
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
  void Drain() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(5));
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
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  const std::shared_ptr<ServerState> state_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::empty_body> continue_;
  http::response<http::string_body> response_;
  bool keep_alive_ = true;
  bool close_after_write_ = false;
  char drain_[16 << 10];
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
    const size_t colon = listen.rfind(':');
    int port = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
        port < 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", listen,
                                                     " is not host:port"));
    }
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
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
    } else {
      std::make_shared<Session>(std::move(socket), state_)->Run();
    }
    Accept();
  }

  const std::shared_ptr<ServerState> state_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
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
