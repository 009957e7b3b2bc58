// Validates and commits writes: feedback events and entity upserts. A batch is
// validated whole before anything is written; an invalid one is rejected with
// InvalidArgument naming the offending element and leaves no trace. An accepted
// batch is durable (fsync) before the call returns, then applied to the live
// state, so the next query sees it.
// Thread safety: safe for concurrent use.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/config.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"

namespace affinity {

struct RawEvent {
  std::string viewer_id;
  std::string entity_id;
  std::string action;
  std::optional<double> weight;
  std::optional<int64_t> ts;
  std::string context;  // raw JSON object or ""
};

struct RawEntity {
  std::string id;
  std::string kind;
  std::string creator_id;
  std::string cohort;
  std::string attributes;  // raw JSON object or ""
  std::vector<std::string> labels{};
  std::optional<int64_t> expires_at{};  // unix ms
};

// Names the element of a batch an error is about: "events[3]" for a JSON batch,
// "file.tsv:5" for a file whose element i stands on line i + line_base.
struct Where {
  std::string what;
  int64_t line_base = -1;
  std::string At(size_t i) const {
    return line_base < 0 ? what + "[" + std::to_string(i) + "]"
                         : what + ":" + std::to_string(int64_t(i) + line_base);
  }
};

class Ingestor {
 public:
  // `live` may be null (bulk import without a serving state).
  Ingestor(Store* store, EntityRegistry* registry, LiveState* live, const ActionWeights& weights,
           const Clock* clock)
      : store_(store), registry_(registry), live_(live), weights_(weights), clock_(clock) {}

  // Returns the number of accepted events (all of them: a batch is accepted
  // whole or not at all). `what` names the batch in errors ("events" over HTTP,
  // a file name in imports). With `key`, its idempotency record is written in
  // the same atomic write as the events (even for an empty batch).
  absl::StatusOr<size_t> AddFeedback(const std::vector<RawEvent>& events, const Where& where = {"events"},
                                     const IdempotencyRecord* key = nullptr);
  // An upsert replaces an entity's record (and restores a deleted one). Returns
  // the number upserted (all of them); `key` as for AddFeedback.
  absl::StatusOr<size_t> UpsertEntities(const std::vector<RawEntity>& entities, const Where& where = {"entities"},
                                        const IdempotencyRecord* key = nullptr);
  // A partial update: `merge` turns the entity's current record into the one to
  // store (an error it returns is returned as it is), and the result is
  // upserted, all under the registry's write lock, so that no upsert, delete or
  // other patch of the same entity lands between the read and the write.
  // NotFound for an unknown or deleted id.
  using EntityMerge = std::function<absl::StatusOr<RawEntity>(const EntityRecord& current)>;
  absl::Status PatchEntity(const std::string& id, const EntityMerge& merge);
  // Marks an entity deleted, durably: no query returns it from then on. Its
  // events stay in the log. NotFound for an unknown id.
  absl::Status DeleteEntity(const std::string& id);
  // Bulk load: entities and events are validated together (events may name
  // entities of the same load) and nothing is written unless all are valid.
  absl::Status Import(const std::vector<RawEntity>& entities, const Where& entities_where,
                      const std::vector<RawEvent>& events, const Where& events_where);

  Store* store() const { return store_; }

  // Called with every accepted batch, after it is durable and applied (experiment
  // attribution). Set before serving starts.
  using FeedbackObserver = std::function<void(const std::vector<Event>&)>;
  void SetFeedbackObserver(FeedbackObserver observer) { observer_ = std::move(observer); }

  // Loads the registry from the store (at start).
  static absl::Status LoadRegistry(const Store& store, EntityRegistry* registry);

 private:
  using Lookup = std::function<std::optional<Ref>(const std::string&)>;
  // UpsertEntities' work. REQUIRES: registry_->write_mutex() held.
  absl::StatusOr<size_t> UpsertLocked(const std::vector<RawEntity>& raw, const Where& where,
                                      const IdempotencyRecord* key = nullptr);
  absl::StatusOr<std::vector<Ref>> RegisterUsers(const std::vector<std::string>& ids);
  // Checks every event; fills `out` (viewer left invalid for unseen viewers,
  // whose index into new_viewers is in pending).
  absl::Status ValidateEvents(const std::vector<RawEvent>& raw, const Where& where, const Lookup& lookup,
                              std::vector<Event>* out, std::vector<int64_t>* pending,
                              std::vector<std::string>* new_viewers) const;
  // "impression, click, ..., hide" and the configured actions, for errors.
  std::string KnownActions() const;
  // Gives each event of a configured action its code in the data dir's table
  // (store/action_codes.h), recording a name the first time it is accepted.
  absl::Status AssignActionCodes(const std::vector<RawEvent>& raw, std::vector<Event>* events);
  // Checks every entity; fills records with refs (kMaxDenseId for new ones).
  // REQUIRES: registry write mutex held.
  absl::Status ValidateEntities(const std::vector<RawEntity>& raw, const Where& where,
                                std::vector<EntityRecord>* records) const;

  Store* store_;
  EntityRegistry* registry_;
  LiveState* live_;
  ActionWeights weights_;
  const Clock* clock_;
  FeedbackObserver observer_;
  std::mutex codes_mu_;
  std::map<std::string, Action, std::less<>> codes_;  // configured actions' codes, as assigned; GUARDED_BY(codes_mu_)
};

}  // namespace affinity
