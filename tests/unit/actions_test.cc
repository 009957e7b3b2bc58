// Configured actions ([actions] purchase = 3.0): the configuration that adds
// them, the ingestor that accepts or refuses them, the live state and the log
// that keep them, and the data dir's table that gives each name its code.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "events/action_names.h"
#include "store/action_codes.h"
#include "testing/world.h"
#include "config/config.h"

namespace affinity {
namespace {

using testing::World;

ActionWeights WithActions(std::vector<CustomAction> custom) {
  ActionWeights w;
  w.custom = std::move(custom);
  return w;
}

// Serves w's store with these configured actions, its live state replayed from
// the log (as a restart with an edited configuration would).
void Configure(World& w, const ActionWeights& actions) {
  w.config.actions = actions;
  w.live = std::make_unique<LiveState>(w.config.actions);
  w.live->SetCreatorOf([&w](Ref r) { return r.kind() == Kind::kItem ? w.registry.CreatorOf(r) : Ref(); });
  auto loaded = w.live->Load(*w.store);  // the log replayed, as at a start
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  w.ingestor = std::make_unique<Ingestor>(w.store.get(), &w.registry, w.live.get(), w.config.actions, &w.clock);
}

// Reopens w's data dir (a restart), keeping its registry.
void Reopen(World& w, const ActionWeights& actions) {
  w.ingestor.reset();
  w.store.reset();
  w.store = *OpenRocksStore(w.dir.path(), OpenMode::kPrimary, {.clock = &w.clock});
  Configure(w, actions);
}

std::vector<Event> AllEvents(const Store& store) {
  std::vector<Event> out;
  EXPECT_TRUE(store.ScanEvents([&](const Event& e) { out.push_back(e); return true; }).ok());
  return out;
}

TEST(ActionsConfigTest, AnActionsKeyAddsAnActionWithItsWeightAndBuiltInsKeepTheirs) {
  auto c = Config::FromTomlString("[actions]\npurchase = 3.0\nclick = 1.5\nskip = -0.5\n");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_NE(c->actions.FindCustom("purchase"), nullptr);
  EXPECT_EQ(c->actions.FindCustom("purchase")->weight, 3.0);
  EXPECT_EQ(c->actions.FindCustom("skip")->weight, -0.5);
  EXPECT_EQ(c->actions.custom.size(), 2u) << "click is re-weighted, not added";
  EXPECT_EQ(c->actions.click, 1.5);
  EXPECT_EQ(c->actions.like, 2.0);
}

TEST(ActionsConfigTest, AnInvalidActionNameOrWeightIsRefusedByName) {
  for (const char* bad : {"Purchase = 1.0", "\"buy-now\" = 1.0", "\"\" = 1.0",
                          "a_name_of_thirty_three_characters = 1.0"}) {
    auto c = Config::FromTomlString(std::string("[actions]\n") + bad + "\n");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("actions."), std::string::npos) << c.status();
    EXPECT_NE(c.status().message().find("a-z, 0-9 and _"), std::string::npos) << c.status();
  }
  auto text = Config::FromTomlString("[actions]\npurchase = \"a lot\"\n");
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("actions.purchase must be a number"), std::string::npos) << text.status();
}

TEST(ConfiguredActionTest, IsAcceptedWhenConfiguredAndRefusedNamingTheKnownOnesWhenNot) {
  World w;
  w.BuildSmall();
  auto refused = w.Events({World::Ev("u1", "i3", "purchase")});
  ASSERT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("unknown action 'purchase'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find("impression, click"), std::string::npos) << refused;

  Configure(w, WithActions({{"purchase", 3.0}, {"rent", 1.0}}));
  const uint64_t before = w.store->NextOffset();
  ASSERT_TRUE(w.Events({World::Ev("u1", "i3", "purchase")}).ok());
  EXPECT_EQ(w.store->NextOffset(), before + 1);
  const Event last = AllEvents(*w.store).back();
  EXPECT_TRUE(IsCustom(last.action));
  EXPECT_EQ(ActionName(last.action), "purchase");
  EXPECT_FLOAT_EQ(last.weight, 3.0f) << "the configured weight";
  auto unknown = w.Events({World::Ev("u1", "i3", "teleport")});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("hide, purchase, rent"), std::string::npos) << unknown;
}

TEST(ConfiguredActionTest, APositiveOneIsEngagementAndANegativeOneHidesWithTheSignRulesOfBuiltIns) {
  World w;
  w.BuildSmall();
  Configure(w, WithActions({{"purchase", 3.0}, {"dislike", -2.0}}));
  const Ref u1 = *w.registry.Find("u1"), i3 = *w.registry.Find("i3"), i7 = *w.registry.Find("i7");
  const double before = w.live->Engagement(i3, w.clock.NowMillis());
  ASSERT_TRUE(w.Events({World::Ev("u1", "i3", "purchase"), World::Ev("u1", "i7", "dislike")}).ok());
  auto v = w.live->Viewer(u1);
  EXPECT_TRUE(v->Engaged(i3));
  EXPECT_EQ(v->recent.back().entity, i3);
  EXPECT_GT(w.live->Engagement(i3, w.clock.NowMillis()), before);
  EXPECT_NE(v->Creator(w.registry.CreatorOf(i3)), nullptr) << "the creator affinity counts a purchase";
  EXPECT_TRUE(v->Hid(i7));
  EXPECT_FALSE(v->Engaged(i7));

  auto negative = World::Ev("u1", "i4", "purchase");
  negative.weight = -1.0;
  auto s = w.Events({negative});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("expresses interest"), std::string::npos) << s;
  auto positive = World::Ev("u1", "i4", "dislike");
  positive.weight = 1.0;
  s = w.Events({positive});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("negative feedback"), std::string::npos) << s;
  auto explicit_weight = World::Ev("u1", "i4", "purchase");
  explicit_weight.weight = 7.0;
  ASSERT_TRUE(w.Events({explicit_weight}).ok());
  EXPECT_FLOAT_EQ(AllEvents(*w.store).back().weight, 7.0f);
}

TEST(ConfiguredActionTest, KeepsItsCodeAcrossRestartsReorderingAndActionsAddedLater) {
  World w;
  w.BuildSmall();
  Configure(w, WithActions({{"purchase", 3.0}}));
  ASSERT_TRUE(w.Events({World::Ev("u1", "i3", "purchase")}).ok());
  const Action purchase = AllEvents(*w.store).back().action;

  // Restart with another action first in the configuration.
  Reopen(w, WithActions({{"aaa_rent", 1.0}, {"purchase", 3.0}}));
  ASSERT_TRUE(w.Events({World::Ev("u2", "i4", "aaa_rent"), World::Ev("u2", "i5", "purchase")}).ok());
  auto events = AllEvents(*w.store);
  const Event& rent = events[events.size() - 2];
  EXPECT_NE(rent.action, purchase);
  EXPECT_EQ(events.back().action, purchase);
  auto table = ReadActionCodes(*w.store);
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->at("purchase"), purchase);
  EXPECT_EQ(table->at("aaa_rent"), rent.action);

  // Restart without purchase: its events stay in the log with their name and
  // weight and replay as they did; new ones are refused.
  Reopen(w, WithActions({{"aaa_rent", 1.0}}));
  EXPECT_FALSE(w.Events({World::Ev("u3", "i6", "purchase")}).ok());
  EXPECT_TRUE(w.live->Viewer(*w.registry.Find("u1"))->Engaged(*w.registry.Find("i3")));
  size_t purchases = 0;
  for (const Event& e : AllEvents(*w.store))
    if (e.action == purchase) {
      ++purchases;
      EXPECT_EQ(ActionName(e.action), "purchase");
      EXPECT_FLOAT_EQ(e.weight, 3.0f);
    }
  EXPECT_EQ(purchases, 2u);
}

TEST(ConfiguredActionTest, ACheckpointHoldingOneIsUsedAtTheNextStart) {
  World w;
  w.BuildSmall();
  Configure(w, WithActions({{"purchase", 3.0}}));
  ASSERT_TRUE(w.Events({World::Ev("u1", "i3", "purchase")}).ok());
  const std::string path = w.dir.path() + "/state/live.ckpt";
  ASSERT_TRUE(w.live->WriteCheckpoint(path, w.clock.NowMillis()).ok());
  LiveState restored(w.config.actions);
  auto report = restored.Load(*w.store, path, {w.registry.Count(Kind::kUser), w.registry.Count(Kind::kCreator),
                                               w.registry.Count(Kind::kItem)});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->from_checkpoint) << report->checkpoint_refused;
  const auto& recent = restored.Viewer(*w.registry.Find("u1"))->recent;
  ASSERT_FALSE(recent.empty());
  EXPECT_EQ(ActionName(recent.back().action), "purchase");
}

TEST(ActionCodesTest, TheStoredTableReadsBackAndADamagedOneIsRefused) {
  ActionCodeTable table = {{"purchase", Action(9)}, {"rent", Action(12)}};
  auto back = DecodeActionCodes(EncodeActionCodes(table));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, table);
  EXPECT_EQ(EncodeActionCodes(table), "9 purchase\n12 rent\n");
  for (const char* bad : {"9 purchase\n9 rent\n", "9 purchase\n10 purchase\n", "3 click\n", "9 Purchase\n",
                          "9 purchase"})
    EXPECT_EQ(DecodeActionCodes(bad).status().code(), absl::StatusCode::kDataLoss) << bad;
}

TEST(ActionCodesTest, ANameGetsOneCodeThatASecondaryAndARestartReadBack) {
  testing::TempDir dir;
  Action code;
  {
    auto store = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
    auto assigned = AssignActionCode(*store, "purchase");
    ASSERT_TRUE(assigned.ok()) << assigned.status();
    code = *assigned;
    EXPECT_TRUE(IsCustom(code));
    EXPECT_EQ(*AssignActionCode(*store, "purchase"), code) << "asked again: the same code";
    EXPECT_FALSE(AssignActionCode(*store, "click").ok()) << "a built-in has its own code";
    auto secondary = *OpenRocksStore(dir.path(), OpenMode::kSecondary);
    EXPECT_EQ((*ReadActionCodes(*secondary)).at("purchase"), code);
  }
  auto reopened = *OpenRocksStore(dir.path(), OpenMode::kPrimary);
  EXPECT_EQ((*ReadActionCodes(*reopened)).at("purchase"), code);
  EXPECT_EQ(RegisteredAction("purchase"), code);
  EXPECT_EQ(ParseAction("purchase"), code);
}

}  // namespace
}  // namespace affinity
