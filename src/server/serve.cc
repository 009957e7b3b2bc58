// `affinity serve`: opens the port first (so /healthz answers and /readyz says
// 503 with progress while the state loads), loads the state on a loader
// thread, then swaps the full API in. The main thread waits for signals: a
// stop signal during loading ends the process at once (the store is safe
// against that, as against kill -9); after loading, it stops in order.
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "access/trusted_proxies.h"
#include "api/http_server.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "api/server_report.h"
#include "api/startup_routes.h"
#include "audit/audit_log.h"
#include "features/snapshot_manager.h"
#include "experiments/canary.h"
#include "experiments/experiment_service.h"
#include "experiments/experiments_component.h"
#include "models/model_watcher.h"
#include "server/batch_schedule.h"
#include "state/catalog.h"
#include "models/drift_service.h"
#include "admin/feature_service.h"
#include "serving/query_engine.h"
#include "admin/service_status.h"
#include "base/component.h"
#include "server/commands.h"
#include "state/checkpointer.h"
#include "admin/forget_service.h"
#include "base/status.h"
#include "state/storage_guard.h"
#include "base/descriptors.h"
#include "state/ingestor.h"
#include "state/live_state.h"
#include "state/registry.h"
#include "store/store.h"
#include "config/config.h"

namespace affinity {
namespace {

// Everything a serving process holds once loaded, in construction order (and
// destroyed in reverse: the watchers stop before what they feed). The parts
// with a life of their own are components (base/component.h): started in
// order as they are built, stopped in reverse by Stop().
struct ServingStack {
  std::unique_ptr<Store> store;
  std::unique_ptr<StorageGuard> storage;  // the store's volume: writes admitted by it
  EntityRegistry registry;
  std::unique_ptr<LiveState> live;
  std::unique_ptr<Checkpointer> checkpointer;
  std::unique_ptr<SnapshotManager> snapshots;
  std::unique_ptr<AuditLog> audit;
  std::shared_ptr<const CheckpointSigner> audit_signer;  // [audit] signing_key; null: checkpoints unsigned
  std::unique_ptr<Ingestor> ingestor;
  std::unique_ptr<QueryEngine> engine;
  std::unique_ptr<ModelWatcher> models;
  std::unique_ptr<ExperimentService> experiments;
  std::unique_ptr<CanaryController> canary;
  std::unique_ptr<ExperimentsComponent> experiments_component;
  std::unique_ptr<ServiceStatus> status;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<FeatureService> features;
  std::unique_ptr<BatchSchedule> batch_schedule;  // serve --batch-every
  std::unique_ptr<DriftService> drift;
  std::unique_ptr<ServerReport> server_report;
  std::unique_ptr<ForgetService> forget;  // POST /admin/viewers/{id}/forget
  std::unique_ptr<Keyring> keyring;
  std::unique_ptr<ApiRoutes> routes;
  const HttpServer* http = nullptr;  // the server in front (not owned): its connections for /admin/stats
  Components components;

  // Registers a component and starts it.
  void Run(Component* c) {
    components.Add(c);
    components.Start(c);
  }
  // No request is served any more: the components stop in reverse start
  // order (the checkpointer's last checkpoint covers every accepted event,
  // so the next start replays nothing).
  void Stop() { components.StopAll(); }
};

// Step 1: the store, the entity registry and the live state (its checkpoint
// plus the log's tail, or the whole log).
absl::Status LoadState(const std::string& data, const Config& config, const Clock* clock, ServingStack* s,
                       StartupProgress* progress) {
  progress->stage.store("opening the store");
  auto store = OpenRocksStore(data, OpenMode::kPrimary, StoreOptionsFor(config, clock));
  if (!store.ok()) return store.status();
  s->store = *std::move(store);
  s->storage = std::make_unique<StorageGuard>(data, s->store.get(), config.storage);
  s->Run(s->storage.get());
  if (const std::string ro = s->store->ReadOnlyReason(); !ro.empty())
    spdlog::warn("serving read-only: {}", ro);
  else if (const StorageGuard::State st = s->storage->Get(); !st.writable)
    spdlog::warn("writes refused until space is freed: {}", st.reason);
  const auto t0 = std::chrono::steady_clock::now();
  s->live = std::make_unique<LiveState>(config.actions);
  s->live->SetCreatorOf([registry = &s->registry](Ref r) { return r.kind() == Kind::kItem ? registry->CreatorOf(r) : Ref(); });
  // The checkpoint is read (and checked) while the registry loads: neither
  // needs the other until it is installed.
  const std::string checkpoint = CheckpointPath(data);
  std::error_code ec;
  const bool use_checkpoint =
      config.state.checkpoint_interval_seconds > 0 && std::filesystem::exists(checkpoint, ec);
  absl::StatusOr<std::shared_ptr<LiveState::CheckpointImage>> image = std::shared_ptr<LiveState::CheckpointImage>();
  std::thread reader;
  if (use_checkpoint) reader = std::thread([&] { image = s->live->ReadCheckpoint(checkpoint); });
  progress->stage.store("loading entities");
  absl::Status registry = Ingestor::LoadRegistry(*s->store, &s->registry);
  if (reader.joinable()) reader.join();
  if (!registry.ok()) return registry;
  progress->stage.store(use_checkpoint ? "restoring the live state's checkpoint, then the log's tail"
                                       : "replaying the event log");
  std::atomic<bool> done{false};
  std::thread counter([&] {  // progress for /readyz while the replay runs
    while (!done.load()) {
      progress->events.store(s->live->events_applied(), std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const std::array<uint32_t, kNumKinds> known = {s->registry.Count(Kind::kUser), s->registry.Count(Kind::kCreator),
                                                 s->registry.Count(Kind::kItem)};
  absl::StatusOr<LiveLoadReport> loaded = s->live->Load(*s->store, std::move(image), known);
  done.store(true);
  counter.join();
  progress->events.store(s->live->events_applied(), std::memory_order_relaxed);
  if (!loaded.ok()) return loaded.status();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!loaded->checkpoint_refused.empty())
    spdlog::warn("checkpoint not used, replaying the whole log: {}", loaded->checkpoint_refused);
  if (loaded->from_checkpoint)
    spdlog::info("state loaded: {} entities, checkpoint of {} events (log offset {}) read in {:.2f}s, {} events of "
                 "the log's tail replayed, in {:.2f}s",
                 s->registry.Total(), loaded->checkpoint.events, loaded->checkpoint.offset, loaded->checkpoint.seconds,
                 loaded->replayed, secs);
  else
    spdlog::info("state loaded: {} entities, {} events replayed in {:.2f}s", s->registry.Total(), loaded->replayed,
                 secs);
  s->checkpointer =
      std::make_unique<Checkpointer>(s->live.get(), checkpoint, config.state, clock, *std::move(loaded));
  return absl::OkStatus();
}

// The snapshot, loaded beside the live state (neither needs the other).
std::unique_ptr<SnapshotManager> LoadSnapshot(const std::string& data, const Config& config) {
  auto snapshots = std::make_unique<SnapshotManager>(data, config.serving.snapshot_poll_ms,
                                                     config.serving.ann_ef_search, config.features);
  const absl::Status initial = snapshots->LoadInitial();
  for (const RefusedFile& r : snapshots->refused())
    spdlog::error("snapshot {} refused: {}", r.version, r.reason);
  if (!initial.ok() && !snapshots->Get())
    spdlog::warn("snapshot not loaded, serving without it: {}", std::string(initial.message()));
  if (auto snap = snapshots->Get())
    spdlog::info("snapshot {} loaded in {:.2f}s (arrays {:.2f}s, batch groups {:.2f}s {}, ANN indexes {:.2f}s)",
                 snap->version, snap->load_report.total, snap->load_report.arrays, snap->load_report.features,
                 snap->load_report.groups_scanned ? "from the feature store's records" : "mapped from arrays.bin",
                 snap->load_report.ann);
  else if (initial.ok())
    spdlog::info("no snapshot yet: run `affinity batch --data {}`; until then lists come from live counts", data);
  snapshots->SetSwapListener([](const Snapshot& now, const std::string& was) {
    spdlog::info("snapshot {} swapped in (was {}), loaded in {:.2f}s", now.version, was.empty() ? "none" : was,
                 now.load_report.total);
  });
  return snapshots;
}

// Experiments: their definitions and counters from the store, the model
// versions their arms name (loaded once each), attribution of accepted
// feedback, the guardrail evaluator and the canary rollout of new models.
void StartExperiments(const std::string& data, const Config& config, const Clock* clock, ServingStack* s) {
  auto load = [data, watcher = s->models.get()](
                  const std::string& version) -> absl::StatusOr<std::shared_ptr<const LearnedRanker>> {
    auto m = ModelRegistry(data).Load(version);
    if (absl::IsDataLoss(m.status())) watcher->NoteArmRefusal(version, std::string(m.status().message()));
    if (!m.ok()) return m.status();
    return std::shared_ptr<const LearnedRanker>(*std::move(m));
  };
  auto versions = [data] {
    std::vector<std::string> out;
    if (auto st = ModelRegistry(data).Read(); st.ok())
      for (const auto& v : st->versions) out.push_back(v.version);
    return out;
  };
  s->experiments = std::make_unique<ExperimentService>(s->store.get(), config.serving, config.experiments, &s->registry, s->live.get(),
                                                       s->audit.get(), clock, load, versions);
  if (auto st = s->experiments->Load(); !st.ok())
    spdlog::error("experiments not loaded: {}", std::string(st.message()));
  s->ingestor->SetFeedbackObserver([x = s->experiments.get()](const std::vector<Event>& events) {
    x->RecordFeedback(events);
  });
  // Models that `batch` ships as canaries: started, decided and recorded here.
  s->canary = std::make_unique<CanaryController>(data, s->experiments.get(), config.experiments);
  s->experiments_component = std::make_unique<ExperimentsComponent>(s->experiments.get(), s->canary.get(),
                                                                    config.experiments.guardrail_poll_ms);
  s->Run(s->experiments_component.get());
}

// Step 2: the snapshot, the audit log, the ingestor, the query engine and the
// learned ranker's model watcher, then the routes over all of them.
void BuildServing(const std::string& data, const Config& config, const Clock* clock, Metrics* metrics,
                  ServingStack* s, StartupProgress* progress) {
  s->checkpointer->SetAdmission([guard = s->storage.get()] { return guard->Admit(); });
  s->Run(s->checkpointer.get());
  s->Run(s->snapshots.get());
  s->audit = std::make_unique<AuditLog>(
      s->store.get(), 100000,
      AuditChainOptions{clock, int64_t(config.audit.checkpoint_interval_seconds) * 1000, s->audit_signer});
  s->audit->SetAdmission([guard = s->storage.get()] { return guard->Admit(); });
  s->Run(s->audit.get());
  s->ingestor = std::make_unique<Ingestor>(s->store.get(), &s->registry, s->live.get(), config.actions, clock);
  s->engine = std::make_unique<QueryEngine>(config.serving, &s->registry, s->live.get(), s->snapshots.get(),
                                            s->audit.get(), clock);
  progress->stage.store("loading the learned ranker");
  QueryEngine* engine = s->engine.get();
  s->models = std::make_unique<ModelWatcher>(data, config.serving.snapshot_poll_ms,
                                             [engine](std::shared_ptr<const LearnedRanker> m) {
                                               spdlog::info("learned ranker: {}", m ? m->version() : "none (blend)");
                                               engine->SetLearnedRanker(std::move(m));
                                             });
  if (auto st = s->models->Refresh(); !st.ok())
    spdlog::warn("model not loaded as the registry says: {}; ranking with {}", std::string(st.status().message()),
                 s->models->current().empty() ? std::string("the blend") : s->models->current());
  s->Run(s->models.get());
  progress->stage.store("loading experiments");
  StartExperiments(data, config, clock, s);
  s->status = std::make_unique<ServiceStatus>(s->store.get(), &s->registry, s->live.get(), s->snapshots.get(),
                                              s->audit.get(), clock);
  s->components.Add(s->status.get());
  s->catalog = std::make_unique<Catalog>(s->store.get(), &s->registry, s->live.get());
  s->features = std::make_unique<FeatureService>(&s->registry, s->live.get(), s->snapshots.get(), clock,
                                                 config.batch.als_factors, config.features);
  s->features->SetCheckpointer(s->checkpointer.get());
  s->components.Add(s->features.get());
  s->drift = std::make_unique<DriftService>(
      [engine = s->engine.get(), experiments = s->experiments.get()] {
        std::vector<std::shared_ptr<const LearnedRanker>> models = experiments->ArmModels();
        models.insert(models.begin(), engine->learned_ranker());
        return models;
      },
      config.drift);
  s->Run(s->drift.get());
  if (s->batch_schedule) s->components.Add(s->batch_schedule.get());  // started once serving
  s->forget = std::make_unique<ForgetService>(ForgetService::Parts{
      s->store.get(), s->audit.get(), &s->registry, s->live.get(),
      [c = s->checkpointer.get()]() -> absl::StatusOr<std::string> {
        AFF_RETURN_IF_ERROR(c->WriteNow().status());
        return std::string("written");
      },
      [b = s->batch_schedule.get()] {
        if (!b) return std::string("not scheduled (serve without --batch-every): run `affinity batch`");
        b->RunSoon();
        return std::string("started");
      },
      clock});
  s->components.Add(s->forget.get());
  s->server_report = std::make_unique<ServerReport>(s->http);
  s->components.Add(s->server_report.get());
  s->keyring = std::make_unique<Keyring>(config.auth);
  s->routes = std::make_unique<ApiRoutes>(ApiDeps{&config.server, s->ingestor.get(), s->catalog.get(), s->engine.get(),
                                                  metrics, s->experiments.get(), s->components.all(),
                                                  [guard = s->storage.get()] { return guard->Admit(); },
                                                  s->keyring.get(), s->audit.get()});
  s->routes->SetReady(true);
}

// The HTTP server's settings; its connection cap, unless configured, is half
// the descriptor limit (the other half: the store's files, the snapshot's
// mappings, the audit log, a batch child's pipes).
HttpServerOptions HttpOptionsFor(const ServerOptions& c, const DescriptorLimit& fds) {
  HttpServerOptions o;
  o.host = c.host;
  o.port = c.port;
  o.threads = c.threads;
  o.max_body_bytes = size_t(c.max_body_bytes);
  o.max_connections = c.max_connections > 0 ? uint64_t(c.max_connections) : std::max<uint64_t>(16, fds.soft / 2);
  o.header_timeout = std::chrono::milliseconds(c.header_timeout_ms);
  o.idle_timeout = std::chrono::milliseconds(c.idle_timeout_ms);
  o.body_timeout = std::chrono::milliseconds(c.body_timeout_ms);
  o.max_connections_per_peer = uint64_t(c.max_connections_per_peer);
  // A trusted proxy carries many clients' connections: it has no cap of its own.
  if (auto proxies = TrustedProxies::Parse(c.trusted_proxies); proxies.ok() && !proxies->empty())
    o.per_peer_exempt = [trusted = *std::move(proxies)](const std::string& peer) { return trusted.Contains(peer); };
  o.tls_cert = c.tls_cert;
  o.tls_key = c.tls_key;
  return o;
}

// This process's executable (what `serve --batch-every` runs as `batch`).
std::string SelfExecutable() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("affinity") : p.string();
}

// A data dir without a store is created empty; say so loudly, since a typo in
// --data otherwise looks like a server that forgot everything.
void WarnIfEmpty(const std::string& data) {
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::path(data) / "db" / "CURRENT", ec)) return;
  std::fprintf(stderr,
               "affinity: warning: %s holds no data yet; creating an empty store there. Queries get cold-start "
               "lists until entities and events arrive (check --data if you meant an existing data dir)\n",
               data.c_str());
}

// Whether `host` is only reachable from this machine: 127.0.0.0/8, ::1, localhost.
bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace

int Serve(const std::string& data, const std::string& host, int port, const std::string& config_path,
          const std::string& batch_every, bool insecure_listen) {
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail(cfg.status());
  std::optional<int64_t> batch_period;
  if (!batch_every.empty() && !(batch_period = ParseDuration(batch_every)))
    return Fail(absl::InvalidArgumentError("--batch-every: '" + batch_every +
                                           "' is not a duration (a whole number and ms, s, m, h or d: 30s, 15m, 1h)"));
  Config config = *cfg;
  if (!host.empty()) config.server.host = host;
  if (port >= 0) config.server.port = port;
  if (auto st = config.Validate(); !st.ok()) return Fail(st);
  if (!config.auth.enabled() && !IsLoopbackHost(config.server.host)) {
    if (!insecure_listen)
      return Fail(absl::FailedPreconditionError(
          "serve: " + config.server.host + " is not a loopback address and the configuration has no [auth] keys "
          "(anyone who reaches the port could read every viewer's history and change models): add keys "
          "(`affinity keys new`) or pass --insecure-listen"));
    spdlog::warn("serving on {} without [auth] keys (--insecure-listen): every route is open to anyone who "
                 "reaches the port", config.server.host);
  }
  WarnIfEmpty(data);
  std::shared_ptr<const CheckpointSigner> audit_signer;
  if (!config.audit.signing_key.empty()) {
    auto signer = CheckpointSigner::Load(config.audit.signing_key, data);
    if (!signer.ok()) return Fail(signer.status());
    audit_signer = *std::move(signer);
  }
  // Every connection, file and mapping is a descriptor: take all the process may.
  const DescriptorLimit fds = RaiseDescriptorLimit();
  const HttpServerOptions http_options = HttpOptionsFor(config.server, fds);
  spdlog::info("file descriptors: limit {}{}; at most {} connections", fds.soft,
               fds.raised ? " (raised to the hard limit)" : "", http_options.max_connections);
  const Clock* clock = SystemClock::Default();
  Metrics metrics;
  ServingStack stack;  // outlives the server, whose threads read it
  stack.audit_signer = std::move(audit_signer);
  StartupProgress progress;
  StartupRoutes startup(&progress);
  std::atomic<ApiRoutes*> api{nullptr};
  HttpServer server(http_options, [&](const HttpRequest& r) {
    if (ApiRoutes* routes = api.load(std::memory_order_acquire)) return routes->Handle(r);
    return startup.Handle(r);
  });
  stack.http = &server;
  // Block the signals in every thread (the io and loader threads inherit the
  // mask); the main thread waits for them. SIGUSR1 says the loader finished.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (auto st = server.Start(); !st.ok()) return Fail(st);
  const char* scheme = http_options.tls() ? "https" : "http";
  spdlog::info("listening on {}://{}:{} (loading state; /readyz says 503 until ready)", scheme, config.server.host,
               server.port());
  if (batch_period) {
    // The same binary, as a child process: a failing batch never takes the server down.
    std::vector<std::string> argv = {SelfExecutable(), "batch", "--data", data};
    if (!config_path.empty()) argv.insert(argv.end(), {"--config", config_path});
    stack.batch_schedule = std::make_unique<BatchSchedule>(std::move(argv), *batch_period);
  }
  absl::Status loaded;
  std::thread loader([&] {
    std::unique_ptr<SnapshotManager> snapshots;
    std::thread snapshot_loader([&] { snapshots = LoadSnapshot(data, config); });
    loaded = LoadState(data, config, clock, &stack, &progress);
    if (loaded.ok()) progress.stage.store("loading the snapshot");
    snapshot_loader.join();
    stack.snapshots = std::move(snapshots);
    if (loaded.ok()) BuildServing(data, config, clock, &metrics, &stack, &progress);
    ::kill(::getpid(), SIGUSR1);
  });
  int sig = 0;
  while (true) {
    sigwait(&set, &sig);
    if (sig != SIGUSR1) break;
    loader.join();
    if (!loaded.ok()) {
      server.Stop();
      return Fail(loaded);
    }
    api.store(stack.routes.get(), std::memory_order_release);
    if (stack.batch_schedule) {
      stack.components.Start(stack.batch_schedule.get());
      spdlog::info("batch pipeline scheduled every {} (first run in {})", batch_every, batch_every);
    }
    auto snap = stack.snapshots->Get();
    std::printf("affinity: serving on %s://%s:%d (snapshot %s)\n", scheme, config.server.host.c_str(), server.port(),
                snap ? snap->version.c_str() : "none");
    std::fflush(stdout);
  }
  if (loader.joinable()) {
    // Stopped while loading: nothing is acknowledged yet, so leaving now is as
    // safe as a crash, which the store survives.
    spdlog::info("stopping (signal {}) while loading", sig);
    std::fflush(nullptr);
    std::_Exit(0);
  }
  spdlog::info("stopping (signal {})", sig);
  server.Stop();
  stack.Stop();
  return 0;
}

}  // namespace affinity
