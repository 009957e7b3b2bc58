// The audit chain (audit/audit_chain.h): the writer's entries and checkpoints,
// redaction, pruning, and verification naming each kind of tampering. The
// tampering is done as someone with the data dir would do it: writing the
// store's audit records and chain keys directly, past the writer.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <sstream>

#include <filesystem>
#include <map>
#include <fstream>

#include "audit/audit_chain.h"
#include "audit/audit_log.h"
#include "audit/audit_verify.h"
#include "base/clock.h"
#include "store/store.h"
#include "testing/temp_dir.h"

namespace affinity {
namespace {

using testing::TempDir;

constexpr int64_t kHour = 3'600'000;

class AuditChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pub = GenerateSigningKey(keys_ / "audit.key");
    ASSERT_TRUE(pub.ok()) << pub.status();
    auto signer = CheckpointSigner::Load(keys_ / "audit.key", dir_.path());
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = *signer;
    auto verifier = CheckpointVerifier::Load(*pub);
    ASSERT_TRUE(verifier.ok()) << verifier.status();
    verifier_ = *std::move(verifier);
    Open();
  }

  void Open() {
    audit_.reset();
    store_.reset();
    StoreOptions o;
    o.clock = &clock_;
    o.audit_retention_ms = 24 * kHour;
    store_ = *OpenRocksStore(dir_.path(), OpenMode::kPrimary, o);
    audit_ = std::make_unique<AuditLog>(store_.get(), 100000, AuditChainOptions{&clock_, 3'600'000, signer_});
  }

  // Records q_1..q_n (payload "{\"i\":i}"), written one write each, then a checkpoint.
  void RecordAndCheckpoint(int from, int to) {
    for (int i = from; i <= to; ++i) {
      ASSERT_TRUE(audit_->Record(Id(i), Payload(i)));
      audit_->Flush();
    }
    ASSERT_TRUE(audit_->Checkpoint().ok());
  }
  static std::string Id(int i) { return "q_" + std::to_string(i); }
  static std::string Payload(int i) { return "{\"i\":" + std::to_string(i) + "}"; }

  AuditVerifyReport Verify() {
    AuditVerifyOptions o;
    o.key = verifier_.get();
    o.now_ms = clock_.NowMillis();
    auto r = VerifyAuditChain(*store_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : AuditVerifyReport{};
  }
  std::string Entry(uint64_t seq) {
    std::string value;
    EXPECT_TRUE(store_->ScanAuditChain(ChainEntryKey(seq), [&](std::string_view k, std::string_view v) {
      if (k == ChainEntryKey(seq)) value = std::string(v);
      return false;
    }).ok());
    return value;
  }
  void Tamper(const Store::AuditWrite& w) { ASSERT_TRUE(store_->WriteAudit(w).ok()); }

  TempDir dir_, keys_;
  ManualClock clock_{1'767'225'600'000};
  std::shared_ptr<const CheckpointSigner> signer_;
  std::unique_ptr<CheckpointVerifier> verifier_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
};

TEST_F(AuditChainTest, AnIntactChainVerifiesWithEveryRecordAndSignatureCounted) {
  RecordAndCheckpoint(1, 5);
  RecordAndCheckpoint(6, 8);
  const AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.first_sequence, 1u);
  EXPECT_EQ(r.last_sequence, 8u);
  EXPECT_EQ(r.records, 8u);
  EXPECT_EQ(r.checkpoints, 2u);
  EXPECT_EQ(r.verified_signatures, 2u);
  EXPECT_EQ(r.last_checkpoint, 8u);
  EXPECT_NE(r.Summary(true).find("entries 1..8, 8 records intact"), std::string::npos) << r.Summary(true);
  EXPECT_EQ(audit_->head_sequence(), 8u);
}

TEST_F(AuditChainTest, ACheckpointIsLoggedWithItsSequenceHeadKeyAndSignature) {
  std::ostringstream logged;
  auto before = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged)));
  RecordAndCheckpoint(1, 2);
  spdlog::set_default_logger(before);
  const std::string head = HexOf(Sha256Of(Entry(2)));
  EXPECT_NE(logged.str().find("audit checkpoint: sequence 2 head " + head + " key " + signer_->key_id() +
                              " signature "),
            std::string::npos)
      << logged.str();
}

TEST_F(AuditChainTest, TheChainGoesOnFromItsStoredHeadAfterARestart) {
  RecordAndCheckpoint(1, 3);
  Open();
  RecordAndCheckpoint(4, 6);
  const AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.last_sequence, 6u);
}

TEST_F(AuditChainTest, AnAlteredPayloadByteIsNamed) {
  RecordAndCheckpoint(1, 5);
  auto stored = **store_->GetStoredAudit(Id(3));
  std::string altered = stored.second;
  altered[5] ^= 1;  // "{\"i\":3}" -> "{\"i\":2}"
  Tamper({.written_ms = stored.first, .records = {{Id(3), altered}}});
  const AuditVerifyReport r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.failure.find("record sequence 3 (request q_3) was altered"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, AnAlteredWriteTimeIsNamed) {
  RecordAndCheckpoint(1, 3);
  Tamper({.written_ms = clock_.NowMillis() + 1, .records = {{Id(2), Payload(2)}}});
  EXPECT_NE(Verify().failure.find("request q_2) was altered"), std::string::npos);
}

TEST_F(AuditChainTest, AnAlteredChainEntryIsNamedByTheEntryAfterIt) {
  RecordAndCheckpoint(1, 5);
  ChainEntry e;
  ASSERT_TRUE(DecodeChainEntry(Entry(2), &e));
  e.written_ms -= 1;  // a plausible edit that keeps the entry decodable
  Tamper({.chain = {{ChainEntryKey(2), EncodeChainEntry(e)}}});
  const AuditVerifyReport r = Verify();
  EXPECT_FALSE(r.ok());
  // The record no longer matches the entry's write time: named at once.
  EXPECT_NE(r.failure.find("sequence 2 (request q_2)"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, AnEntryWhoseOwnFieldsStillMatchBreaksTheLinkToTheNextOne) {
  RecordAndCheckpoint(1, 5);
  ChainEntry e;
  ASSERT_TRUE(DecodeChainEntry(Entry(2), &e));
  e.previous[0] ^= 1;  // rewritten, as if to splice the chain
  Tamper({.chain = {{ChainEntryKey(2), EncodeChainEntry(e)}}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("the chain breaks at sequence 2 (request q_2)"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, ADroppedEntryIsNamedAsMissing) {
  RecordAndCheckpoint(1, 5);
  Tamper({.erased = {{ChainEntryKey(3), ChainEntryKey(4)}}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("entries 3..3 are missing"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, ADroppedRecordIsNamedAsMissing) {
  RecordAndCheckpoint(1, 5);
  Tamper({.deleted = {Id(4)}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("record sequence 4 (request q_4) is missing"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, SwappedEntriesAreNamedAsReordered) {
  RecordAndCheckpoint(1, 5);
  const std::string two = Entry(2), three = Entry(3);
  Tamper({.chain = {{ChainEntryKey(2), three}, {ChainEntryKey(3), two}}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("stored at sequence 2 is sequence 3 (request q_3): entries were reordered"),
            std::string::npos)
      << r.failure;
}

TEST_F(AuditChainTest, AChainCutBeforeItsLastCheckpointIsNamedAsTruncated) {
  RecordAndCheckpoint(1, 5);
  Tamper({.deleted = {Id(4), Id(5)}, .erased = {{ChainEntryKey(4), ChainEntryKey(6)}}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("truncated: it ends at sequence 3 but the checkpoint at 5"), std::string::npos)
      << r.failure;
}

TEST_F(AuditChainTest, RecordsLeftBehindAChainCutAfterItsLastCheckpointAreNamed) {
  RecordAndCheckpoint(1, 5);
  for (int i = 6; i <= 7; ++i) ASSERT_TRUE(audit_->Record(Id(i), Payload(i)));
  audit_->Flush();
  Tamper({.erased = {{ChainEntryKey(6), ChainEntryKey(8)}}});
  const AuditVerifyReport r = Verify();
  EXPECT_NE(r.failure.find("record q_6"), std::string::npos) << r.failure;
  EXPECT_NE(r.failure.find("not in the chain"), std::string::npos) << r.failure;
}

TEST_F(AuditChainTest, TheOffBoxCheckpointCatchesAChainRewrittenAfterIt) {
  RecordAndCheckpoint(1, 3);
  const std::string logged = HexOf(Sha256Of(Entry(3)));
  // Rewrite the whole chain from a different record 2 on, as someone who
  // re-hashes every entry would; only the copy kept off the box tells.
  Tamper({.written_ms = 0, .records = {{Id(2), "{\"i\":99}"}}});
  ChainHash prev = Sha256Of(Entry(1));
  for (uint64_t seq = 2; seq <= 3; ++seq) {
    ChainEntry e;
    ASSERT_TRUE(DecodeChainEntry(Entry(seq), &e));
    e.previous = prev;
    if (seq == 2) {
      auto stored = **store_->GetStoredAudit(Id(2));
      e.record = Sha256Of(stored.second);
      e.written_ms = stored.first;
    }
    const std::string enc = EncodeChainEntry(e);
    Tamper({.chain = {{ChainEntryKey(seq), enc}}, .erased = {{CheckpointKey(0), CheckpointKey(99)}}});
    prev = Sha256Of(enc);
  }
  AuditVerifyOptions o;
  o.now_ms = clock_.NowMillis();
  EXPECT_TRUE(VerifyAuditChain(*store_, o)->ok());  // consistent on the box
  o.expect = std::make_pair(uint64_t(3), logged);
  EXPECT_NE(VerifyAuditChain(*store_, o)->failure.find("not the off-box checkpoint's"), std::string::npos);
}

TEST_F(AuditChainTest, AForgedCheckpointSignatureIsNamed) {
  RecordAndCheckpoint(1, 3);
  std::string value;
  ASSERT_TRUE(store_->ScanAuditChain(CheckpointKey(3), [&](std::string_view, std::string_view v) {
    value = std::string(v);
    return false;
  }).ok());
  ChainCheckpoint c;
  ASSERT_TRUE(DecodeCheckpoint(value, &c));
  c.signature[0] ^= 1;
  Tamper({.chain = {{CheckpointKey(3), EncodeCheckpoint(c)}}});
  EXPECT_NE(Verify().failure.find("checkpoint at sequence 3 does not verify"), std::string::npos);
}

TEST_F(AuditChainTest, DeletedCheckpointsAreNamedWhenAKeyIsGiven) {
  RecordAndCheckpoint(1, 3);
  Tamper({.erased = {{CheckpointKey(0), CheckpointKey(99)}}});
  EXPECT_NE(Verify().failure.find("no checkpoint is stored, so none is signed by key"), std::string::npos);
}

TEST_F(AuditChainTest, AStrayKeyAmongTheEntriesIsNamedAsInserted) {
  RecordAndCheckpoint(1, 3);
  Tamper({.chain = {{ChainEntryKey(2) + "x", "junk"}}});
  EXPECT_NE(Verify().failure.find("holds a key that is no entry's, after sequence 2"), std::string::npos)
      << Verify().failure;
}

TEST_F(AuditChainTest, ARedactedRecordIsAcceptedAndReportedAsRedacted) {
  RecordAndCheckpoint(1, 4);
  ASSERT_TRUE(audit_->Redact(Id(2)).ok());
  EXPECT_FALSE(store_->GetAudit(Id(2))->has_value());
  EXPECT_FALSE(audit_->Get(Id(2))->has_value());
  EXPECT_EQ(audit_->Redact(Id(2)).code(), absl::StatusCode::kNotFound);  // nothing left to redact
  ASSERT_TRUE(audit_->Checkpoint().ok());
  const AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.redacted, 1u);
  EXPECT_EQ(r.records, 3u);
  EXPECT_EQ(r.last_sequence, 5u);  // the redaction is an entry of its own
  ASSERT_EQ(r.redactions.size(), 1u);
  EXPECT_EQ(r.redactions[0], "q_2 (sequence 2, redacted at 5)");
  EXPECT_NE(r.Summary(true).find("1 redacted"), std::string::npos);
}

TEST_F(AuditChainTest, ExpiredRecordsAreAcceptedAndTheChainIsPrunedBehindACheckpoint) {
  RecordAndCheckpoint(1, 3);
  clock_.Advance(12 * kHour);
  RecordAndCheckpoint(4, 5);
  clock_.Advance(13 * kHour);  // records 1-3 are past the 24 h retention, 4-5 are not
  ASSERT_TRUE(store_->PruneAudits().ok());
  AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.expired, 3u);
  EXPECT_EQ(r.records, 2u);
  // The next checkpoint prunes the expired prefix, up to the checkpoint at 3.
  RecordAndCheckpoint(6, 6);
  r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.first_sequence, 4u);
  EXPECT_EQ(r.records, 3u);
  EXPECT_NE(r.Summary(true).find("entries 4..6"), std::string::npos) << r.Summary(true);
  // ... and the chain still catches what it caught before.
  Tamper({.deleted = {Id(5)}});
  EXPECT_NE(Verify().failure.find("request q_5) is missing"), std::string::npos);
}

TEST_F(AuditChainTest, RecordsWrittenBeforeTheChainAreReportedAsSuch) {
  ASSERT_TRUE(store_->PutAudit("q_old", "{}").ok());
  clock_.Advance(1000);
  RecordAndCheckpoint(1, 2);
  const AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.before_chain, 1u);
}

TEST_F(AuditChainTest, ARefusedWriteNeverEntersTheChainAndIsCounted) {
  RecordAndCheckpoint(1, 2);
  audit_->SetAdmission([] { return absl::ResourceExhaustedError("volume full"); });
  ASSERT_TRUE(audit_->Record(Id(3), Payload(3)));
  audit_->Flush();
  EXPECT_EQ(audit_->write_errors(), 1u);
  EXPECT_EQ(audit_->head_sequence(), 2u);
  audit_->SetAdmission(nullptr);
  RecordAndCheckpoint(4, 4);
  const AuditVerifyReport r = Verify();
  EXPECT_TRUE(r.ok()) << r.failure;
  EXPECT_EQ(r.last_sequence, 3u);  // q_4 is entry 3
}

// Collects the gauges a component reports.
struct Gauges : MetricsSink {
  std::map<std::string, double> values;
  void Gauge(std::string_view name, std::string_view, const Labels& labels, double value) override {
    std::string key(name);
    for (const auto& [k, v] : labels) key += "{" + k + "=" + v + "}";
    values[key] = value;
  }
};

TEST_F(AuditChainTest, ADroppedRecordNeverEntersTheChainAndIsCountedInTheMetrics) {
  AuditLog full(store_.get(), 0, AuditChainOptions{&clock_, 3'600'000, signer_});
  EXPECT_FALSE(full.Record(Id(1), Payload(1)));
  full.Flush();
  EXPECT_EQ(full.dropped(), 1u);
  EXPECT_EQ(full.head_sequence(), 0u);
  Gauges g;
  full.ReportMetrics(g);
  EXPECT_EQ(g.values["affinity_audit_records_lost{reason=queue_full}"], 1);
  EXPECT_EQ(g.values["affinity_audit_chain_sequence{point=head}"], 0);
}

TEST_F(AuditChainTest, TheStatsNameTheHeadAndTheLastCheckpoint) {
  RecordAndCheckpoint(1, 2);
  ASSERT_TRUE(audit_->Record(Id(3), Payload(3)));
  audit_->Flush();
  JsonWriter w;
  w.BeginObject();
  audit_->WriteStats(w);
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"audit_chain":{"head_sequence":3,"checkpoint_sequence":2,"signed":true}})");
}

TEST_F(AuditChainTest, VerifyReadsBesideARunningWriter) {
  RecordAndCheckpoint(1, 4);
  StoreOptions o;
  o.clock = &clock_;
  o.audit_retention_ms = 24 * kHour;
  auto secondary = OpenRocksStore(dir_.path(), OpenMode::kSecondary, o);
  ASSERT_TRUE(secondary.ok()) << secondary.status();
  AuditVerifyOptions vo;
  vo.key = verifier_.get();
  vo.now_ms = clock_.NowMillis();
  auto r = VerifyAuditChain(**secondary, vo);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << r->failure;
  EXPECT_EQ(r->records, 4u);
}

TEST(AuditSigningKeyTest, AKeyReadableByOthersIsRefusedWithItsMode) {
  TempDir keys, data;
  ASSERT_TRUE(GenerateSigningKey(keys / "k").ok());
  ASSERT_EQ(::chmod((keys / "k").c_str(), 0644), 0);
  auto signer = CheckpointSigner::Load(keys / "k", data.path());
  ASSERT_FALSE(signer.ok());
  EXPECT_NE(signer.status().message().find("has mode 0644"), std::string::npos) << signer.status();
  EXPECT_NE(signer.status().message().find("chmod 600"), std::string::npos);
}

TEST(AuditSigningKeyTest, AKeyInsideTheDataDirIsRefused) {
  TempDir data;
  ASSERT_TRUE(GenerateSigningKey(data / "k").ok());
  auto signer = CheckpointSigner::Load(data / "k", data.path());
  ASSERT_FALSE(signer.ok());
  EXPECT_NE(signer.status().message().find("inside the data dir"), std::string::npos) << signer.status();
}

TEST(AuditSigningKeyTest, KeygenNeverOverwritesAKeyAndMakesItOwnerOnly) {
  TempDir keys;
  ASSERT_TRUE(GenerateSigningKey(keys / "k").ok());
  struct stat st {};
  ASSERT_EQ(::stat((keys / "k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(GenerateSigningKey(keys / "k").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AuditSigningKeyTest, ASignatureVerifiesOnlyWithItsOwnKeyAndMessage) {
  TempDir keys, data;
  auto pub = GenerateSigningKey(keys / "a");
  auto other = GenerateSigningKey(keys / "b");
  ASSERT_TRUE(pub.ok() && other.ok());
  auto signer = *CheckpointSigner::Load(keys / "a", data.path());
  const std::string sig = signer->Sign("message");
  EXPECT_TRUE((*CheckpointVerifier::Load(*pub))->Verify("message", sig));
  EXPECT_FALSE((*CheckpointVerifier::Load(*pub))->Verify("messagf", sig));
  EXPECT_FALSE((*CheckpointVerifier::Load(*other))->Verify("message", sig));
  EXPECT_EQ((*CheckpointVerifier::Load(*pub))->key_id(), signer->key_id());
}

}  // namespace
}  // namespace affinity
