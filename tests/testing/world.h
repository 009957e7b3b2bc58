// A small, hand-made world for unit tests: users, creators, items, follows and
// engagement, loaded into a real RocksDB store through the Ingestor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/config.h"
#include "state/ingestor.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"
#include "testing/temp_dir.h"
#include "config/config.h"

namespace affinity::testing {

struct World {
  TempDir dir;
  Config config;
  ManualClock clock{1'767'225'600'000};
  std::unique_ptr<Store> store;
  EntityRegistry registry;
  std::unique_ptr<LiveState> live;
  std::unique_ptr<Ingestor> ingestor;

  // event_retention_ms: the store drops (and the ingestor refuses) older events.
  explicit World(int64_t event_retention_ms = 0) {
    auto s = OpenRocksStore(dir.path(), OpenMode::kPrimary, {.clock = &clock, .event_retention_ms = event_retention_ms});
    store = std::move(*s);
    live = std::make_unique<LiveState>(config.actions);
    ingestor = std::make_unique<Ingestor>(store.get(), &registry, live.get(), config.actions, &clock);
  }

  void Entities(const std::vector<RawEntity>& e) { (void)ingestor->UpsertEntities(e); }
  absl::Status Events(const std::vector<RawEvent>& e) { return ingestor->AddFeedback(e).status(); }
  static RawEvent Ev(std::string viewer, std::string entity, std::string action, int64_t ts = 1'767'225'000'000) {
    RawEvent e;
    e.viewer_id = std::move(viewer);
    e.entity_id = std::move(entity);
    e.action = std::move(action);
    e.ts = ts;
    return e;
  }

  // Users u0..u9, creators c0..c2, items i0..i29 (item i by creator c(i%3)).
  // Users follow each other in a ring and follow c0; users engage with items in
  // two taste groups (even users like items 0..14, odd users 15..29).
  void BuildSmall() {
    std::vector<RawEntity> ents;
    for (int c = 0; c < 3; ++c) ents.push_back({absl::StrCat("c", c), "creator", "", c == 2 ? "new" : "established", ""});
    for (int u = 0; u < 10; ++u) ents.push_back({absl::StrCat("u", u), "user", "", "", ""});
    for (int i = 0; i < 30; ++i) ents.push_back({absl::StrCat("i", i), "item", absl::StrCat("c", i % 3), "", ""});
    Entities(ents);
    std::vector<RawEvent> evs;
    int64_t ts = 1'767'200'000'000;
    for (int u = 0; u < 10; ++u) {
      evs.push_back(Ev(absl::StrCat("u", u), absl::StrCat("u", (u + 1) % 10), "follow", ts++));
      evs.push_back(Ev(absl::StrCat("u", u), absl::StrCat("u", (u + 2) % 10), "follow", ts++));
      evs.push_back(Ev(absl::StrCat("u", u), "c0", "follow", ts++));
      int base = (u % 2) ? 15 : 0;
      for (int k = 0; k < 8; ++k) {
        int item = base + (u * 3 + k * 2) % 15;
        evs.push_back(Ev(absl::StrCat("u", u), absl::StrCat("i", item), k % 3 ? "click" : "like", ts++));
      }
    }
    (void)Events(evs);
  }
};

}  // namespace affinity::testing
