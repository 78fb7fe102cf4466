// `darvoza registry ...` (administer the registry) and `darvoza conf ...` (check a global
// configuration offline).
//
// `registry init` works on the data directory directly; every other `registry` command talks
// to the running darvoza-registry over its admin Unix socket, with the admin token from the
// data directory (or --admin-socket / --admin-token-file).
#include <netdb.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/crypto/x509.h"
#include "common/faults.h"
#include "common/globalconf.h"
#include "common/grpc_status.h"
#include "common/host_port.h"
#include "common/identifiers.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client.h"
#include "common/files.h"
#include "registry/keys.h"
#include "registry/server.h"
#include "tools/cli/cli_util.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

struct AdminTarget {
  std::string data_dir;
  std::string socket;
  std::string token_file;
};

void AddTargetOptions(CLI::App* cmd, AdminTarget* target) {
  cmd->add_option("--data-dir", target->data_dir, "registry data directory (finds socket and token)");
  cmd->add_option("--admin-socket", target->socket, "admin Unix socket of the running registry");
  cmd->add_option("--admin-token-file", target->token_file, "admin token file (default <data-dir>/admin.token)");
}

int Fail(const std::string& message) {
  std::cerr << "error: " << message << "\n";
  return 1;
}

int Fail(const absl::Status& status) {
  return PrintFailure(status,
                      "is darvoza-registry running? Start it with "
                      "`darvoza-registry --config <data-dir>/registry.toml`.");
}

// A connected admin stub plus the token, or an error already printed.
struct Admin {
  std::unique_ptr<v1::RegistryAdmin::Stub> stub;
  std::string token;
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    registry::AddAdminToken(context.get(), token);
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return context;
  }
};

absl::StatusOr<Admin> Connect(const AdminTarget& target) {
  std::string socket = target.socket;
  if (socket.empty() && !target.data_dir.empty()) {
    auto listen = registry::ReadListenFile(target.data_dir);
    socket = listen.ok() ? listen->admin_address : target.data_dir + "/admin.sock";
  }
  if (socket.empty()) {
    return absl::InvalidArgumentError("say where the registry is: --data-dir DIR or --admin-socket PATH");
  }
  std::string token_file = target.token_file;
  if (token_file.empty()) {
    if (target.data_dir.empty()) {
      return absl::InvalidArgumentError("--admin-token-file is needed with --admin-socket alone");
    }
    token_file = registry::AdminTokenPath(target.data_dir);
  }
  auto token = registry::ReadAdminToken(token_file);
  if (!token.ok()) return token.status();
  Admin admin;
  admin.stub = v1::RegistryAdmin::NewStub(registry::MakeAdminChannel(socket));
  admin.token = *token;
  return admin;
}

// The anchor's addresses are dialled by every security server: one that does not even resolve
// here is most likely a placeholder copied from a guide. A warning, not a refusal: the registry's
// own machine may see another DNS than the security servers do.
void WarnIfUnresolvable(const std::string& address) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(address);
  if (!parsed.ok()) return;  // `init` refuses it with the reason
  const std::string& host = parsed->host;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc == 0) {
    freeaddrinfo(found);
    return;
  }
  std::cerr << "warning: registry address " << address << " does not resolve on this machine ("
            << gai_strerror(rc) << "); every security server must be able to reach it. Change it "
            << "with `darvoza registry anchor set-addresses --address HOST:PORT`.\n";
}

std::string TimeText(int64_t unix_nanos) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixNanos(unix_nanos), absl::UTCTimeZone());
}

// Runs one admin call: Connect, call, map the status, then `print` on success.
template <typename Response, typename CallFn, typename PrintFn>
int RunAdmin(const AdminTarget& target, CallFn call, PrintFn print) {
  auto admin = Connect(target);
  if (!admin.ok()) return Fail(admin.status());
  auto context = admin->Context();
  Response response;
  grpc::Status status = call(*admin->stub, context.get(), &response);
  absl::Status result = FromGrpcStatus(status, *context);
  if (!result.ok()) return Fail(result);
  return print(response);
}

std::string RequestLine(const v1::RequestRecord& r) {
  std::string what;
  if (r.has_registration()) {
    what = absl::StrCat(r.renewal() ? "renewal " : "server ", FormatSecurityServerId(r.registration().server()),
                        " at ", r.registration().address(), " (", r.registration().csrs_size(), " CSRs)");
  } else {
    what = absl::StrCat("hosting ", FormatSubsystemId(r.hosting().subsystem()), " on ",
                        FormatSecurityServerId(r.hosting().server()));
  }
  std::string line = absl::StrCat(r.id(), "  ", v1::RequestState_Name(r.state()), "  ", what, "  submitted ",
                                  TimeText(r.submitted_at_unix_nanos()));
  if (!r.decided_by().empty()) absl::StrAppend(&line, "  by ", r.decided_by());
  if (!r.reason().empty()) absl::StrAppend(&line, "  reason: ", r.reason());
  return line;
}

// What a server request asks for, one indented line per CSR: the kind, the member of a signing
// certificate and the SHA-256 of the CSR's public key (SubjectPublicKeyInfo DER), so that the
// administrator can compare it with the key the security server's operator reports; then why
// auto-approval left it waiting, if it did.
std::string RequestDetail(const v1::RequestRecord& r) {
  std::string out;
  if (!r.has_registration()) return out;
  for (const auto& c : r.registration().csrs()) {
    std::string kind = c.kind() == v1::CERT_KIND_AUTH      ? "auth"
                       : c.kind() == v1::CERT_KIND_SEAL    ? "seal"
                       : c.kind() == v1::CERT_KIND_SIGNING ? "signing"
                                                           : "unknown";
    if (c.kind() == v1::CERT_KIND_SIGNING) absl::StrAppend(&kind, " for ", FormatMemberId(c.member()));
    auto csr = crypto::CertificateRequest::Parse(c.csr());
    std::string key = csr.ok() ? absl::StrCat("sha256:", crypto::HexEncode(crypto::Sha256((*csr)->public_key().der())))
                               : "(unreadable CSR)";
    absl::StrAppend(&out, "    asks: ", kind, "  key ", key, "\n");
  }
  if (!r.held_for_review().empty()) absl::StrAppend(&out, "    held: ", r.held_for_review(), "\n");
  return out;
}

template <typename T, typename ParseFn>
bool ParseId(const std::string& text, ParseFn parse, T* out, int* exit_code) {
  auto id = parse(text);
  if (!id.ok()) {
    *exit_code = Fail(absl::StrCat("'", text, "': ", id.status().message()));
    return false;
  }
  *out = *id;
  return true;
}

}  // namespace

void AddRegistryCommands(CLI::App& app, int* exit_code) {
  CLI::App* reg = app.add_subcommand("registry", "administer the registry");
  reg->require_subcommand(1);

  // ---- init
  {
    auto* cmd = reg->add_subcommand("init", "create the root CA, keys, admin token and configuration anchor");
    struct Opts {
      std::string instance, data_dir, listen = "0.0.0.0:4400", ops_listen = "127.0.0.1:4402";
      std::vector<std::string> addresses;
      bool auto_approve = false;
    };
    auto opts = std::make_shared<Opts>();
    cmd->add_option("--instance", opts->instance, "instance id, e.g. UZ")->required();
    cmd->add_option("--data-dir", opts->data_dir, "new data directory")->required();
    cmd->add_option("--address", opts->addresses, "host:port security servers dial, written into the anchor (repeatable; default localhost:4400; change later with `registry anchor set-addresses`)");
    cmd->add_option("--public-listen", opts->listen, "where the public port listens (registry.toml; may differ from --address, e.g. 0.0.0.0:4400)");
    cmd->add_option("--ops-listen", opts->ops_listen, "health and metrics port (registry.toml; \"\" = off)")
        ->capture_default_str();
    cmd->add_flag("--auto-approve", opts->auto_approve, "approve every request (demos and tests only)");
    cmd->callback([opts, exit_code] {
      registry::InitOptions init;
      init.instance = opts->instance;
      init.data_dir = opts->data_dir;
      init.registry_addresses = opts->addresses;
      if (init.registry_addresses.empty()) init.registry_addresses = {"localhost:4400"};
      init.public_listen = opts->listen;
      init.ops_listen = opts->ops_listen;
      init.auto_approve = opts->auto_approve;
      auto anchor = registry::InitRegistry(init);
      if (!anchor.ok()) {
        *exit_code = Fail(anchor.status());
        return;
      }
      for (const auto& a : init.registry_addresses) WarnIfUnresolvable(a);
      std::cout << "initialised registry of instance " << anchor->instance() << " in " << opts->data_dir << "\n"
                << "  configuration anchor: " << registry::AnchorPath(opts->data_dir)
                << "  (install it on every security server)\n"
                << "  admin token:          " << registry::AdminTokenPath(opts->data_dir) << " (mode 0600)\n"
                << "  daemon config:        " << registry::ConfigPath(opts->data_dir) << "\n"
                << "start it with: darvoza-registry --config " << registry::ConfigPath(opts->data_dir) << "\n";
      if (opts->auto_approve) std::cout << "WARNING: auto_approve = true (demos and tests only)\n";
    });
  }

  // ---- member
  {
    auto* group = reg->add_subcommand("member", "members (legal bodies)");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto id = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    auto* add = group->add_subcommand("add", "add a member: INSTANCE/CLASS/CODE");
    add->add_option("id", *id)->required();
    add->add_option("--name", *name, "the member's name");
    AddTargetOptions(add, target.get());
    add->callback([=] {
      v1::AdminMemberRequest req;
      if (!ParseId(*id, ParseMemberId, req.mutable_id(), exit_code)) return;
      req.set_name(*name);
      *exit_code = RunAdmin<v1::AdminEmpty>(
          *target, [&](auto& s, auto* c, auto* r) { return s.AddMember(c, req, r); },
          [&](const auto&) { std::cout << "added member " << *id << "\n"; return 0; });
    });
    auto* remove = group->add_subcommand("remove", "remove a member");
    remove->add_option("id", *id)->required();
    AddTargetOptions(remove, target.get());
    remove->callback([=] {
      v1::AdminMemberRequest req;
      if (!ParseId(*id, ParseMemberId, req.mutable_id(), exit_code)) return;
      *exit_code = RunAdmin<v1::AdminEmpty>(
          *target, [&](auto& s, auto* c, auto* r) { return s.RemoveMember(c, req, r); },
          [&](const auto&) { std::cout << "removed member " << *id << "\n"; return 0; });
    });
    auto* list = group->add_subcommand("list", "list members and their subsystems");
    AddTargetOptions(list, target.get());
    list->callback([=] {
      *exit_code = RunAdmin<v1::MemberList>(
          *target, [&](auto& s, auto* c, auto* r) { return s.ListMembers(c, v1::AdminEmpty(), r); },
          [&](const v1::MemberList& l) {
            for (const auto& m : l.members()) {
              std::cout << FormatMemberId(m.id()) << (m.name().empty() ? "" : "  " + m.name()) << "\n";
              for (const auto& s : m.subsystems()) std::cout << "  " << FormatSubsystemId(s.id()) << "\n";
            }
            if (l.members_size() == 0) std::cout << "(no members)\n";
            return 0;
          });
    });
  }

  // ---- subsystem
  {
    auto* group = reg->add_subcommand("subsystem", "subsystems of members");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto id = std::make_shared<std::string>();
    for (bool adding : {true, false}) {
      auto* cmd = group->add_subcommand(adding ? "add" : "remove",
                                        adding ? "add a subsystem: INSTANCE/CLASS/CODE/SUBSYSTEM" : "remove a subsystem");
      cmd->add_option("id", *id)->required();
      AddTargetOptions(cmd, target.get());
      cmd->callback([=] {
        v1::AdminSubsystemRequest req;
        if (!ParseId(*id, ParseSubsystemId, req.mutable_id(), exit_code)) return;
        *exit_code = RunAdmin<v1::AdminEmpty>(
            *target,
            [&](auto& s, auto* c, auto* r) { return adding ? s.AddSubsystem(c, req, r) : s.RemoveSubsystem(c, req, r); },
            [&](const auto&) { std::cout << (adding ? "added" : "removed") << " subsystem " << *id << "\n"; return 0; });
      });
    }
  }

  // ---- request
  {
    auto* group = reg->add_subcommand("request", "registration and hosting requests");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto id = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    auto all = std::make_shared<bool>(false);
    auto* list = group->add_subcommand("list", "list pending requests (--all: decided ones too)");
    list->add_flag("--all", *all, "include approved and rejected requests");
    AddTargetOptions(list, target.get());
    list->callback([=] {
      v1::AdminListRequestsRequest req;
      req.set_all(*all);
      *exit_code = RunAdmin<v1::RequestList>(
          *target, [&](auto& s, auto* c, auto* r) { return s.ListRequests(c, req, r); },
          [&](const v1::RequestList& l) {
            for (const auto& r : l.requests()) std::cout << RequestLine(r) << "\n" << RequestDetail(r);
            if (l.requests_size() == 0) std::cout << "(no requests)\n";
            return 0;
          });
    });
    auto* approve = group->add_subcommand("approve", "approve a request (issues its certificates)");
    approve->add_option("id", *id)->required();
    AddTargetOptions(approve, target.get());
    approve->callback([=] {
      v1::AdminDecision req;
      req.set_request_id(*id);
      *exit_code = RunAdmin<v1::RequestRecord>(
          *target, [&](auto& s, auto* c, auto* r) { return s.ApproveRequest(c, req, r); },
          [&](const v1::RequestRecord& r) {
            std::cout << "approved: " << RequestLine(r) << "\n";
            for (const auto& c : r.certificates()) {
              auto cert = crypto::Certificate::FromDer(c.cert_der());
              if (cert.ok()) {
                std::cout << "  issued " << v1::CertKind_Name(c.kind()) << " certificate " << (*cert)->subject_common_name()
                          << " serial " << (*cert)->serial_hex() << "\n";
              }
            }
            return 0;
          });
    });
    auto* reject = group->add_subcommand("reject", "reject a request");
    reject->add_option("id", *id)->required();
    reject->add_option("--reason", *reason, "why (the security server sees it)");
    AddTargetOptions(reject, target.get());
    reject->callback([=] {
      v1::AdminDecision req;
      req.set_request_id(*id);
      req.set_reason(*reason);
      *exit_code = RunAdmin<v1::RequestRecord>(
          *target, [&](auto& s, auto* c, auto* r) { return s.RejectRequest(c, req, r); },
          [&](const v1::RequestRecord& r) { std::cout << "rejected: " << RequestLine(r) << "\n"; return 0; });
    });
  }

  // ---- server
  {
    auto* group = reg->add_subcommand("server", "registered security servers");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto id = std::make_shared<std::string>();
    auto* list = group->add_subcommand("list", "list security servers and their certificates");
    AddTargetOptions(list, target.get());
    list->callback([=] {
      *exit_code = RunAdmin<v1::ServerList>(
          *target, [&](auto& s, auto* c, auto* r) { return s.ListServers(c, v1::AdminEmpty(), r); },
          [&](const v1::ServerList& l) {
            for (const auto& s : l.servers()) {
              std::cout << FormatSecurityServerId(s.id()) << "  " << s.address() << (s.revoked() ? "  REVOKED" : "")
                        << "\n";
              for (const auto& c : s.certificates()) {
                auto cert = crypto::Certificate::FromDer(c.cert_der());
                if (!cert.ok()) continue;
                std::cout << "  " << v1::CertKind_Name(c.kind()) << "  " << (*cert)->subject_common_name() << "  serial "
                          << (*cert)->serial_hex() << "  until "
                          << absl::FormatTime("%Y-%m-%d", (*cert)->not_after(), absl::UTCTimeZone()) << "\n";
              }
              for (const auto& h : s.hosted_subsystems()) std::cout << "  hosts " << FormatSubsystemId(h) << "\n";
            }
            if (l.servers_size() == 0) std::cout << "(no security servers)\n";
            return 0;
          });
    });
    auto* revoke = group->add_subcommand("revoke", "revoke a security server and all its certificates");
    revoke->add_option("id", *id)->required();
    AddTargetOptions(revoke, target.get());
    revoke->callback([=] {
      v1::AdminServerRequest req;
      if (!ParseId(*id, ParseSecurityServerId, req.mutable_id(), exit_code)) return;
      *exit_code = RunAdmin<v1::AdminEmpty>(
          *target, [&](auto& s, auto* c, auto* r) { return s.RevokeServer(c, req, r); },
          [&](const auto&) {
            std::cout << "revoked " << *id << "; its certificates are in the next configuration's revocations\n";
            return 0;
          });
    });
  }

  // ---- group
  {
    auto* group = reg->add_subcommand("group", "global groups");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto id = std::make_shared<std::string>();
    auto member = std::make_shared<std::string>();
    auto description = std::make_shared<std::string>();
    struct Kind {
      const char* name;
      const char* help;
      bool needs_member;
    };
    for (Kind k : {Kind{"add", "add a global group: INSTANCE/CODE", false},
                   Kind{"remove", "remove a global group", false},
                   Kind{"add-member", "add a subsystem to a group", true},
                   Kind{"remove-member", "remove a subsystem from a group", true}}) {
      auto* cmd = group->add_subcommand(k.name, k.help);
      cmd->add_option("group", *id)->required();
      if (k.needs_member) cmd->add_option("subsystem", *member)->required();
      if (std::string(k.name) == "add") cmd->add_option("--description", *description, "what the group is for");
      AddTargetOptions(cmd, target.get());
      std::string name = k.name;
      cmd->callback([=] {
        v1::AdminGroupRequest req;
        if (!ParseId(*id, ParseGlobalGroupId, req.mutable_id(), exit_code)) return;
        if (!member->empty() && !ParseId(*member, ParseSubsystemId, req.mutable_member(), exit_code)) return;
        req.set_description(*description);
        *exit_code = RunAdmin<v1::AdminEmpty>(
            *target,
            [&](auto& s, auto* c, auto* r) {
              if (name == "add") return s.AddGroup(c, req, r);
              if (name == "remove") return s.RemoveGroup(c, req, r);
              if (name == "add-member") return s.AddGroupMember(c, req, r);
              return s.RemoveGroupMember(c, req, r);
            },
            [&](const auto&) { std::cout << "group " << name << ": done\n"; return 0; });
      });
    }
    auto* list = group->add_subcommand("list", "list global groups");
    AddTargetOptions(list, target.get());
    list->callback([=] {
      *exit_code = RunAdmin<v1::GroupList>(
          *target, [&](auto& s, auto* c, auto* r) { return s.ListGroups(c, v1::AdminEmpty(), r); },
          [&](const v1::GroupList& l) {
            for (const auto& g : l.groups()) {
              std::cout << FormatGlobalGroupId(g.id()) << "  " << g.description() << "\n";
              for (const auto& m : g.members()) std::cout << "  " << FormatSubsystemId(m) << "\n";
            }
            if (l.groups_size() == 0) std::cout << "(no groups)\n";
            return 0;
          });
    });
  }

  // ---- registry conf show|export
  {
    auto* group = reg->add_subcommand("conf", "the current global configuration");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto* show = group->add_subcommand("show", "print the current configuration, decoded");
    AddTargetOptions(show, target.get());
    show->callback([=] {
      *exit_code = RunAdmin<v1::SignedGlobalConf>(
          *target, [&](auto& s, auto* c, auto* r) { return s.GetConf(c, v1::AdminEmpty(), r); },
          [&](const v1::SignedGlobalConf& sc) {
            v1::GlobalConf conf;
            if (!conf.ParseFromString(sc.conf())) return Fail("the registry returned an unreadable configuration");
            std::cout << DescribeGlobalConf(conf);
            auto signer = crypto::Certificate::FromDer(sc.signer_cert_der());
            if (signer.ok()) std::cout << "signed by: " << (*signer)->subject_common_name() << " serial " << (*signer)->serial_hex() << "\n";
            return 0;
          });
    });
    auto file = std::make_shared<std::string>();
    auto* exp = group->add_subcommand("export", "write the signed configuration to FILE (for mirrors)");
    exp->add_option("file", *file)->required();
    AddTargetOptions(exp, target.get());
    exp->callback([=] {
      *exit_code = RunAdmin<v1::SignedGlobalConf>(
          *target, [&](auto& s, auto* c, auto* r) { return s.GetConf(c, v1::AdminEmpty(), r); },
          [&](const v1::SignedGlobalConf& sc) {
            absl::Status written = darvoza::WriteFileAtomically(*file, sc.SerializeAsString(), 0644);
            if (!written.ok()) return Fail(written);
            v1::GlobalConf conf;
            conf.ParseFromString(sc.conf());
            std::cout << "wrote configuration serial " << conf.serial() << " to " << *file << "\n";
            return 0;
          });
    });
  }

  // ---- key rotate-conf
  {
    auto* group = reg->add_subcommand("key", "registry keys");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto out = std::make_shared<std::string>();
    auto* rotate = group->add_subcommand("rotate-conf", "new configuration-signing key; new anchor lists both");
    rotate->add_option("--anchor-out", *out, "also write the new anchor here");
    AddTargetOptions(rotate, target.get());
    rotate->callback([=] {
      *exit_code = RunAdmin<v1::RotateConfKeyResponse>(
          *target, [&](auto& s, auto* c, auto* r) { return s.RotateConfKey(c, v1::AdminEmpty(), r); },
          [&](const v1::RotateConfKeyResponse& r) {
            if (!out->empty()) {
              absl::Status written = darvoza::WriteFileAtomically(*out, r.anchor(), 0644);
              if (!written.ok()) return Fail(written);
            }
            std::cout << "new configuration-signing key in use; the registry's anchor.bin now lists the old and "
                         "the new certificate"
                      << (out->empty() ? "" : " (copy written to " + *out + ")")
                      << ".\nSecurity servers with the old anchor keep accepting configurations (the new "
                         "certificate is issued by the same root CA); install the new anchor at leisure.\n";
            return 0;
          });
    });
  }

  // ---- anchor set-addresses
  {
    auto* group = reg->add_subcommand("anchor", "the configuration anchor security servers install");
    group->require_subcommand(1);
    auto target = std::make_shared<AdminTarget>();
    auto addresses = std::make_shared<std::vector<std::string>>();
    auto out = std::make_shared<std::string>();
    auto* set = group->add_subcommand(
        "set-addresses", "change the registry addresses the anchor gives security servers");
    set->add_option("--address", *addresses, "host:port security servers dial (repeatable)")
        ->required();
    set->add_option("--anchor-out", *out, "also write the new anchor here");
    AddTargetOptions(set, target.get());
    set->callback([=] {
      v1::AdminSetAnchorAddressesRequest req;
      for (const auto& a : *addresses) req.add_addresses(a);
      *exit_code = RunAdmin<v1::RotateConfKeyResponse>(
          *target, [&](auto& s, auto* c, auto* r) { return s.SetAnchorAddresses(c, req, r); },
          [&](const v1::RotateConfKeyResponse& r) {
            if (!out->empty()) {
              absl::Status written = darvoza::WriteFileAtomically(*out, r.anchor(), 0644);
              if (!written.ok()) return Fail(written);
            }
            for (const auto& a : *addresses) WarnIfUnresolvable(a);
            std::cout << "the anchor now gives registry address(es) " << absl::StrJoin(*addresses, ", ")
                      << (out->empty() ? "" : " (copy written to " + *out + ")")
                      << ".\nOn each security server, replace <data-dir>/anchor.bin with it and send "
                         "darvoza-ss SIGHUP (or set registry_addresses in its ss.toml).\n";
            return 0;
          });
    });
  }

  // ---- history
  {
    auto* cmd = reg->add_subcommand("history", "the hash-chained history of registry events");
    auto target = std::make_shared<AdminTarget>();
    auto from = std::make_shared<uint64_t>(1);
    auto limit = std::make_shared<uint32_t>(1000);
    cmd->add_option("--from", *from, "first sequence number");
    cmd->add_option("--limit", *limit, "at most this many entries");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] {
      v1::HistoryRequest req;
      req.set_from_seq(*from);
      req.set_limit(*limit);
      *exit_code = RunAdmin<v1::HistoryList>(
          *target, [&](auto& s, auto* c, auto* r) { return s.History(c, req, r); },
          [&](const v1::HistoryList& l) {
            for (const auto& e : l.entries()) {
              std::cout << e.seq() << "  " << TimeText(e.time_unix_nanos()) << "  " << e.actor() << "  " << e.action()
                        << "  " << e.subject() << (e.detail().empty() ? "" : "  (" + e.detail() + ")") << "  "
                        << crypto::HexEncode(e.hash()).substr(0, 16) << "\n";
            }
            std::cout << "hash chain: " << (l.chain_ok() ? "OK" : "BROKEN") << "\n";
            return l.chain_ok() ? 0 : 1;
          });
    });
  }

  // ---- darvoza conf verify
  {
    auto* conf = app.add_subcommand("conf", "global configuration files");
    conf->require_subcommand(1);
    auto anchor_path = std::make_shared<std::string>();
    auto file = std::make_shared<std::string>();
    auto last = std::make_shared<uint64_t>(0);
    auto* verify = conf->add_subcommand("verify", "check a signed configuration file against an anchor");
    verify->add_option("--anchor", *anchor_path, "configuration anchor file")->required();
    verify->add_option("--last-serial", *last, "refuse serials not newer than this");
    verify->add_option("file", *file)->required();
    verify->callback([=] {
      auto anchor = LoadConfigurationAnchor(*anchor_path);
      if (!anchor.ok()) {
        *exit_code = Fail(anchor.status());
        return;
      }
      auto bytes = darvoza::ReadWholeFile(*file);
      if (!bytes.ok()) {
        *exit_code = Fail(bytes.status());
        return;
      }
      std::optional<uint64_t> last_serial;
      if (*last > 0) last_serial = *last;
      auto result = VerifySignedGlobalConfBytes(*bytes, *anchor, Clock::Real()->Now(), last_serial);
      if (!result.ok()) {
        std::cout << "INVALID: " << result.status().message() << "\n";
        *exit_code = 1;
        return;
      }
      std::cout << "OK: instance " << result->instance() << ", serial " << result->serial() << ", expires "
                << TimeText(result->expires_at_unix_nanos()) << "\n";
    });
    auto* show = conf->add_subcommand("show", "print a configuration file, decoded (no checks)");
    show->add_option("file", *file)->required();
    show->callback([=] {
      auto bytes = darvoza::ReadWholeFile(*file);
      v1::SignedGlobalConf sc;
      v1::GlobalConf gc;
      if (!bytes.ok() || !sc.ParseFromString(*bytes) || !gc.ParseFromString(sc.conf())) {
        *exit_code = Fail(absl::StrCat(*file, " is not a signed global configuration"));
        return;
      }
      std::cout << DescribeGlobalConf(gc);
    });
  }
}

}  // namespace darvoza::cli
