// `darvoza audit ...`: the auditor's tools (docs/design.md §7, docs/auditor.md).
//
// Live logs are opened only as RocksDB secondary instances (AuditReader), so these commands
// are safe beside a running security server; `purge` is the exception: it writes, and needs
// the security server stopped (RocksDB's lock refuses a second writer).
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "audit/archive.h"
#include "audit/audit_log.h"
#include "common/clock.h"
#include "common/crypto/hash.h"
#include "common/crypto/keys.h"
#include "common/crypto/x509.h"
#include "common/files.h"
#include "common/globalconf.h"
#include "common/grpc_status.h"
#include "common/identifiers.h"
#include "common/seal.h"
#include "common/status_macros.h"
#include "proto/registry.grpc.pb.h"
#include "registry/client.h"
#include "tools/cli/commands.h"

namespace darvoza::cli {
namespace {

using audit::AuditQueries;
using audit::AuditReader;
using audit::StoredRecord;

// Prints `status` to stderr and sets the exit code: 1 for anything the user can fix.
void Fail(int* exit_code, absl::string_view what, const absl::Status& status) {
  std::cerr << "error: " << what << ": " << status.message() << "\n";
  *exit_code = 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return absl::ResourceExhaustedError(absl::StrCat("writing ", path, " failed"));
  return absl::OkStatus();
}

// A secondary instance of a live log, with its own scratch directory removed on exit.
class OpenedLog {
 public:
  static absl::StatusOr<std::unique_ptr<OpenedLog>> Open(const std::string& path) {
    DARVOZA_ASSIGN_OR_RETURN(bool is_directory, IsDirectory(path));
    if (!is_directory) {
      return absl::NotFoundError(absl::StrCat(path, " is not an audit log directory"));
    }
    char templ[] = "/tmp/darvoza-audit-XXXXXX";
    if (mkdtemp(templ) == nullptr) return absl::InternalError("mkdtemp failed");
    auto opened = std::unique_ptr<OpenedLog>(new OpenedLog(templ));
    auto reader = AuditReader::Open(path, opened->scratch_);
    if (!reader.ok()) return reader.status();
    opened->reader_ = *std::move(reader);
    return opened;
  }
  ~OpenedLog() {
    reader_.reset();
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
  AuditQueries& log() { return *reader_; }

 private:
  explicit OpenedLog(std::string scratch) : scratch_(std::move(scratch)) {}
  std::string scratch_;
  std::unique_ptr<AuditReader> reader_;
};

std::string Hex(absl::string_view bytes) { return crypto::HexEncode(bytes); }

std::string FormatTime(int64_t nanos) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixNanos(nanos), absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseTimeArg(const std::string& text) {
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  if (absl::ParseTime("%Y-%m-%d", text, &t, &err)) return t;
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a time; use RFC 3339 (2026-11-26T10:00:00Z) or a date"));
}

// "90d", "36h", "15m".
absl::StatusOr<absl::Duration> ParseRetention(std::string text) {
  int64_t days = 0;
  if (absl::EndsWith(text, "d")) {
    if (absl::SimpleAtoi(absl::string_view(text).substr(0, text.size() - 1), &days) &&
        days >= 0) {
      return absl::Hours(24 * days);
    }
  } else {
    absl::Duration d;
    if (absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a retention period; use e.g. 90d or 2160h"));
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

std::string RecordHashOf(const StoredRecord& r) {
  return crypto::Sha256(r.record.prev_hash() + r.bytes);
}

void PrintRecord(AuditQueries& log, const StoredRecord& r, bool json) {
  const v1::AuditRecord& rec = r.record;
  if (json) {
    std::cout << "{\"seq\":" << r.seq << ",\"record_hash\":\"" << Hex(RecordHashOf(r))
              << "\",\"record\":" << ToJson(rec) << "}\n";
    return;
  }
  std::cout << "record " << r.seq << "\n";
  std::cout << "  time         " << FormatTime(rec.time_unix_nanos()) << "\n";
  std::cout << "  kind         " << v1::AuditRecordKind_Name(rec.kind()) << "\n";
  if (!rec.message_id().empty()) std::cout << "  message id   " << rec.message_id() << "\n";
  if (rec.has_client() && ValidateSubsystemId(rec.client()).ok()) {
    std::cout << "  client       " << FormatSubsystemId(rec.client()) << "\n";
  }
  if (rec.has_service() && ValidateServiceId(rec.service()).ok()) {
    std::cout << "  service      " << FormatServiceId(rec.service()) << "\n";
  }
  if (rec.has_peer_server() && ValidateSecurityServerId(rec.peer_server()).ok()) {
    std::cout << "  peer server  " << FormatSecurityServerId(rec.peer_server()) << "\n";
  }
  if (rec.grpc_status_code() != 0 || !rec.fault_code().empty()) {
    std::cout << "  status       " << rec.grpc_status_code() << " " << rec.fault_code() << "\n";
  }
  if (!rec.detail().empty()) std::cout << "  detail       " << rec.detail() << "\n";
  if (rec.kind() == v1::ADMIN_ACTION) {
    std::cout << "  admin        " << rec.admin().actor() << " " << rec.admin().action() << " "
              << rec.admin().subject();
    if (!rec.admin().detail().empty()) std::cout << " (" << rec.admin().detail() << ")";
    std::cout << "\n";
  }
  if (!rec.envelope().empty()) {
    std::cout << "  envelope     " << rec.envelope().size() << " bytes, sha256 "
              << Hex(crypto::Sha256(rec.envelope())) << "\n";
  }
  for (const std::string& sha : rec.signer_cert_sha256()) {
    const bool stored = log.GetCertificate(sha).ok();
    std::cout << "  signer cert  sha256 " << Hex(sha) << (stored ? " (stored)" : " (MISSING)")
              << "\n";
  }
  if (!rec.body_sha256().empty()) {
    const bool stored = log.GetBody(rec.body_sha256()).ok();
    std::cout << "  body         " << rec.body_length() << " bytes, sha256 "
              << Hex(rec.body_sha256()) << (stored ? " (stored)" : " (hash only or purged)")
              << "\n";
  }
  std::cout << "  prev hash    " << Hex(rec.prev_hash()) << "\n";
  std::cout << "  record hash  " << Hex(RecordHashOf(r)) << "\n";
}

// The auditor's public key for encryption: a certificate, a PEM public key or DER SPKI.
absl::StatusOr<std::unique_ptr<crypto::PublicKey>> LoadPublicKey(const std::string& path) {
  DARVOZA_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  if (absl::StrContains(text, "-----BEGIN CERTIFICATE-----")) {
    DARVOZA_ASSIGN_OR_RETURN(auto cert, crypto::Certificate::FromPem(text));
    return crypto::PublicKey::FromDer(cert->public_key().der());
  }
  const std::string kBegin = "-----BEGIN PUBLIC KEY-----";
  const std::string kEnd = "-----END PUBLIC KEY-----";
  const size_t b = text.find(kBegin);
  if (b != std::string::npos) {
    const size_t e = text.find(kEnd, b);
    if (e == std::string::npos) return absl::InvalidArgumentError(path + ": truncated PEM");
    std::string body = text.substr(b + kBegin.size(), e - b - kBegin.size());
    absl::RemoveExtraAsciiWhitespace(&body);
    body = absl::StrReplaceAll(body, {{" ", ""}});
    std::string der;
    if (!absl::Base64Unescape(body, &der)) {
      return absl::InvalidArgumentError(path + ": bad base64 in PEM");
    }
    return crypto::PublicKey::FromDer(der);
  }
  auto cert = crypto::Certificate::FromDer(text);
  if (cert.ok()) return crypto::PublicKey::FromDer((*cert)->public_key().der());
  return crypto::PublicKey::FromDer(text);
}

std::string PublicKeyPem(absl::string_view der) {
  std::string b64;
  absl::Base64Escape(der, &b64);
  std::string out = "-----BEGIN PUBLIC KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += "-----END PUBLIC KEY-----\n";
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadFiles(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    DARVOZA_ASSIGN_OR_RETURN(std::string bytes, ReadFile(p));
    out.push_back(std::move(bytes));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<crypto::PrivateKey>> MaybeKey(const std::string& path) {
  if (path.empty()) return std::unique_ptr<crypto::PrivateKey>();
  return crypto::PrivateKey::LoadFromFile(path);
}

// Builds verification options from the anchor file and the global configurations.
absl::StatusOr<audit::VerifyOptions> OptionsFor(const std::string& anchor_path,
                                                std::vector<std::string> confs,
                                                const std::vector<std::string>& receipt_paths,
                                                bool allow_unwitnessed) {
  DARVOZA_ASSIGN_OR_RETURN(v1::ConfigurationAnchor anchor, audit::ReadAnchorFile(anchor_path));
  DARVOZA_ASSIGN_OR_RETURN(audit::VerifyOptions options,
                           audit::VerifyOptionsFromAnchor(anchor, confs));
  options.allow_unwitnessed_seals = allow_unwitnessed;
  for (const std::string& p : receipt_paths) {
    DARVOZA_ASSIGN_OR_RETURN(std::string bytes, ReadFile(p));
    v1::SignedWitnessReceipt receipt;
    if (!receipt.ParseFromString(bytes)) {
      return absl::InvalidArgumentError(p + " is not a darvoza.v1.SignedWitnessReceipt");
    }
    options.witness_heads.push_back(std::move(receipt));
  }
  return options;
}

}  // namespace

void AddAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit = app.add_subcommand(
      "audit", "Read, export, verify, prove and purge a security server's audit log");
  audit->require_subcommand(1);

  // --- show -----------------------------------------------------------------------------
  {
    struct Args {
      std::string db;
      uint64_t seq = 0;
      std::string message_id;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand("show", "Show one record by seq, or every record of a message id");
    cmd->add_option("--db", a->db, "Audit log directory (read as a RocksDB secondary)")->required();
    cmd->add_option("seq", a->seq, "Record sequence number");
    cmd->add_option("--message-id", a->message_id, "Show the records of this message id");
    cmd->add_flag("--json", a->json, "One JSON object per record");
    cmd->callback([a, exit_code] {
      if ((a->seq == 0) == a->message_id.empty()) {
        std::cerr << "error: give either SEQ or --message-id\n";
        *exit_code = 2;
        return;
      }
      auto opened = OpenedLog::Open(a->db);
      if (!opened.ok()) return Fail(exit_code, "cannot open the audit log", opened.status());
      AuditQueries& log = (*opened)->log();
      std::vector<StoredRecord> records;
      if (a->seq != 0) {
        auto r = log.GetRecord(a->seq);
        if (!r.ok()) return Fail(exit_code, "show", r.status());
        records.push_back(*std::move(r));
      } else {
        auto r = log.FindByMessageId(a->message_id);
        if (!r.ok()) return Fail(exit_code, "show", r.status());
        if (r->empty()) {
          return Fail(exit_code, "show",
                      absl::NotFoundError(absl::StrCat("no record has message id ", a->message_id)));
        }
        records = *std::move(r);
      }
      for (const StoredRecord& r : records) PrintRecord(log, r, a->json);
    });
  }

  // --- find -----------------------------------------------------------------------------
  {
    struct Args {
      std::string db, client, service, from, to;
      size_t limit = 1000;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "find", "Find records by client, service and time range (index lookups, no scans)");
    cmd->add_option("--db", a->db, "Audit log directory")->required();
    cmd->add_option("--client", a->client, "Client subsystem, e.g. UZ/GOV/70000001/tax-app");
    cmd->add_option("--service", a->service,
                    "Service, e.g. UZ/GOV/70000002/registry/getPerson[/v1]");
    cmd->add_option("--from", a->from, "From this time (RFC 3339 or YYYY-MM-DD), inclusive");
    cmd->add_option("--to", a->to, "Up to this time, exclusive");
    cmd->add_option("--limit", a->limit, "At most this many records (0 = all; default 1000)");
    cmd->add_flag("--json", a->json, "One JSON object per record");
    cmd->callback([a, exit_code] {
      audit::AuditQuery query;
      query.client = a->client;
      query.service = a->service;
      query.limit = a->limit;
      if (!a->from.empty()) {
        auto t = ParseTimeArg(a->from);
        if (!t.ok()) return Fail(exit_code, "--from", t.status());
        query.from = *t;
      }
      if (!a->to.empty()) {
        auto t = ParseTimeArg(a->to);
        if (!t.ok()) return Fail(exit_code, "--to", t.status());
        query.to = *t;
      }
      auto opened = OpenedLog::Open(a->db);
      if (!opened.ok()) return Fail(exit_code, "cannot open the audit log", opened.status());
      auto found = (*opened)->log().Find(query);
      if (!found.ok()) return Fail(exit_code, "find", found.status());
      if (!a->json) {
        for (const StoredRecord& r : *found) {
          const v1::AuditRecord& rec = r.record;
          std::cout << r.seq << "  " << FormatTime(rec.time_unix_nanos()) << "  "
                    << v1::AuditRecordKind_Name(rec.kind()) << "  " << rec.message_id() << "  "
                    << (rec.has_client() && ValidateSubsystemId(rec.client()).ok()
                            ? FormatSubsystemId(rec.client())
                            : "-")
                    << " -> "
                    << (rec.has_service() && ValidateServiceId(rec.service()).ok()
                            ? FormatServiceId(rec.service())
                            : "-")
                    << (rec.fault_code().empty() ? "" : "  " + rec.fault_code()) << "\n";
        }
        std::cout << found->size() << " record(s)\n";
      } else {
        for (const StoredRecord& r : *found) PrintRecord((*opened)->log(), r, true);
      }
    });
  }

  // --- export ---------------------------------------------------------------------------
  {
    struct Args {
      std::string db, out, encrypt_to, from, to;
      uint64_t from_seq = 0, to_seq = 0;
      bool no_bodies = false;
      std::vector<std::string> confs, certs;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "export", "Write a self-contained archive (records, bodies, seals, receipts, certificates)");
    cmd->add_option("--db", a->db, "Audit log directory")->required();
    cmd->add_option("--out", a->out, "Archive file to write")->required();
    cmd->add_option("--from-seq", a->from_seq, "First record (rounded down to its seal)");
    cmd->add_option("--to-seq", a->to_seq, "Last record (rounded up to its seal)");
    cmd->add_option("--from", a->from, "First record at or after this time (RFC 3339 or date)");
    cmd->add_option("--to", a->to, "Last record before this time");
    cmd->add_flag("--no-bodies", a->no_bodies, "Leave message bodies out (hashes stay)");
    cmd->add_option("--encrypt-to", a->encrypt_to,
                    "Encrypt to this auditor public key (PEM public key or certificate, P-256)");
    cmd->add_option("--global-conf", a->confs,
                    "Signed global configuration file(s) to include (pins the witness)");
    cmd->add_option("--cert", a->certs, "Extra certificate file(s) (DER) to include");
    cmd->callback([a, exit_code] {
      std::unique_ptr<crypto::PublicKey> recipient;
      if (!a->encrypt_to.empty()) {
        auto key = LoadPublicKey(a->encrypt_to);
        if (!key.ok()) return Fail(exit_code, "--encrypt-to", key.status());
        recipient = *std::move(key);
      }
      audit::ExportOptions options;
      options.first_seq = a->from_seq;
      options.last_seq = a->to_seq;
      options.include_bodies = !a->no_bodies;
      auto confs = ReadFiles(a->confs);
      if (!confs.ok()) return Fail(exit_code, "--global-conf", confs.status());
      options.global_configurations = *confs;
      auto certs = ReadFiles(a->certs);
      if (!certs.ok()) return Fail(exit_code, "--cert", certs.status());
      options.certificates_der = *certs;
      auto opened = OpenedLog::Open(a->db);
      if (!opened.ok()) return Fail(exit_code, "cannot open the audit log", opened.status());
      // Times become seqs through the time index (record times follow seqs closely).
      auto first_at = [&](const std::string& text) -> absl::StatusOr<uint64_t> {
        DARVOZA_ASSIGN_OR_RETURN(absl::Time t, ParseTimeArg(text));
        audit::AuditQuery q;
        q.from = t;
        q.limit = 1;
        DARVOZA_ASSIGN_OR_RETURN(auto found, (*opened)->log().Find(q));
        return found.empty() ? uint64_t{0} : found[0].seq;
      };
      if (!a->from.empty()) {
        auto seq = first_at(a->from);
        if (!seq.ok()) return Fail(exit_code, "--from", seq.status());
        if (*seq == 0) {
          return Fail(exit_code, "--from",
                      absl::NotFoundError(absl::StrCat("no record at or after ", a->from)));
        }
        options.first_seq = std::max(options.first_seq, *seq);
      }
      if (!a->to.empty()) {
        auto seq = first_at(a->to);
        if (!seq.ok()) return Fail(exit_code, "--to", seq.status());
        if (*seq == 1) {
          return Fail(exit_code, "--to",
                      absl::NotFoundError(absl::StrCat("no record before ", a->to)));
        }
        if (*seq != 0) {
          options.last_seq = options.last_seq == 0 ? *seq - 1 : std::min(options.last_seq, *seq - 1);
        }
      }
      auto archive = (*opened)->log().Export(options);
      if (!archive.ok()) return Fail(exit_code, "export", archive.status());
      absl::Status written = audit::WriteArchiveFile(a->out, *archive, recipient.get());
      if (!written.ok()) return Fail(exit_code, "export", written);
      std::cout << "exported records " << archive->first_seq() << ".." << archive->last_seq()
                << " (" << archive->records_size() << " records, " << archive->bodies_size()
                << " bodies, " << archive->seals_size() << " seals, "
                << archive->receipts_size() << " receipts) to " << a->out
                << (recipient ? ", encrypted" : "") << "\n";
    });
  }

  // --- verify ---------------------------------------------------------------------------
  {
    struct Args {
      std::string target, anchor, key;
      std::vector<std::string> confs, receipts;
      bool allow_unwitnessed = false;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "verify",
        "Check every hash, link, seal, receipt and certificate of a log or an archive");
    cmd->add_option("target", a->target, "Audit log directory or archive file")->required();
    cmd->add_option("--anchor", a->anchor,
                    "Configuration anchor file (serialized darvoza.v1.ConfigurationAnchor)")
        ->required();
    cmd->add_option("--key", a->key, "Auditor private key, for an encrypted archive");
    cmd->add_option("--global-conf", a->confs,
                    "Signed global configuration file(s) (an archive carries its own)");
    cmd->add_option("--witness-receipt", a->receipts,
                    "Receipt(s) of the latest head, fetched from the registry's witness");
    cmd->add_flag("--allow-unwitnessed", a->allow_unwitnessed,
                  "Accept seals the witness has not receipted yet (a live log's newest)");
    cmd->add_flag("--json", a->json, "Machine-readable verdict");
    cmd->callback([a, exit_code] {
      auto confs = ReadFiles(a->confs);
      if (!confs.ok()) return Fail(exit_code, "--global-conf", confs.status());
      v1::AuditArchive archive;
      auto is_directory = IsDirectory(a->target);
      if (!is_directory.ok()) return Fail(exit_code, "verify", is_directory.status());
      if (*is_directory) {
        auto opened = OpenedLog::Open(a->target);
        if (!opened.ok()) return Fail(exit_code, "cannot open the audit log", opened.status());
        auto exported = (*opened)->log().Export(audit::ExportOptions{});
        if (!exported.ok()) return Fail(exit_code, "reading the audit log", exported.status());
        archive = *std::move(exported);
      } else {
        auto key = MaybeKey(a->key);
        if (!key.ok()) return Fail(exit_code, "--key", key.status());
        auto read = audit::ReadArchiveFile(a->target, key->get());
        if (!read.ok()) return Fail(exit_code, "cannot read the archive", read.status());
        archive = *std::move(read);
      }
      for (const std::string& c : archive.global_configurations()) confs->push_back(c);
      auto options = OptionsFor(a->anchor, *confs, a->receipts, a->allow_unwitnessed);
      if (!options.ok()) return Fail(exit_code, "trust", options.status());
      audit::VerifyReport report = audit::VerifyArchive(archive, *options);
      std::cout << (a->json ? report.ToJson() : report.ToText());
      if (!report.ok) *exit_code = 1;
    });
  }

  // --- prove / check-proof --------------------------------------------------------------
  {
    struct Args {
      std::string db, message_id, out;
      std::vector<std::string> confs;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "prove", "Write inclusion proofs of a message's records, checkable with the anchor alone");
    cmd->add_option("--db", a->db, "Audit log directory")->required();
    cmd->add_option("--message-id", a->message_id, "Message id")->required();
    cmd->add_option("--out", a->out, "Proof file to write")->required();
    cmd->add_option("--global-conf", a->confs,
                    "Signed global configuration file(s) to include (pins the witness)");
    cmd->callback([a, exit_code] {
      auto confs = ReadFiles(a->confs);
      if (!confs.ok()) return Fail(exit_code, "--global-conf", confs.status());
      auto opened = OpenedLog::Open(a->db);
      if (!opened.ok()) return Fail(exit_code, "cannot open the audit log", opened.status());
      auto records = (*opened)->log().FindByMessageId(a->message_id);
      if (!records.ok()) return Fail(exit_code, "prove", records.status());
      if (records->empty()) {
        return Fail(exit_code, "prove",
                    absl::NotFoundError(absl::StrCat("no record has message id ", a->message_id)));
      }
      v1::AuditInclusionProofs proofs;
      for (const std::string& c : *confs) proofs.add_global_configurations(c);
      for (const StoredRecord& r : *records) {
        auto proof = (*opened)->log().Prove(r.seq);
        if (!proof.ok()) return Fail(exit_code, absl::StrCat("record ", r.seq), proof.status());
        *proofs.add_proofs() = *std::move(proof);
        std::cout << "record " << r.seq << ": proven in seal ending at "
                  << "seq " << [&] {
                       v1::Seal s;
                       s.ParseFromString(proofs.proofs().rbegin()->seal().seal());
                       return s.last_seq();
                     }()
                  << (proofs.proofs().rbegin()->has_receipt() ? ", witnessed" : ", NOT witnessed yet")
                  << "\n";
      }
      absl::Status written = WriteFile(a->out, proofs.SerializeAsString());
      if (!written.ok()) return Fail(exit_code, "prove", written);
      std::cout << "wrote " << proofs.proofs_size() << " proof(s) to " << a->out << "\n";
    });
  }
  {
    struct Args {
      std::string proof, anchor;
      bool allow_unwitnessed = false;
      bool json = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "check-proof", "Check an inclusion proof file with only the configuration anchor");
    cmd->add_option("proof", a->proof, "Proof file written by `darvoza audit prove`")->required();
    cmd->add_option("--anchor", a->anchor, "Configuration anchor file")->required();
    cmd->add_flag("--allow-unwitnessed", a->allow_unwitnessed,
                  "Accept a seal the witness has not receipted yet");
    cmd->add_flag("--json", a->json, "Machine-readable verdict");
    cmd->callback([a, exit_code] {
      auto bytes = ReadFile(a->proof);
      if (!bytes.ok()) return Fail(exit_code, "check-proof", bytes.status());
      v1::AuditInclusionProofs proofs;
      if (!proofs.ParseFromString(*bytes) || proofs.proofs_size() == 0) {
        return Fail(exit_code, "check-proof",
                    absl::InvalidArgumentError(a->proof + " is not a darvoza audit proof file"));
      }
      std::vector<std::string> confs(proofs.global_configurations().begin(),
                                     proofs.global_configurations().end());
      auto options = OptionsFor(a->anchor, confs, {}, a->allow_unwitnessed);
      if (!options.ok()) return Fail(exit_code, "trust", options.status());
      bool all_ok = true;
      for (const v1::AuditInclusionProof& proof : proofs.proofs()) {
        auto record = audit::VerifyInclusionProof(proof, *options);
        v1::AuditRecord shown;
        shown.ParseFromString(proof.record());
        if (a->json) {
          std::cout << "{\"seq\":" << shown.seq() << ",\"ok\":" << (record.ok() ? "true" : "false");
          if (!record.ok()) {
            std::cout << ",\"reason\":\"" << absl::CEscape(record.status().message()) << "\"";
          }
          std::cout << ",\"message_id\":\"" << absl::CEscape(shown.message_id()) << "\"}\n";
        } else if (record.ok()) {
          std::cout << "OK: record " << record->seq() << " (" << v1::AuditRecordKind_Name(record->kind())
                    << ", message id " << record->message_id() << ", "
                    << FormatTime(record->time_unix_nanos()) << ") is in a signed"
                    << (proof.has_receipt() ? ", witnessed" : "") << " seal\n";
        } else {
          std::cout << "FAILED: record " << shown.seq() << ": " << record.status().message() << "\n";
        }
        all_ok = all_ok && record.ok();
      }
      if (!all_ok) *exit_code = 1;
    });
  }

  // --- purge ----------------------------------------------------------------------------
  {
    struct Args {
      std::string db, archive, anchor, key, older_than;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "purge",
        "Remove archived records and bodies older than a retention period (SS must be stopped)");
    cmd->add_option("--db", a->db, "Audit log directory")->required();
    cmd->add_option("--archive", a->archive, "The archive that holds the records to purge")
        ->required();
    cmd->add_option("--anchor", a->anchor, "Configuration anchor, to verify the archive first")
        ->required();
    cmd->add_option("--key", a->key, "Auditor private key, when the archive is encrypted");
    cmd->add_option("--older-than", a->older_than, "Retention period, e.g. 90d or 2160h")
        ->required();
    cmd->callback([a, exit_code] {
      auto retention = ParseRetention(a->older_than);
      if (!retention.ok()) return Fail(exit_code, "--older-than", retention.status());
      auto key = MaybeKey(a->key);
      if (!key.ok()) return Fail(exit_code, "--key", key.status());
      auto archive = audit::ReadArchiveFile(a->archive, key->get());
      if (!archive.ok()) return Fail(exit_code, "cannot read the archive", archive.status());
      std::vector<std::string> confs(archive->global_configurations().begin(),
                                     archive->global_configurations().end());
      auto options = OptionsFor(a->anchor, confs, {}, false);
      if (!options.ok()) return Fail(exit_code, "trust", options.status());
      audit::VerifyReport report = audit::VerifyArchive(*archive, *options);
      if (!report.ok) {
        std::cerr << "error: the archive does not verify, nothing purged: " << report.ToText();
        *exit_code = 1;
        return;
      }
      audit::AuditLogOptions log_options;
      log_options.path = a->db;
      auto is_directory = IsDirectory(a->db);
      if (!is_directory.ok()) return Fail(exit_code, "purge", is_directory.status());
      if (!*is_directory) {
        return Fail(exit_code, "purge",
                    absl::NotFoundError(a->db + " is not an audit log directory"));
      }
      auto log = audit::AuditLog::Open(log_options);
      if (!log.ok()) return Fail(exit_code, "cannot open the audit log for writing", log.status());
      // The library refuses an archive that does not hold every record and body that would go.
      auto purged = (*log)->Purge(Clock::Real()->Now() - *retention, *archive);
      if (!purged.ok()) return Fail(exit_code, "purge", purged.status());
      if (*purged == 0) {
        std::cout << "nothing to purge: no witnessed seal within the archive is older than "
                  << a->older_than << "\n";
      } else {
        std::cout << "purged records through seq " << *purged
                  << "; the chain continues from the purge marker\n";
      }
    });
  }

  // --- witness-head ---------------------------------------------------------------------
  {
    struct Args {
      std::string server, anchor, out, conf_out;
      std::vector<std::string> registries;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "witness-head",
        "Fetch from the registry the newest witness receipt of a security server, check it "
        "with the anchor, and write it for verify --witness-receipt");
    cmd->add_option("--server", a->server, "Security server id, e.g. UZ/GOV/70000001/ss1")
        ->required();
    cmd->add_option("--anchor", a->anchor, "Configuration anchor (anchor.bin)")->required();
    cmd->add_option("--registry", a->registries,
                    "Registry public address host:port (repeatable; default: the anchor's)");
    cmd->add_option("--out", a->out, "Where to write the receipt")->required();
    cmd->add_option("--global-conf-out", a->conf_out,
                    "Also write the registry's current signed global configuration (checked "
                    "with the anchor): its revocations, for verify --global-conf");
    cmd->callback([a, exit_code] {
      auto server = ParseSecurityServerId(a->server);
      if (!server.ok()) return Fail(exit_code, "--server", server.status());
      auto anchor = audit::ReadAnchorFile(a->anchor);
      if (!anchor.ok()) return Fail(exit_code, "--anchor", anchor.status());
      std::vector<std::string> addresses = a->registries;
      if (addresses.empty()) {
        addresses.assign(anchor->registry_addresses().begin(), anchor->registry_addresses().end());
      }
      if (addresses.empty()) {
        return Fail(exit_code, "--registry",
                    absl::InvalidArgumentError("the anchor names no registry: give --registry"));
      }
      absl::Status last = absl::UnavailableError("no registry answered");
      auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(10); };
      for (const std::string& address : addresses) {
        auto channel = registry::MakeRegistryChannel(*anchor, address);
        // The current configuration first: it pins the witness certificate the receipt must be
        // signed with, and lists the revocations made since the operator's export. Both are
        // checked against the anchor alone: trust nothing the network said.
        grpc::ClientContext conf_context;
        conf_context.set_deadline(deadline());
        v1::SignedGlobalConf conf;
        grpc::Status got = v1::GlobalConfService::NewStub(channel)->Get(
            &conf_context, v1::GetConfRequest(), &conf);
        v1::SignedWitnessReceipt receipt;
        grpc::ClientContext context;
        if (got.ok()) {
          context.set_deadline(deadline());
          got = v1::Witness::NewStub(channel)->GetHead(&context, *server, &receipt);
          if (!got.ok()) last = FromGrpcStatus(got, context);
        } else {
          last = FromGrpcStatus(got, conf_context);
        }
        if (!got.ok()) {
          if (last.code() == absl::StatusCode::kUnavailable ||
              last.code() == absl::StatusCode::kDeadlineExceeded) {
            continue;  // the next registry address
          }
          return Fail(exit_code, absl::StrCat("registry ", address), last);
        }
        auto checked_conf = VerifySignedGlobalConf(conf, *anchor, Clock::Real()->Now());
        if (!checked_conf.ok()) {
          return Fail(exit_code, "the registry's configuration", checked_conf.status());
        }
        auto options = audit::VerifyOptionsFromAnchor(*anchor, {conf.SerializeAsString()});
        if (!options.ok()) return Fail(exit_code, "--anchor", options.status());
        auto checked = VerifySignedWitnessReceipt(receipt, options->trust);
        if (!checked.ok()) return Fail(exit_code, "the registry's receipt", checked.status());
        if (!SameSecurityServer(checked->server(), *server)) {
          return Fail(exit_code, "the registry's receipt",
                      absl::UnauthenticatedError("it names another security server"));
        }
        absl::Status written = WriteFile(a->out, receipt.SerializeAsString());
        if (!written.ok()) return Fail(exit_code, "--out", written);
        std::cout << "witness head of " << a->server << ": record " << checked->seq()
                  << ", witnessed "
                  << absl::FormatTime(absl::RFC3339_full,
                                      absl::FromUnixNanos(checked->witnessed_at_unix_nanos()),
                                      absl::UTCTimeZone())
                  << "; written to " << a->out << "\n";
        if (!a->conf_out.empty()) {
          absl::Status conf_written = WriteFile(a->conf_out, conf.SerializeAsString());
          if (!conf_written.ok()) return Fail(exit_code, "--global-conf-out", conf_written);
          std::cout << "global configuration serial " << checked_conf->serial() << " ("
                    << checked_conf->revoked_size() << " revoked certificates); written to "
                    << a->conf_out << "\n";
        }
        return;
      }
      return Fail(exit_code, "no registry answered", last);
    });
  }

  // --- auditor-key ----------------------------------------------------------------------
  {
    struct Args {
      std::string out, pub;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = audit->add_subcommand(
        "auditor-key", "Create an auditor's P-256 key pair for encrypted archives");
    cmd->add_option("--out", a->out, "Private key file to create (PKCS#8 PEM, mode 0600)")
        ->required();
    cmd->add_option("--public", a->pub, "Public key file to create (PEM), for export --encrypt-to")
        ->required();
    cmd->callback([a, exit_code] {
      auto key = crypto::PrivateKey::Generate(crypto::KeyAlgorithm::kEcdsaP256);
      if (!key.ok()) return Fail(exit_code, "auditor-key", key.status());
      absl::Status saved = (*key)->SaveToFile(a->out);
      if (!saved.ok()) return Fail(exit_code, "auditor-key", saved);
      saved = WriteFile(a->pub, PublicKeyPem((*key)->PublicKeyDer()));
      if (!saved.ok()) return Fail(exit_code, "auditor-key", saved);
      std::cout << "wrote " << a->out << " and " << a->pub << "\n";
    });
  }
}

}  // namespace darvoza::cli
