#include "bench/bench_records.h"

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/crypto/hash.h"
#include "common/identifiers.h"

namespace darvoza::bench {

audit::AppendRequest ExchangeRecord(uint64_t i, size_t body_bytes) {
  static const v1::AuditRecordKind kKinds[] = {v1::REQUEST_OUT, v1::REQUEST_IN, v1::RESPONSE_OUT,
                                               v1::RESPONSE_IN};
  // Certificates are the same bytes in every record, as in a real log; their content is
  // irrelevant to the store, their size is not.
  static const std::string* chain_leaf = new std::string(crypto::RandomBytes(520));
  static const std::string* chain_ca = new std::string(crypto::RandomBytes(480));
  const uint64_t exchange = i / 4;
  audit::AppendRequest request;
  v1::AuditRecord& r = request.record;
  r.set_kind(kKinds[i % 4]);
  r.set_message_id(crypto::HexEncode(crypto::Sha256(absl::StrCat("message ", exchange))).substr(0, 32));
  auto client = ParseSubsystemId(absl::StrCat("UZ/GOV/7000000", exchange % 8, "/client"));
  auto service = ParseServiceId(
      absl::StrCat("UZ/GOV/7100000", exchange % 4, "/tax/GetTaxDebt", exchange % 16));
  DARVOZA_CHECK(client.ok() && service.ok()) << "bench identifiers do not parse";
  *r.mutable_client() = *client;
  *r.mutable_service() = *service;
  r.set_envelope(crypto::RandomBytes(420));
  r.set_signature(crypto::RandomBytes(80));
  r.add_signer_cert_chain(*chain_leaf);
  r.add_signer_cert_chain(*chain_ca);
  v1::SecurityServerId* peer = r.mutable_peer_server();
  *peer->mutable_owner() = client->member();
  peer->set_server_code("ss1");
  if (body_bytes > 0) request.body = crypto::RandomBytes(body_bytes);
  return request;
}

}  // namespace darvoza::bench
