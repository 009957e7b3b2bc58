// The whole router (api/routes.h) over a small world: any method, path, query
// string, header and body is answered, and never with a 5xx (no store fault is
// injected here, so none is genuine). The input is
//   METHOD SP PATH[?QUERY] LF [X-Affinity-Force-Arm value] LF BODY
// and the world is built again every 20000 inputs so that it stays small.
#include <memory>

#include "api/metrics.h"
#include "api/routes.h"
#include "audit/audit_log.h"
#include "experiments/experiment_service.h"
#include "fuzz_util.h"
#include "serving/query_engine.h"
#include "state/catalog.h"
#include "testing/world.h"

namespace {
using namespace affinity;

struct Served {
  Served() {
    world.BuildSmall();
    experiments = std::make_unique<ExperimentService>(
        world.store.get(), world.config.serving, world.config.experiments, &world.registry, world.live.get(), &audit, &world.clock,
        [](const std::string& v) -> absl::StatusOr<std::shared_ptr<const LearnedRanker>> {
          return absl::NotFoundError("no model " + v);
        },
        [] { return std::vector<std::string>{"m000001"}; });
    (void)experiments->Load();
    routes = std::make_unique<ApiRoutes>(ApiDeps{&world.config.server, world.ingestor.get(), &catalog, &engine, &metrics,
                                                 experiments.get(), {}, nullptr});
    routes->SetReady(true);
  }
  testing::World world;
  AuditLog audit{world.store.get()};
  Catalog catalog{world.store.get(), &world.registry, world.live.get(), &world.clock};
  QueryEngine engine{world.config.serving, &world.registry, world.live.get(), nullptr, &audit, &world.clock};
  Metrics metrics;
  std::unique_ptr<ExperimentService> experiments;
  std::unique_ptr<ApiRoutes> routes;
};

// The next line of `in` (without its '\n'), consumed.
std::string_view Line(std::string_view* in) {
  const size_t eol = in->find('\n');
  const std::string_view line = in->substr(0, eol);
  *in = eol == std::string_view::npos ? std::string_view() : in->substr(eol + 1);
  return line;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Never destroyed at exit: RocksDB's own statics may be gone by then.
  static Served* served = nullptr;
  static size_t runs = 0;
  if (!served || ++runs % 20000 == 0) {
    delete served;
    served = new Served();
  }
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view request_line = Line(&in);
  const size_t sp = request_line.find(' ');
  HttpRequest req;
  req.method = std::string(request_line.substr(0, sp));
  std::string_view target = sp == std::string_view::npos ? std::string_view("/") : request_line.substr(sp + 1);
  const size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  if (const std::string_view arm = Line(&in); !arm.empty())
    req.headers.emplace_back("x-affinity-force-arm", std::string(arm));
  req.body = std::string(in);
  const HttpResponse r = served->routes->Handle(req);
  fuzz::Require(r.status >= 200 && r.status < 500, "no request gets a 5xx",
                std::to_string(r.status) + " " + req.method + " " + req.path + " " + r.body);
  return 0;
}
