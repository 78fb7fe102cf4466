// `darvoza ss ...`: set up and administer a security server (docs/operator.md).
//
// `ss init` and `ss register` work on the data directory directly (the daemon cannot run
// before it has certificates). Every other command talks to the running darvoza-ss over its
// admin Unix socket (from <data-dir>/listen.json) with the admin token <data-dir>/admin.token.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/files.h"
#include "common/globalconf.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "proto/security_server.grpc.pb.h"
#include "security_server/admin_service.h"
#include "security_server/config.h"
#include "security_server/node.h"
#include "security_server/provisioning.h"
#include "tools/cli/cli_util.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

int Fail(const absl::Status& status) {
  return PrintFailure(status,
                      "is darvoza-ss running? Start it with "
                      "`darvoza-ss --config <data-dir>/ss.toml`.");
}

// A connected admin stub plus the token.
struct Admin {
  std::unique_ptr<v1::SecurityServerAdmin::Stub> stub;
  std::string token;
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata(ss::kAdminTokenHeader, token);
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return context;
  }
};

absl::StatusOr<Admin> Connect(const std::string& data_dir) {
  if (data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  std::string socket;
  if (auto listen = ss::ReadListenFile(data_dir); listen.ok()) {
    socket = listen->admin;
  } else {
    auto config = ss::LoadSsConfig(ss::SsConfigPath(data_dir));
    socket = "unix:" + (config.ok() ? config->AdminSocketPath() : data_dir + "/admin.sock");
  }
  auto token = ss::ReadAdminToken(data_dir);
  if (!token.ok()) return token.status();
  Admin admin;
  admin.stub = v1::SecurityServerAdmin::NewStub(
      grpc::CreateChannel(socket, grpc::InsecureChannelCredentials()));
  admin.token = *token;
  return admin;
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> Call(const Admin& admin, Method method, const Request& request) {
  Response response;
  auto context = admin.Context();
  grpc::Status s = ((*admin.stub).*method)(context.get(), request, &response);
  if (!s.ok()) return FromGrpcStatus(s, *context);
  return response;
}

std::string Time(int64_t unix_nanos) {
  if (unix_nanos == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", FromUnixNanosField(unix_nanos),
                          absl::UTCTimeZone());
}

std::string Until(int64_t unix_nanos, absl::Time now) {
  absl::Duration left = FromUnixNanosField(unix_nanos) - now;
  if (left <= absl::ZeroDuration()) return "EXPIRED";
  if (left > absl::Hours(48)) return absl::StrCat("in ", absl::ToInt64Hours(left) / 24, " days");
  return absl::StrCat("in ", absl::FormatDuration(absl::Trunc(left, absl::Minutes(1))));
}

// The SHA-256 pin of an IS certificate file (PEM or DER), checked by LoadClientCertificate.
absl::StatusOr<std::string> PinOf(const std::string& cert_file) {
  auto cert = LoadClientCertificate(cert_file, Clock::Real()->Now());
  if (!cert.ok()) return cert.status();
  return (*cert)->sha256();
}

void PrintClient(const v1::LocalClient& c) {
  std::cout << FormatSubsystemId(c.id()) << "  auth="
            << (c.auth_mode() == v1::IS_AUTH_TLS ? "tls" : "plaintext");
  for (const auto& pin : c.cert_sha256()) std::cout << " pin=" << crypto::HexEncode(pin);
  std::cout << "  hosting=" << (c.hosting_state().empty() ? "-" : c.hosting_state());
  if (!c.hosting_request_id().empty()) std::cout << " (request " << c.hosting_request_id() << ")";
  std::cout << "\n";
}

void AddInit(CLI::App& ss, int* exit_code) {
  auto* cmd = ss.add_subcommand("init", "create keys, CSRs and ss.toml from a configuration anchor");
  auto opts = std::make_shared<ss::InitOptions>();
  opts->config.client_listen = "127.0.0.1:5580";
  cmd->add_option("--data-dir", opts->config.data_dir, "data directory (created, mode 0700)")
      ->required();
  cmd->add_option("--anchor", opts->anchor_file, "configuration anchor file from the registry")
      ->required();
  cmd->add_option("--server-id", opts->config.server_id, "e.g. UZ/GOV/70000001/ss1")->required();
  cmd->add_option("--member", opts->members,
                  "member whose signing key this SS holds (repeatable; default: the owner)");
  cmd->add_option("--ss-listen", opts->config.ss_listen, "SS-to-SS mTLS listen address")
      ->capture_default_str();
  cmd->add_option("--ss-address", opts->config.ss_address,
                  "host:port other SSs dial (default: --ss-listen)");
  cmd->add_option("--client-listen", opts->config.client_listen,
                  "plaintext client port (loopback only; \"\" = off)")
      ->capture_default_str();
  cmd->add_option("--client-tls-listen", opts->config.client_tls_listen, "client mTLS port")
      ->capture_default_str();
  cmd->add_option("--rest-listen", opts->config.rest_listen,
                  "plaintext REST (X-Road PR-REST) port, loopback only, e.g. 127.0.0.1:5581 "
                  "(default: off)");
  cmd->add_option("--rest-tls-listen", opts->config.rest_tls_listen,
                  "REST over TLS 1.3 with IS certificates pinned, e.g. 0.0.0.0:5582 "
                  "(default: off)");
  cmd->add_option("--ops-listen", opts->config.ops_listen, "health + metrics port")
      ->capture_default_str();
  cmd->add_option("--metrics-listen", opts->config.metrics_listen,
                  "HTTP GET /metrics (default: the ops host, next port; \"off\": none)");
  cmd->add_option("--admin-socket", opts->config.admin_socket,
                  "admin Unix socket (default <data-dir>/admin.sock; at most 107 bytes)");
  cmd->add_option("--registry", opts->config.registry_addresses,
                  "registry public address (repeatable; default: the anchor's)");
  cmd->callback([opts, exit_code] {
    absl::Status s = ss::InitSecurityServer(*opts);
    if (!s.ok()) {
      *exit_code = Fail(s);
      return;
    }
    std::cout << "initialised " << opts->config.server_id << " in " << opts->config.data_dir
              << "\nnext: darvoza ss register --data-dir " << opts->config.data_dir
              << " --wait 600\n";
  });
}

// `ss register` talks to the registry, not to darvoza-ss: the hint names the addresses it
// dialled, where they came from, and what to change for the error it got.
std::string RegistryHint(const ss::RegisterOptions& opts, const absl::Status& status) {
  auto config = ss::LoadSsConfig(ss::SsConfigPath(opts.data_dir));
  if (!config.ok()) return "";
  auto anchor = LoadConfigurationAnchor(config->AnchorPath());
  if (!anchor.ok()) return "";
  ss::RegistryAddressChoice choice =
      ss::ChooseRegistryAddresses(opts.registry_addresses, *config, *anchor);
  const std::string where =
      absl::StrCat(absl::StrJoin(choice.addresses, ", "), " (from ", choice.source, ")");
  const std::string fix =
      "pass --registry HOST:PORT, or set registry_addresses in ss.toml for the daemon too";
  if (absl::StrContains(status.message(), "DNS resolution failed") ||
      absl::StrContains(status.message(), "Domain name not found")) {
    return absl::StrCat("this machine cannot resolve the registry address ", where, "; ", fix);
  }
  return absl::StrCat("no registry answered at ", where,
                      ": is darvoza-registry running there and its public port open to this "
                      "machine? If it listens elsewhere, ",
                      fix, "; --wait SECONDS keeps retrying");
}

void AddRegister(CLI::App& ss, int* exit_code) {
  auto* cmd = ss.add_subcommand(
      "register", "send the CSRs to the registry and wait for (or look up) the decision");
  auto opts = std::make_shared<ss::RegisterOptions>();
  auto wait_seconds = std::make_shared<int>(0);
  cmd->add_option("--data-dir", opts->data_dir, "data directory made by `ss init`")->required();
  cmd->add_option("--registry", opts->registry_addresses, "registry public address (repeatable)");
  cmd->add_option("--wait", *wait_seconds, "seconds to wait for approval (0: look once)")
      ->capture_default_str();
  cmd->callback([opts, wait_seconds, exit_code] {
    opts->wait = absl::Seconds(*wait_seconds);
    opts->progress = [](const std::string& line) { std::cerr << line << std::endl; };
    auto record = ss::RegisterSecurityServer(*opts);
    if (!record.ok()) {
      *exit_code = PrintFailure(record.status(), RegistryHint(*opts, record.status()));
      return;
    }
    std::cout << "registration request " << record->id() << ": "
              << v1::RequestState_Name(record->state()) << "\n";
    if (record->state() == v1::APPROVED) {
      for (const auto& c : record->certificates()) {
        std::cout << "  " << v1::CertKind_Name(c.kind()) << " certificate valid until "
                  << Time(c.not_after_unix_nanos()) << "\n";
      }
      std::cout << "next: darvoza-ss --config " << ss::SsConfigPath(opts->data_dir) << "\n";
    } else {
      std::cout << "the registry administrator must approve it (`darvoza registry request "
                   "approve "
                << record->id() << "`); run this command again to fetch the certificates\n";
      *exit_code = 3;
    }
  });
}

void AddClientCommands(CLI::App& ss, int* exit_code) {
  auto* client = ss.add_subcommand("client", "subsystems hosted by this SS");
  client->require_subcommand(1);
  struct AddOpts {
    std::string data_dir, subsystem, auth = "plaintext", cert, pin;
    bool local = false;
  };
  auto add_opts = std::make_shared<AddOpts>();
  auto* add = client->add_subcommand("add", "request hosting of a subsystem (through the registry)");
  add->add_option("subsystem", add_opts->subsystem, "e.g. UZ/GOV/70000001/tax-registry")
      ->required();
  add->add_option("--data-dir", add_opts->data_dir, "SS data directory")->required();
  add->add_option("--auth", add_opts->auth, "IS authentication: plaintext | tls")
      ->check(CLI::IsMember({"plaintext", "tls"}))
      ->capture_default_str();
  add->add_option("--cert", add_opts->cert, "the IS certificate (PEM/DER) whose SHA-256 is pinned");
  add->add_option("--pin", add_opts->pin, "the IS certificate's SHA-256 (hex) instead of --cert");
  add->add_flag("--local", add_opts->local,
                "only change the local settings (hosting already approved)");
  add->callback([add_opts, exit_code] {
    v1::ClientAddRequest request;
    auto id = ParseSubsystemId(add_opts->subsystem);
    if (!id.ok()) {
      *exit_code = Fail(id.status());
      return;
    }
    *request.mutable_id() = *id;
    request.set_auth_mode(add_opts->auth == "tls" ? v1::IS_AUTH_TLS : v1::IS_AUTH_PLAINTEXT);
    request.set_skip_registry(add_opts->local);
    if (add_opts->auth != "tls" && (!add_opts->cert.empty() || !add_opts->pin.empty())) {
      *exit_code = Fail(absl::InvalidArgumentError(
          "--cert and --pin pin the certificate of an IS on the client mTLS port: add --auth tls"));
      return;
    }
    if (!add_opts->cert.empty()) {
      auto pin = PinOf(add_opts->cert);
      if (!pin.ok()) {
        *exit_code = Fail(pin.status());
        return;
      }
      request.add_cert_sha256(*pin);
    }
    if (!add_opts->pin.empty()) {
      auto pin = crypto::HexDecode(absl::AsciiStrToLower(add_opts->pin));
      if (!pin.ok() || pin->size() != 32) {
        *exit_code = Fail(absl::InvalidArgumentError("--pin must be 64 hex digits"));
        return;
      }
      request.add_cert_sha256(*pin);
    }
    auto admin = Connect(add_opts->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto client = Call<v1::ClientAddRequest, v1::LocalClient>(
        *admin, &v1::SecurityServerAdmin::Stub::AddClient, request);
    if (!client.ok()) {
      *exit_code = Fail(client.status());
      return;
    }
    PrintClient(*client);
  });
  auto list_dir = std::make_shared<std::string>();
  auto* list = client->add_subcommand("list", "hosted subsystems and their hosting state");
  list->add_option("--data-dir", *list_dir, "SS data directory")->required();
  list->callback([list_dir, exit_code] {
    auto admin = Connect(*list_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto clients = Call<v1::SsEmpty, v1::ClientList>(
        *admin, &v1::SecurityServerAdmin::Stub::ListClients, v1::SsEmpty());
    if (!clients.ok()) {
      *exit_code = Fail(clients.status());
      return;
    }
    for (const auto& c : clients->clients()) PrintClient(c);
  });
}

void AddServiceCommands(CLI::App& ss, int* exit_code) {
  auto* service = ss.add_subcommand("service", "services of hosted subsystems");
  service->require_subcommand(1);
  struct Opts {
    std::string data_dir, id, backend, description, kind, subsystem;
    std::string backend_ca, backend_cert, backend_key;
    int timeout_ms = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* add = service->add_subcommand("add", "map a service code to a backend");
  add->add_option("service", o->id, "e.g. UZ/GOV/70000001/tax-registry/pkg.TaxRegistry.GetDebt")
      ->required();
  add->add_option("--data-dir", o->data_dir, "SS data directory")->required();
  add->add_option("--backend", o->backend,
                  "grpc://host:port, or http(s)://host:port[/base] for a REST service")
      ->required();
  add->add_option("--description", o->description,
                  "protobuf descriptor set (protoc -o) or OpenAPI document");
  add->add_option("--timeout-ms", o->timeout_ms, "backend call timeout (0: default)");
  add->add_option("--backend-ca", o->backend_ca,
                  "https backend: PEM file of the CAs to trust (default: the system's)");
  add->add_option("--backend-cert", o->backend_cert,
                  "https backend: PEM client certificate (chain) for mutual TLS");
  add->add_option("--backend-key", o->backend_key,
                  "https backend: the client certificate's PEM private key (unencrypted)");
  add->callback([o, exit_code] {
    v1::LocalService request;
    auto id = ParseServiceId(o->id);
    if (!id.ok()) {
      *exit_code = Fail(id.status());
      return;
    }
    *request.mutable_id() = *id;
    request.set_backend(o->backend);
    request.set_timeout_millis(o->timeout_ms);
    if (!o->description.empty()) {
      auto bytes = darvoza::ReadWholeFile(o->description);
      if (!bytes.ok()) {
        *exit_code = Fail(bytes.status());
        return;
      }
      google::protobuf::FileDescriptorSet set;
      absl::string_view text = *bytes;
      if (set.ParseFromString(*bytes) && set.file_size() > 0) {
        request.set_description_kind("protobuf");
      } else if (absl::StrContains(text.substr(0, 4096), "openapi")) {
        request.set_description_kind("openapi");
      } else {
        *exit_code = Fail(absl::InvalidArgumentError(
            "--description is neither a protobuf descriptor set nor an OpenAPI document"));
        return;
      }
      request.set_description(*bytes);
    }
    // The files are read here, by the operator's user, and checked by the SS (LocalState).
    for (auto [path, field] : {std::pair{&o->backend_ca, request.mutable_backend_ca_pem()},
                               std::pair{&o->backend_cert, request.mutable_backend_cert_pem()},
                               std::pair{&o->backend_key, request.mutable_backend_key_pem()}}) {
      if (path->empty()) continue;
      auto pem = darvoza::ReadWholeFile(*path);
      if (!pem.ok()) {
        *exit_code = Fail(pem.status());
        return;
      }
      *field = *std::move(pem);
    }
    auto admin = Connect(o->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto r = Call<v1::LocalService, v1::SsEmpty>(*admin, &v1::SecurityServerAdmin::Stub::AddService,
                                                 request);
    if (!r.ok()) {
      *exit_code = Fail(r.status());
      return;
    }
    std::cout << "service " << o->id << " -> " << o->backend << "\n";
  });
  auto r = std::make_shared<Opts>();
  auto* remove = service->add_subcommand("remove", "remove a service (and its access rights)");
  remove->add_option("service", r->id, "service id")->required();
  remove->add_option("--data-dir", r->data_dir, "SS data directory")->required();
  remove->callback([r, exit_code] {
    v1::ServiceRef request;
    auto id = ParseServiceId(r->id);
    if (!id.ok()) {
      *exit_code = Fail(id.status());
      return;
    }
    *request.mutable_id() = *id;
    auto admin = Connect(r->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto result = Call<v1::ServiceRef, v1::SsEmpty>(
        *admin, &v1::SecurityServerAdmin::Stub::RemoveService, request);
    if (!result.ok()) {
      *exit_code = Fail(result.status());
      return;
    }
    std::cout << "removed " << r->id << "\n";
  });
  auto l = std::make_shared<Opts>();
  auto* list = service->add_subcommand("list", "services (of one subsystem, or all)");
  list->add_option("subsystem", l->subsystem, "subsystem id (optional)");
  list->add_option("--data-dir", l->data_dir, "SS data directory")->required();
  list->callback([l, exit_code] {
    v1::ServiceListRequest request;
    if (!l->subsystem.empty()) {
      auto id = ParseSubsystemId(l->subsystem);
      if (!id.ok()) {
        *exit_code = Fail(id.status());
        return;
      }
      *request.mutable_subsystem() = *id;
    }
    auto admin = Connect(l->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto services = Call<v1::ServiceListRequest, v1::ServiceList>(
        *admin, &v1::SecurityServerAdmin::Stub::ListServices, request);
    if (!services.ok()) {
      *exit_code = Fail(services.status());
      return;
    }
    for (const auto& s : services->services()) {
      std::cout << FormatServiceId(s.id()) << " -> " << s.backend();
      if (!s.description_kind().empty()) {
        std::cout << "  (" << s.description_kind() << " description, " << s.description().size()
                  << " bytes)";
      }
      if (!s.backend_ca_pem().empty()) std::cout << "  (own CAs)";
      if (!s.backend_cert_pem().empty()) std::cout << "  (client certificate)";
      std::cout << "\n";
    }
  });
}

void AddAclCommands(CLI::App& ss, int* exit_code) {
  auto* acl = ss.add_subcommand("acl", "access rights (default deny)");
  acl->require_subcommand(1);
  struct Opts {
    std::string data_dir, service, subject;
  };
  for (bool grant : {true, false}) {
    auto o = std::make_shared<Opts>();
    auto* cmd = acl->add_subcommand(grant ? "grant" : "revoke",
                                    grant ? "let a subject call a service" : "take a right away");
    cmd->add_option("service", o->service, "service id")->required();
    cmd->add_option("subject", o->subject,
                    "subsystem:ID | member:ID | globalgroup:INSTANCE/CODE | localgroup:NAME")
        ->required();
    cmd->add_option("--data-dir", o->data_dir, "SS data directory")->required();
    cmd->callback([o, grant, exit_code] {
      v1::AclRequest request;
      auto service = ParseServiceId(o->service);
      if (!service.ok()) {
        *exit_code = Fail(service.status());
        return;
      }
      auto subject = ParseAclSubject(o->subject);
      if (!subject.ok()) {
        *exit_code = Fail(subject.status());
        return;
      }
      *request.mutable_entry()->mutable_service() = *service;
      *request.mutable_entry()->mutable_subject() = *subject;
      auto admin = Connect(o->data_dir);
      if (!admin.ok()) {
        *exit_code = Fail(admin.status());
        return;
      }
      auto r = Call<v1::AclRequest, v1::SsEmpty>(
          *admin,
          grant ? &v1::SecurityServerAdmin::Stub::GrantAccess
                : &v1::SecurityServerAdmin::Stub::RevokeAccess,
          request);
      if (!r.ok()) {
        *exit_code = Fail(r.status());
        return;
      }
      std::cout << (grant ? "granted " : "revoked ") << o->subject << " on " << o->service
                << "\n";
    });
  }
  auto l = std::make_shared<Opts>();
  auto* list = acl->add_subcommand("list", "access rights (of one service, or all)");
  list->add_option("service", l->service, "service id (optional)");
  list->add_option("--data-dir", l->data_dir, "SS data directory")->required();
  list->callback([l, exit_code] {
    v1::AclListRequest request;
    if (!l->service.empty()) {
      auto id = ParseServiceId(l->service);
      if (!id.ok()) {
        *exit_code = Fail(id.status());
        return;
      }
      *request.mutable_service() = *id;
    }
    auto admin = Connect(l->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto list = Call<v1::AclListRequest, v1::AclList>(
        *admin, &v1::SecurityServerAdmin::Stub::ListAccess, request);
    if (!list.ok()) {
      *exit_code = Fail(list.status());
      return;
    }
    for (const auto& e : list->entries()) {
      std::cout << FormatServiceId(e.service()) << "  " << FormatAclSubject(e.subject()) << "\n";
    }
  });
}

void AddGroupCommands(CLI::App& ss, int* exit_code) {
  auto* group = ss.add_subcommand("group", "local groups");
  group->require_subcommand(1);
  struct Opts {
    std::string data_dir, name, member, description;
  };
  auto a = std::make_shared<Opts>();
  auto* add = group->add_subcommand("add", "create a local group");
  add->add_option("name", a->name, "group name")->required();
  add->add_option("--description", a->description, "what the group is for");
  add->add_option("--data-dir", a->data_dir, "SS data directory")->required();
  add->callback([a, exit_code] {
    v1::GroupRequest request;
    request.mutable_id()->set_group_code(a->name);
    request.set_description(a->description);
    auto admin = Connect(a->data_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto r = Call<v1::GroupRequest, v1::SsEmpty>(*admin, &v1::SecurityServerAdmin::Stub::AddGroup,
                                                 request);
    if (!r.ok()) {
      *exit_code = Fail(r.status());
      return;
    }
    std::cout << "local group " << a->name << " created\n";
  });
  for (bool adding : {true, false}) {
    auto o = std::make_shared<Opts>();
    auto* cmd = group->add_subcommand(adding ? "add-member" : "remove-member",
                                      adding ? "add a subsystem" : "remove a subsystem");
    cmd->add_option("name", o->name, "group name")->required();
    cmd->add_option("member", o->member, "subsystem id")->required();
    cmd->add_option("--data-dir", o->data_dir, "SS data directory")->required();
    cmd->callback([o, adding, exit_code] {
      v1::GroupRequest request;
      request.mutable_id()->set_group_code(o->name);
      auto member = ParseSubsystemId(o->member);
      if (!member.ok()) {
        *exit_code = Fail(member.status());
        return;
      }
      *request.mutable_member() = *member;
      auto admin = Connect(o->data_dir);
      if (!admin.ok()) {
        *exit_code = Fail(admin.status());
        return;
      }
      auto r = Call<v1::GroupRequest, v1::SsEmpty>(
          *admin,
          adding ? &v1::SecurityServerAdmin::Stub::AddGroupMember
                 : &v1::SecurityServerAdmin::Stub::RemoveGroupMember,
          request);
      if (!r.ok()) {
        *exit_code = Fail(r.status());
        return;
      }
      std::cout << (adding ? "added " : "removed ") << o->member << (adding ? " to " : " from ")
                << o->name << "\n";
    });
  }
  auto l = std::make_shared<std::string>();
  auto* list = group->add_subcommand("list", "local groups and their members");
  list->add_option("--data-dir", *l, "SS data directory")->required();
  list->callback([l, exit_code] {
    auto admin = Connect(*l);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto groups = Call<v1::SsEmpty, v1::LocalGroupList>(
        *admin, &v1::SecurityServerAdmin::Stub::ListGroups, v1::SsEmpty());
    if (!groups.ok()) {
      *exit_code = Fail(groups.status());
      return;
    }
    for (const auto& g : groups->groups()) {
      std::vector<std::string> members;
      for (const auto& m : g.members()) members.push_back(FormatSubsystemId(m));
      std::cout << g.id().group_code() << ": " << absl::StrJoin(members, ", ") << "\n";
    }
  });
}

// The audit lines of `ss status`. The witness's message came from the registry: escaped, as a
// terminal must not interpret it.
void PrintAuditStatus(const v1::AuditLogStatus& a, absl::Time now) {
  std::cout << "audit log  head " << a.head_seq() << ", last seal ";
  if (a.last_seal_seq() == 0) {
    std::cout << "none";
  } else {
    std::cout << a.last_seal_seq() << " at " << Time(a.last_sealed_at_unix_nanos()) << " ("
              << absl::FormatDuration(absl::Trunc(
                     now - FromUnixNanosField(a.last_sealed_at_unix_nanos()), absl::Seconds(1)))
              << " ago)";
  }
  std::cout << ", disk " << a.disk_bytes() << " bytes\n";
  std::cout << "  witness  ";
  if (a.witness_code() == 0) {
    std::cout << "OK";
  } else {
    std::cout << "REFUSED "
              << (a.witness_fault().empty() ? absl::StatusCodeToString(
                                                  static_cast<absl::StatusCode>(a.witness_code()))
                                            : absl::CHexEscape(a.witness_fault()))
              << ": " << absl::CHexEscape(a.witness_message());
  }
  std::cout << "; unwitnessed seals " << a.unwitnessed_seals() << ", unwitnessed for "
            << absl::FormatDuration(
                   absl::Trunc(absl::Nanoseconds(a.unwitnessed_age_nanos()), absl::Seconds(1)))
            << "\n";
  if (a.damaged()) std::cout << "  DAMAGED  " << absl::CHexEscape(a.damage()) << "\n";
}

void AddStatusCommands(CLI::App& ss, int* exit_code) {
  auto dir = std::make_shared<std::string>();
  auto* status = ss.add_subcommand(
      "status", "identity, certificates and expiry, configuration, registry reachability");
  status->add_option("--data-dir", *dir, "SS data directory")->required();
  status->callback([dir, exit_code] {
    auto admin = Connect(*dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    auto r = Call<v1::SsEmpty, v1::StatusReport>(*admin, &v1::SecurityServerAdmin::Stub::Status,
                                                 v1::SsEmpty());
    if (!r.ok()) {
      *exit_code = Fail(r.status());
      return;
    }
    absl::Time now = FromUnixNanosField(r->now_unix_nanos());
    std::cout << "security server  " << FormatSecurityServerId(r->server()) << " (instance "
              << r->instance() << ")" << (r->maintenance() ? "  MAINTENANCE" : "") << "\n";
    // The same verdict as the ops port's gRPC health, with its reasons.
    std::cout << "health  " << (r->serving() ? "SERVING" : "NOT_SERVING") << "\n";
    for (const auto& reason : r->not_serving_reasons()) std::cout << "  " << reason << "\n";
    std::cout << "certificates\n";
    for (const auto& c : r->certificates()) {
      std::string what = c.kind() == "signing"
                             ? absl::StrCat("signing ", FormatMemberId(c.member()))
                             : c.kind();
      std::cout << "  " << what << "  sha256 " << crypto::HexEncode(c.sha256()) << "\n"
                << "    valid until " << Time(c.not_after_unix_nanos()) << " ("
                << (c.not_after_unix_nanos() == 0 ? "not issued"
                                                  : Until(c.not_after_unix_nanos(), now))
                << ")" << (c.pending_renewal() ? "  renewal in progress" : "") << "\n";
    }
    std::cout << "global configuration  serial " << r->conf_serial() << ", expires "
              << Time(r->conf_expires_at_unix_nanos()) << " ("
              << (r->conf_serial() == 0 ? "none" : Until(r->conf_expires_at_unix_nanos(), now))
              << ")\n";
    std::cout << "  this SS " << (r->listed_in_conf() ? "is" : "is NOT")
              << " listed; hosted subsystems:";
    for (const auto& s : r->hosted_in_conf()) std::cout << " " << FormatSubsystemId(s);
    std::cout << "\nregistry  ";
    if (r->registry_reachable()) {
      std::cout << "reachable";
    } else {
      std::cout << "UNREACHABLE ("
                << (r->registry_error().empty() ? "no answer yet"
                                                : absl::CHexEscape(r->registry_error()))
                << ")";
    }
    std::cout << ", last contact " << Time(r->last_registry_contact_unix_nanos()) << "\n";
    if (!r->registry_choice().empty()) std::cout << "  dials " << r->registry_choice() << "\n";
    PrintAuditStatus(r->audit(), now);
    for (const auto& w : r->warnings()) std::cout << "WARNING: " << w << "\n";
  });
  auto m_dir = std::make_shared<std::string>();
  auto m_state = std::make_shared<std::string>();
  auto* maintenance = ss.add_subcommand(
      "maintenance", "turn maintenance mode on or off (the ops port's health says NOT_SERVING)");
  maintenance->add_option("state", *m_state, "on | off")
      ->required()
      ->check(CLI::IsMember({"on", "off"}));
  maintenance->add_option("--data-dir", *m_dir, "SS data directory")->required();
  maintenance->callback([m_dir, m_state, exit_code] {
    auto admin = Connect(*m_dir);
    if (!admin.ok()) {
      *exit_code = Fail(admin.status());
      return;
    }
    v1::MaintenanceRequest request;
    request.set_on(*m_state == "on");
    auto r = Call<v1::MaintenanceRequest, v1::SsEmpty>(
        *admin, &v1::SecurityServerAdmin::Stub::SetMaintenance, request);
    if (!r.ok()) {
      *exit_code = Fail(r.status());
      return;
    }
    std::cout << "maintenance " << *m_state << "\n";
  });
}

}  // namespace

void AddSecurityServerCommands(CLI::App& app, int* exit_code) {
  auto* ss = app.add_subcommand("ss", "set up and administer a security server");
  ss->require_subcommand(1);
  AddInit(*ss, exit_code);
  AddRegister(*ss, exit_code);
  AddClientCommands(*ss, exit_code);
  AddServiceCommands(*ss, exit_code);
  AddAclCommands(*ss, exit_code);
  AddGroupCommands(*ss, exit_code);
  AddStatusCommands(*ss, exit_code);
  AddSsTlsCommands(*ss, exit_code);
}

}  // namespace darvoza::cli
