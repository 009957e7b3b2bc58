#include "audit/audit_verify.h"

#include <map>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "base/status.h"

namespace affinity {
namespace {

// One verification's state.
struct Check {
  Check(const Store& s, const AuditVerifyOptions& o, AuditVerifyReport& report) : store(s), options(o), r(report) {}
  const Store& store;
  const AuditVerifyOptions& options;
  AuditVerifyReport& r;
  int64_t cutoff = 0;       // records written before it have expired (0: none expire)
  int64_t chain_start = 0;  // the write time of entry 1 (0: no chain yet)
  std::map<uint64_t, ChainCheckpoint> checkpoints;
  std::unordered_map<std::string, uint64_t> last_record;  // request id: the sequence of its last record entry
  std::unordered_map<std::string, std::vector<std::pair<ChainHash, uint64_t>>> redactions;  // id: (hash, sequence)

  void Fail(std::string why) {
    if (r.failure.empty()) r.failure = std::move(why);
  }
};

std::string Entry(uint64_t seq, const std::string& request_id) {
  return absl::StrCat("sequence ", seq, " (request ", request_id, ")");
}

absl::Status LoadCheckpoints(Check& c) {
  return c.store.ScanAuditChain(kCheckpointPrefix, [&](std::string_view key, std::string_view value) {
    uint64_t seq = 0;
    ChainCheckpoint cp;
    if (!SequenceOfKey(key, kCheckpointPrefix[0], &seq)) return false;
    if (!DecodeCheckpoint(value, &cp) || cp.sequence != seq) {
      c.Fail(absl::StrCat("the checkpoint stored at sequence ", seq, " is damaged (altered)"));
      return false;
    }
    c.r.checkpoints++;
    if (!cp.signature.empty()) {
      c.r.signed_checkpoints++;
      const CheckpointVerifier* key = c.options.key;
      if (key && cp.key_id != key->key_id()) {
        c.r.other_key_signatures++;
      } else if (key && !key->Verify(CheckpointMessage(cp.sequence, cp.head), cp.signature)) {
        c.Fail(absl::StrCat("the checkpoint at sequence ", seq, " does not verify with key ", key->key_id(),
                            ": it was altered or forged"));
        return false;
      } else if (key) {
        c.r.verified_signatures++;
      }
    }
    c.r.last_checkpoint = seq;
    c.r.last_checkpoint_signed = !cp.signature.empty() && c.options.key && cp.key_id == c.options.key->key_id();
    c.checkpoints.emplace(seq, std::move(cp));
    return true;
  });
}

// The first pass: which entry is each request id's last record, and what was redacted.
absl::Status IndexEntries(Check& c) {
  AFF_RETURN_IF_ERROR(c.store.ScanAuditChain(kChainStartKey, [&](std::string_view key, std::string_view value) {
    if (key == kChainStartKey) c.chain_start = std::atoll(std::string(value).c_str());
    return false;
  }));
  return c.store.ScanAuditChain(kChainEntryPrefix, [&](std::string_view key, std::string_view value) {
    uint64_t seq = 0;
    ChainEntry e;
    if (!SequenceOfKey(key, kChainEntryPrefix[0], &seq)) return false;
    if (!DecodeChainEntry(value, &e)) return true;  // named by the second pass
    if (e.kind == ChainEntryKind::kRecord) c.last_record[e.request_id] = seq;
    else c.redactions[e.request_id].emplace_back(e.record, seq);
    return true;
  });
}

// A record entry against the stored record.
absl::Status CheckRecord(Check& c, uint64_t seq, const ChainEntry& e) {
  if (e.kind != ChainEntryKind::kRecord) return absl::OkStatus();
  if (c.last_record[e.request_id] != seq) {
    c.r.replaced++;  // a later record of the same request id took its place
    return absl::OkStatus();
  }
  AFF_ASSIGN_OR_RETURN(std::optional<Store::StoredAudit> stored, c.store.GetStoredAudit(e.request_id));
  if (stored) {
    if (Sha256Of(stored->second) == e.record && stored->first == e.written_ms) c.r.records++;
    else c.Fail("record " + Entry(seq, e.request_id) + " was altered: its bytes do not match its chain entry");
    return absl::OkStatus();
  }
  for (const auto& [hash, at] : c.redactions[e.request_id])
    if (hash == e.record && at > seq) {
      c.r.redacted++;
      if (c.r.redactions.size() < 100)
        c.r.redactions.push_back(absl::StrCat(e.request_id, " (sequence ", seq, ", redacted at ", at, ")"));
      return absl::OkStatus();
    }
  if (c.cutoff > 0 && e.written_ms < c.cutoff) {
    c.r.expired++;
    return absl::OkStatus();
  }
  c.Fail("record " + Entry(seq, e.request_id) + " is missing: it was deleted, not expired or redacted");
  return absl::OkStatus();
}

// The second pass: each entry follows the one before it (or the checkpoint
// that anchors a pruned chain), matches the checkpoints, and its record.
absl::Status CheckEntries(Check& c) {
  ChainHash running{};
  std::string previous_id;
  absl::Status read = absl::OkStatus();
  AFF_RETURN_IF_ERROR(c.store.ScanAuditChain(kChainEntryPrefix, [&](std::string_view key, std::string_view value) {
    uint64_t seq = 0;
    ChainEntry e;
    if (!SequenceOfKey(key, kChainEntryPrefix[0], &seq)) {
      if (key.substr(0, 1) == kChainEntryPrefix)
        c.Fail("the audit chain holds a key that is no entry's, after sequence " + std::to_string(c.r.last_sequence) +
               ": it was inserted");
      return false;
    }
    if (!DecodeChainEntry(value, &e)) {
      c.Fail(absl::StrCat("the chain entry at sequence ", seq, " is damaged (altered)"));
      return false;
    }
    if (e.sequence != seq) {
      c.Fail(absl::StrCat("the chain entry stored at sequence ", seq, " is ", Entry(e.sequence, e.request_id),
                          ": entries were reordered"));
      return false;
    }
    const bool first = c.r.first_sequence == 0;
    if (first) {
      c.r.first_sequence = seq;
      auto anchor = c.checkpoints.find(seq - 1);
      if (seq > 1 && anchor == c.checkpoints.end()) {
        c.Fail(absl::StrCat("the chain starts at sequence ", seq, " with no checkpoint at ", seq - 1,
                            " to anchor it: entries before it are missing"));
        return false;
      }
      if (seq > 1) running = anchor->second.head;
    } else if (seq != c.r.last_sequence + 1) {
      c.Fail(absl::StrCat("entries ", c.r.last_sequence + 1, "..", seq - 1, " are missing: the chain goes from ",
                          Entry(c.r.last_sequence, previous_id), " to ", Entry(seq, e.request_id)));
      return false;
    }
    if (e.previous != running) {
      c.Fail(first ? absl::StrCat("the chain's first entry, ", Entry(seq, e.request_id),
                                  ", does not follow the checkpoint before it: it was altered or inserted")
                   : absl::StrCat("the chain breaks at ", Entry(seq, e.request_id), ": the entry before it, ",
                                  Entry(seq - 1, previous_id), ", was altered, or this one was inserted or moved"));
      return false;
    }
    running = Sha256Of(value);
    previous_id = e.request_id;
    c.r.last_sequence = seq;
    if (auto cp = c.checkpoints.find(seq); cp != c.checkpoints.end() && cp->second.head != running) {
      c.Fail("the checkpoint at " + Entry(seq, e.request_id) + " names another head: entries up to it were altered");
      return false;
    }
    if (c.options.expect && c.options.expect->first == seq && c.options.expect->second != HexOf(running)) {
      c.Fail("the chain's head at " + Entry(seq, e.request_id) + " is not the off-box checkpoint's: entries up to it "
             "were altered");
      return false;
    }
    read = CheckRecord(c, seq, e);
    return read.ok() && c.r.failure.empty();
  }));
  c.r.head_hex = HexOf(running);
  return read;
}

// The ends of the chain: nothing cut off after the last checkpoint (or the
// off-box one), and no stored record outside the chain.
absl::Status CheckEnds(Check& c) {
  const uint64_t last_cp = c.checkpoints.empty() ? 0 : c.checkpoints.rbegin()->first;
  const bool pruned_away = c.r.last_sequence == 0 && c.cutoff > 0;  // every entry expired and pruned
  if (last_cp > c.r.last_sequence && !pruned_away)
    c.Fail(absl::StrCat("the chain is truncated: it ends at sequence ", c.r.last_sequence, " but the checkpoint at ",
                        last_cp, " names later entries"));
  if (c.options.expect && c.options.expect->first > c.r.last_sequence)
    c.Fail(absl::StrCat("the chain is truncated: it ends at sequence ", c.r.last_sequence,
                        " before the off-box checkpoint at ", c.options.expect->first));
  if (c.options.key && c.r.last_sequence > 0 && !c.r.last_checkpoint_signed)
    c.Fail(c.r.checkpoints == 0
               ? "no checkpoint is stored, so none is signed by key " + c.options.key->key_id() +
                     " (a server takes one every audit.checkpoint_interval_seconds; they were deleted if it ran longer)"
               : absl::StrCat("the last checkpoint (sequence ", last_cp, ") is not signed by key ",
                              c.options.key->key_id()));
  if (!c.r.failure.empty()) return absl::OkStatus();
  return c.store.ScanStoredAudits([&](std::string_view id, int64_t written, std::string_view) {
    if (c.last_record.count(std::string(id))) return;
    if (c.cutoff > 0 && written > 0 && written < c.cutoff) {
      c.r.expired++;
    } else if (c.chain_start == 0 || written == 0 || written < c.chain_start) {
      c.r.before_chain++;
    } else {
      c.Fail(absl::StrCat("record ", std::string(id), " (written at ", written, ") is not in the chain: it was inserted, or the "
                          "chain was cut off after sequence ", c.r.last_sequence));
    }
  });
}

}  // namespace

std::string AuditVerifyReport::Summary(bool key_given) const {
  std::string signing;
  if (checkpoints == 0) signing = "no checkpoints yet";
  else if (key_given) signing = absl::StrCat(verified_signatures, " signatures verified");
  else if (signed_checkpoints > 0) signing = "signatures not checked (give --public-key)";
  else signing = "checkpoints unsigned (no audit.signing_key)";
  std::string entries = last_sequence ? absl::StrCat("entries ", first_sequence, "..", last_sequence) : "no entries";
  return absl::StrCat("audit chain intact: ", entries, ", ", records, " records intact, ", redacted, " redacted, ",
                      expired, " expired, ", before_chain, " from before the chain",
                      replaced ? absl::StrCat(", ", replaced, " replaced") : "", "; ", checkpoints,
                      " checkpoints, the last at sequence ", last_checkpoint, ", ", signing,
                      "; head ", head_hex.substr(0, 16));
}

absl::StatusOr<AuditVerifyReport> VerifyAuditChain(const Store& store, const AuditVerifyOptions& options) {
  AuditVerifyReport r;
  Check c(store, options, r);
  const int64_t retention = store.AuditRetentionMs();
  c.cutoff = retention > 0 ? options.now_ms - retention : 0;
  AFF_RETURN_IF_ERROR(LoadCheckpoints(c));
  if (!r.ok()) return r;
  AFF_RETURN_IF_ERROR(IndexEntries(c));
  AFF_RETURN_IF_ERROR(CheckEntries(c));
  if (!r.ok()) return r;
  AFF_RETURN_IF_ERROR(CheckEnds(c));
  return r;
}

}  // namespace affinity
